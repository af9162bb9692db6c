# End-to-end test: the .deb in a booted Debian bookworm (systemd-nspawn),
# uploads over real scp, crash/watchdog/upgrade/purge. Needs root.
# The debootstrap root is cached in /var/cache/trtd-e2e between runs.
# Then two such containers share one OCI registry (test/e2e/fleet.sh).

.PHONY: e2e e2e-fleet

e2e: lint-deb ## Install the deb in a booted bookworm container and run the end-to-end scenario (root)
	test/e2e/run.sh
	test/e2e/fleet.sh

e2e-fleet: deb ## Two booted containers share engines through docker-registry (root; the root cached by make e2e)
	test/e2e/fleet.sh
