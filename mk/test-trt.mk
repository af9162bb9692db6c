# make test-trt: the real cgo worker (converter/trt's shim, cmd/trtd-worker
# with -tags tensorrt) against the TensorRT test double (test/trtdouble), for
# the 8.2, 10.0 and 11.1 headers, end to end through the daemon, with
# AddressSanitizer and UBSan in the shim and the double. TRT_HEADERS names the
# header sets (CI: ../shared/trt-headers). Included by the main Makefile.
.PHONY: test-trt trtdouble bench-worker

TRTDOUBLE_VERSIONS ?= 8.2 10.0 11.1
TRTDOUBLE_DIR      ?= $(BIN)/trtdouble
TRTDOUBLE_SAN      ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TRTDOUBLE_CXX      ?= g++
# The worker's sanitizers: go build -asan (ASan in the shim and Go's heap
# checks), UBSan in the shim. Empty for the memory benchmark.
TRTDOUBLE_GO_SAN   ?= -asan
TRTDOUBLE_CGO_SAN  ?= -fsanitize=undefined -fno-sanitize-recover=undefined
# The libcudart soname each TensorRT major is used with, and its version
# (JetPack 4.6.x: CUDA 10.2; TensorRT 10: CUDA 12; TensorRT 11: CUDA 13).
TRTDOUBLE_IMPL := VHostMemory VTensor VNetworkDefinition VOptimizationProfile VTimingCache VBuilderConfig VBuilder VRuntime VCudaEngine VExecutionContext

# trtdouble builds, for each version, the double's libraries and the worker
# compiled against the same headers into $(TRTDOUBLE_DIR)/<version>/.
trtdouble: ## Build the TensorRT test double and the sanitized cgo worker for each of TRTDOUBLE_VERSIONS (TRT_HEADERS=dir)
	@test -n "$(TRT_HEADERS)" -a -d "$(TRT_HEADERS)" || { echo "trtdouble: set TRT_HEADERS=dir (one dir/<version>/include per release; CI: ../shared/trt-headers)"; exit 2; }
	@set -e; for v in $(TRTDOUBLE_VERSIONS); do \
		inc=$(abspath $(TRT_HEADERS))/$$v/include; out=$(TRTDOUBLE_DIR)/$$v; major=$${v%%.*}; \
		test -f $$inc/NvInfer.h || { echo "missing $$inc/NvInfer.h"; exit 1; }; \
		mkdir -p $$out/gen; \
		python3 test/trtdouble/lib/genabort.py $$out/gen/abort_nvinfer.h $$inc/NvInferImpl.h:$$(echo $(TRTDOUBLE_IMPL) | sed 's/\([A-Za-z]*\)/nvinfer1::apiv::\1/g; s/ /,/g'); \
		python3 test/trtdouble/lib/genabort.py $$out/gen/abort_parser.h $$inc/NvOnnxParser.h:nvonnxparser::IParser,nvonnxparser::IParserError; \
		case $$major in 8) set -- libcudart.so.10.2 10020;; 10) set -- libcudart.so.12 12040;; *) set -- libcudart.so.13 13000;; esac; \
		flags="-std=c++17 -O1 -g -fPIC -shared -Wall -Werror $(TRTDOUBLE_SAN) -isystem $$inc -isystem $(abspath $(TRT_HEADERS))/cudastub -I$$out/gen -Itest/trtdouble/lib"; \
		echo "== TensorRT test double $$v: libnvinfer.so.$$major libnvonnxparser.so.$$major libnvinfer_plugin.so.$$major $$1"; \
		$(TRTDOUBLE_CXX) $$flags -DTRTDOUBLE_CUDART_VERSION=$$2 -Wl,-soname,$$1 -o $$out/$$1 test/trtdouble/lib/cudart.cc; \
		$(TRTDOUBLE_CXX) $$flags -Wl,-soname,libnvinfer.so.$$major -o $$out/libnvinfer.so.$$major test/trtdouble/lib/nvinfer.cc -ldl -lpthread; \
		$(TRTDOUBLE_CXX) $$flags -Wl,-soname,libnvonnxparser.so.$$major -Wl,-rpath,'$$ORIGIN' -o $$out/libnvonnxparser.so.$$major test/trtdouble/lib/onnxparser.cc $$out/libnvinfer.so.$$major; \
		$(TRTDOUBLE_CXX) $$flags -Wl,-soname,libnvinfer_plugin.so.$$major -Wl,-rpath,'$$ORIGIN' -o $$out/libnvinfer_plugin.so.$$major test/trtdouble/lib/plugin.cc $$out/libnvinfer.so.$$major; \
		$(TRTDOUBLE_CXX) $$(echo $$flags | sed 's/ -fPIC -shared//') -Wl,-rpath,$(abspath $(TRTDOUBLE_DIR))/$$v -o $$out/trtdouble-misuse test/trtdouble/lib/misuse.cc \
			$$out/libnvinfer.so.$$major $$out/libnvonnxparser.so.$$major $$out/$$1; \
		echo "   worker: go build $(TRTDOUBLE_GO_SAN) -tags tensorrt against $$inc"; \
		env CGO_ENABLED=1 CGO_CPPFLAGS="-isystem $$inc -isystem $(abspath $(TRT_HEADERS))/cudastub" \
			CGO_CFLAGS="-O1 -g $(TRTDOUBLE_CGO_SAN)" CGO_CXXFLAGS="-O1 -g $(TRTDOUBLE_CGO_SAN)" CGO_LDFLAGS="$(TRTDOUBLE_CGO_SAN)" \
			$(GO) build $(TRTDOUBLE_GO_SAN) -tags tensorrt -o $$out/trtd-worker ./cmd/trtd-worker; \
	done

test-trt: deps trtdouble ## Run the daemon end to end with the cgo worker against the TensorRT test double (8.2, 10.0, 11.1), under ASan/UBSan
	env TRTDOUBLE_DIR=$(abspath $(TRTDOUBLE_DIR)) TRTDOUBLE_VERSIONS="$(TRTDOUBLE_VERSIONS)" \
		$(GO) test -race -count=1 -timeout 20m -v ./test/trtdouble/... ./daemon/selftest/ 2>&1 | tee $(TRTDOUBLE_DIR)/test-trt.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|sanitizer|runtime error' ; \
	rc=$${PIPESTATUS[0]}; [ $$rc -eq 0 ] || tail -n 150 $(TRTDOUBLE_DIR)/test-trt.log; exit $$rc

bench-worker: ## The cgo worker's own RSS when the build starts, above the TensorRT test double's libraries (Markdown; TRT_HEADERS=dir)
	@$(MAKE) -s --no-print-directory trtdouble TRTDOUBLE_DIR=$(BIN)/trtdouble-bench TRTDOUBLE_SAN= TRTDOUBLE_GO_SAN= TRTDOUBLE_CGO_SAN= >/dev/null
	@scripts/bench-worker-rss.sh $(abspath $(BIN)/trtdouble-bench) "$(TRTDOUBLE_VERSIONS)" $${BENCH_RUNS:-5}
