# Debian packages of trtd (amd64 and arm64), built with a pinned nfpm.
# Included by the main Makefile (-include mk/*.mk).

# TRT_HEADERS: the TensorRT public headers the cgo workers are compiled
# against (<release>/include for 8.0, 10.0, 11.1, and cudastub/); CI passes
# ../shared/trt-headers. Default: mk/trt.mk's.
.PHONY: deb lint-deb deb-deps

DEB_BUILD_DEBS := gcc g++ gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu file qemu-user-static

deb-deps: ## Install the cross compiler and tools make deb needs (root)
	@missing=""; for p in $(DEB_BUILD_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

deb: deb-deps ## Build build/deb/trtd_<version>_<arch>.deb for amd64 and arm64 (TRT_HEADERS=dir of TensorRT headers)
	TRT_HEADERS="$(TRT_HEADERS)" packaging/build-deb.sh

lint-deb: deb ## Lintian (0 errors), contents, systemd-analyze verify and security of the debs
	packaging/lint-deb.sh
