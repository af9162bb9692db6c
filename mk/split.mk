# Graph splitter (segmented build): ONNX Runtime comparison and benchmark.
# Needs (Debian): python3-onnx python3-torch python3-torchvision nodejs npm time;
# onnxruntime-node is installed with npm into TRTD_ORT_DIR, never into the repository.

.PHONY: split-check bench-split bench-split-synthetic fixtures-vgg16

TRTD_FIXTURES ?= $(or $(TMPDIR),/tmp)/trtd-fixtures
TRTD_ORT_DIR ?= /var/cache/trtd-ort
SPLIT_RUNS ?= 5

split-check: ## Split torch exports in 2 and 4, check parts with onnx.checker, run the chains in ONNX Runtime vs the whole models
	TRTD_FIXTURES=$(TRTD_FIXTURES) TRTD_ORT_DIR=$(TRTD_ORT_DIR) go test -count=1 -run 'TestSplit|TestDeriveShapes|TestChooseCuts' -v ./converter/onnx

fixtures-vgg16: ## Export vgg16 (528 MiB) into TRTD_FIXTURES for bench-split
	/usr/bin/python3 converter/onnx/testdata/make_fixtures.py $(TRTD_FIXTURES) --only vgg16

bench-split: fixtures-vgg16 ## Time and peak RSS of `trtd split` of vgg16 in 4 vs cp of the same file (Markdown)
	@mkdir -p $(or $(BIN),bin)
	CGO_ENABLED=0 go build -trimpath -o $(or $(BIN),bin)/trtd ./cmd/trtd
	converter/onnx/testdata/split/bench_split.sh $(or $(BIN),bin)/trtd $(TRTD_FIXTURES)/vgg16.onnx 4 $(SPLIT_RUNS)

bench-split-synthetic: ## bench-split on a vgg16-shaped model written from Go (no torch needed)
	@mkdir -p $(or $(BIN),bin)
	CGO_ENABLED=0 go build -trimpath -o $(or $(BIN),bin)/trtd ./cmd/trtd
	@mkdir -p $(TRTD_FIXTURES)
	go run ./converter/onnx/testdata/split/vgg16like $(TRTD_FIXTURES)/vgg16like.onnx
	converter/onnx/testdata/split/bench_split.sh $(or $(BIN),bin)/trtd $(TRTD_FIXTURES)/vgg16like.onnx 4 $(SPLIT_RUNS)
