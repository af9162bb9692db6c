# Debian packages of trtd (amd64 and arm64), built with a pinned nfpm.
# Included by the main Makefile (-include mk/*.mk).

.PHONY: deb lint-deb

deb: ## Build build/deb/trtd_<version>_<arch>.deb for amd64 and arm64
	packaging/build-deb.sh

lint-deb: deb ## Lintian (0 errors), contents, systemd-analyze verify and security of the debs
	packaging/lint-deb.sh
