# The cgo worker (converter/trt, cmd/trtd-worker) and its compile checks
# against the public TensorRT headers. Included by the main Makefile.
#
#   make worker                       -tags tensorrt when headers are found
#   make worker TENSORRT_INCLUDE=dir  use the headers in dir
#   make check-trt TRT_HEADERS=dir    compile against 8.2 8.5 8.6 10.0 11.1
.PHONY: worker check-trt trt-headers

# Where Jetson's libnvinfer-dev, NVIDIA's x86 .debs and tarballs put NvInfer.h.
TRT_INCLUDE_DIRS := /usr/include/aarch64-linux-gnu /usr/include/x86_64-linux-gnu /usr/include /usr/local/tensorrt/include /opt/tensorrt/include
TENSORRT_INCLUDE ?= $(firstword $(foreach d,$(TRT_INCLUDE_DIRS),$(if $(wildcard $(d)/NvInfer.h),$(d))))
# NvInfer.h includes cuda_runtime_api.h (types only; the worker never links CUDA).
CUDA_INCLUDE ?= $(firstword $(foreach d,/usr/local/cuda/include $(wildcard /usr/local/cuda-*/include) /usr/include,$(if $(wildcard $(d)/cuda_runtime_api.h),$(d))))
# The five header sets, laid out by ../shared/tools/trt-headers.sh.
TRT_HEADERS  ?= /var/cache/trtd-trt-headers
TRT_VERSIONS ?= 8.2 8.5 8.6 10.0 11.1
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

check-trt: ## Compile (and link) the tensorrt-tagged worker against each header set in TRT_HEADERS, warnings as errors
	@test -d $(TRT_HEADERS) || { echo "no $(TRT_HEADERS): lay the headers out with ../shared/tools/trt-headers.sh (see make trt-headers)"; exit 1; }
	@set -e; for v in $(TRT_VERSIONS); do \
		inc=$(TRT_HEADERS)/$$v/include; \
		test -f $$inc/NvInfer.h || { echo "missing $$inc/NvInfer.h"; exit 1; }; \
		printf '== TensorRT %-5s ' "$$v"; grep -h '^#define \(NV_TENSORRT\|TRT\)_\(MAJOR\|MINOR\|PATCH\)\(_ENTERPRISE\)\? [0-9]' $$inc/NvInferVersion.h | awk '{printf "%s ", $$3}'; echo; \
		env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $$inc -isystem $(TRT_HEADERS)/cudastub" CGO_CXXFLAGS="-O2 -Werror" \
			$(GO) build -tags tensorrt -o /dev/null ./cmd/trtd-worker; \
		env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $$inc -isystem $(TRT_HEADERS)/cudastub" \
			$(GO) vet -tags tensorrt ./converter/trt/... ./cmd/trtd-worker; \
		echo "   ok: converter/trt + cmd/trtd-worker build, link and vet"; \
	done

TRT_GIT      ?=
ONNX_TRT_GIT ?=
trt-headers: ## Lay out the five header sets in TRT_HEADERS from git dirs of NVIDIA/TensorRT and onnx/onnx-tensorrt (TRT_GIT, ONNX_TRT_GIT)
	@test -n "$(TRT_GIT)" -a -n "$(ONNX_TRT_GIT)" || { echo "set TRT_GIT and ONNX_TRT_GIT to git dirs of NVIDIA/TensorRT and onnx/onnx-tensorrt"; exit 1; }
	../shared/tools/trt-headers.sh $(TRT_GIT) $(ONNX_TRT_GIT) $(TRT_HEADERS)
