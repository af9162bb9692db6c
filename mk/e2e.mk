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

# The arm64 package on an emulated arm64 system: a bookworm arm64 root
# (debootstrap --foreign, qemu-user-static through binfmt_misc, cached in
# /var/cache/trtd-e2e) booted in systemd-nspawn; the packaged arm64 cgo
# worker builds an uploaded model against the arm64 TensorRT test double.
# Needs root and TRT_HEADERS (the double is built from the 8.2 headers).
.PHONY: e2e-arm64

e2e-arm64: lint-deb ## Install the arm64 deb in an emulated arm64 bookworm container; the arm64 cgo worker builds an engine (root, TRT_HEADERS=dir)
	TRT_HEADERS="$(TRT_HEADERS)" test/e2e/arm64.sh
