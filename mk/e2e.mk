# End-to-end test: the .deb in a booted Debian bookworm (systemd-nspawn),
# uploads over real scp, crash/watchdog/upgrade/purge. Needs root.
# The debootstrap root is cached in /var/cache/trtd-e2e between runs.

.PHONY: e2e

e2e: lint-deb ## Install the deb in a booted bookworm container and run the end-to-end scenario (root)
	test/e2e/run.sh
