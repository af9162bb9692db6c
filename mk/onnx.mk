# ONNX reader: conformance with python3-onnx, fuzzing, fixtures, inspect benchmark.
# Needs (Debian): python3-onnx libonnx-testdata python3-torch python3-torchvision time

.PHONY: conformance fuzz-diff fixtures bench-inspect

TRTD_FIXTURES ?= $(or $(TMPDIR),/tmp)/trtd-fixtures
MUTATIONS ?= 100000

conformance: ## Compare `trtd inspect --json` with python3-onnx on libonnx-testdata and torch exports
	TRTD_FIXTURES=$(TRTD_FIXTURES) go test -count=1 -run 'Conformance' -v ./converter/onnx

fuzz-diff: ## Compare the reader with python3-onnx on MUTATIONS (default 100000) mutated models
	TRTD_DIFF_MUTATIONS=$(MUTATIONS) go test -count=1 -timeout 60m -run 'DifferentialMutations|FuzzCorpus' -v ./converter/onnx

fixtures: ## Export the torchvision/torch fixture models into TRTD_FIXTURES (never committed)
	/usr/bin/python3 converter/onnx/testdata/make_fixtures.py $(TRTD_FIXTURES)

bench-inspect: ## Time and peak RSS of `trtd inspect` vs onnx.load on resnet50, vgg16 and a 30,000-node model (Markdown)
	TRTD_FIXTURES=$(TRTD_FIXTURES) converter/onnx/testdata/bench_inspect.sh 5
