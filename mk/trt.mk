# The cgo worker (converter/trt, cmd/trtd-worker) and its compile checks
# against the public TensorRT headers. Included by the main Makefile.
#
#   make worker                       -tags tensorrt when headers are found
#   make worker TENSORRT_INCLUDE=dir  use the headers in dir
#   make check-trt TRT_HEADERS=dir    compile, link and vet against 8.0 8.2 8.6 10.0 11.1
#   make trt-headers TRT_HEADERS=dir  lay those header sets out (scripts/trt-headers.sh, needs internet)
.PHONY: worker check-trt trt-headers

# Where Jetson's libnvinfer-dev, NVIDIA's x86 .debs and tarballs put NvInfer.h.
TRT_INCLUDE_DIRS := /usr/include/aarch64-linux-gnu /usr/include/x86_64-linux-gnu /usr/include /usr/local/tensorrt/include /opt/tensorrt/include
TENSORRT_INCLUDE ?= $(firstword $(foreach d,$(TRT_INCLUDE_DIRS),$(if $(wildcard $(d)/NvInfer.h),$(d))))
# NvInfer.h includes cuda_runtime_api.h (types only; the worker never links CUDA).
CUDA_INCLUDE ?= $(firstword $(foreach d,/usr/local/cuda/include $(wildcard /usr/local/cuda-*/include) /usr/include,$(if $(wildcard $(d)/cuda_runtime_api.h),$(d))))
# The header sets, one TRT_HEADERS/<version>/include per release plus
# TRT_HEADERS/cudastub, as scripts/trt-headers.sh lays them out. No default:
# the caller names the directory (CI: TRT_HEADERS=../shared/trt-headers).
TRT_HEADERS  ?=
TRT_VERSIONS ?= 8.0 8.2 8.6 10.0 11.1
TRT_CUDA_FLAGS = $(if $(CUDA_INCLUDE),-isystem $(CUDA_INCLUDE),-isystem $(BIN)/.cudastub)

$(BIN)/.cudastub/cuda_runtime_api.h:
	@mkdir -p $(dir $@)
	@printf '%s\n' '#pragma once' 'typedef struct CUstream_st* cudaStream_t;' 'typedef struct CUevent_st* cudaEvent_t;' 'typedef int cudaError_t;' > $@

worker: $(if $(CUDA_INCLUDE),,$(BIN)/.cudastub/cuda_runtime_api.h) ## Build bin/trtd-worker (-tags tensorrt when TensorRT headers are found, or TENSORRT_INCLUDE=dir)
	@mkdir -p $(BIN)
ifeq ($(TENSORRT_INCLUDE),)
	@echo "trtd-worker: no TensorRT headers found (install libnvinfer-dev or set TENSORRT_INCLUDE=dir);"
	@echo "             building without them: trtexec backend and CUDA probe only"
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/trtd-worker ./cmd/trtd-worker
else
	@echo "trtd-worker: TensorRT headers in $(TENSORRT_INCLUDE)"
	CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $(TENSORRT_INCLUDE) $(TRT_CUDA_FLAGS)" \
		$(GO) build -tags tensorrt -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/trtd-worker ./cmd/trtd-worker
endif
	@$(BIN)/trtd-worker version

check-trt: ## Build, link and vet the tensorrt-tagged worker against each header set in TRT_HEADERS=dir, -Werror on our C++
	@test -n "$(TRT_HEADERS)" || { echo "check-trt: set TRT_HEADERS=dir (one dir/<version>/include per release; lay it out with: make trt-headers TRT_HEADERS=dir)"; exit 2; }
	@test -d "$(TRT_HEADERS)" || { echo "check-trt: no directory $(TRT_HEADERS) (make trt-headers TRT_HEADERS=$(TRT_HEADERS))"; exit 2; }
	@set -e; for v in $(TRT_VERSIONS); do \
		inc=$(abspath $(TRT_HEADERS))/$$v/include; \
		test -f $$inc/NvInfer.h -a -f $$inc/NvOnnxParser.h || { echo "check-trt: missing $$inc/NvInfer.h or NvOnnxParser.h"; exit 1; }; \
		printf '== TensorRT %-5s headers %s\n' "$$v" "$$(grep -h '^#define \(NV_TENSORRT\|TRT\)_\(MAJOR\|MINOR\|PATCH\)\(_ENTERPRISE\)\? [0-9]' $$inc/NvInferVersion.h | awk '{printf "%s.", $$3}' | sed 's/\.$$//')"; \
		env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $$inc -isystem $(abspath $(TRT_HEADERS))/cudastub" CGO_CXXFLAGS="-O2 -Werror" \
			$(GO) build -tags tensorrt -o /dev/null ./cmd/trtd-worker; \
		env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $$inc -isystem $(abspath $(TRT_HEADERS))/cudastub" CGO_CXXFLAGS="-O2 -Werror" \
			$(GO) vet -tags tensorrt ./converter/trt/... ./cmd/trtd-worker; \
		echo "   ok: converter/trt + cmd/trtd-worker build, link and vet with -Wall -Wextra -Werror"; \
	done
	@echo "errcheck $(ERRCHECK_VERSION) on the -tags tensorrt worker (TensorRT $(lastword $(TRT_VERSIONS)) headers)"
	env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $(abspath $(TRT_HEADERS))/$(lastword $(TRT_VERSIONS))/include -isystem $(abspath $(TRT_HEADERS))/cudastub" \
		$(ERRCHECK) -tags tensorrt ./converter/trt/... ./cmd/trtd-worker
	TRT_HEADERS=$(abspath $(TRT_HEADERS)) $(GO) test -count=1 -run 'TestParserErrorCodesPerRelease' ./converter/trt

trt-headers: ## Lay out the TensorRT header sets check-trt needs in TRT_HEADERS=dir, from NVIDIA's repositories at pinned releases (needs internet; builds nothing)
	@test -n "$(TRT_HEADERS)" || { echo "trt-headers: set TRT_HEADERS=dir"; exit 2; }
	scripts/trt-headers.sh $(TRT_HEADERS)
