# trtd — build, run, test. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS := -s -w -X github.com/trtd/trtd/daemon.Version=$(VERSION)
export PATH := /usr/local/go/bin:$(PATH)

# Debian packages the tests use (installed by `make deps`).
TEST_DEBS := python3-onnx libonnx-testdata python3-torch python3-torchvision openssh-server openssh-client rsync time util-linux e2fsprogs procps chromium fonts-dejavu-core g++ nodejs docker-registry

.PHONY: help build trtd fake-worker run test test-short deps lint bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

build: trtd worker ## Build bin/trtd (pure Go) and bin/trtd-worker

trtd: ## Build bin/trtd, the daemon and CLI (CGO_ENABLED=0, static)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/trtd ./cmd/trtd

fake-worker: ## Build bin/trtd-fake-worker, the worker's test double (never shipped)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/trtd-fake-worker ./cmd/trtd-fake-worker

run: deps-run build ## Run the daemon on a local inbox/outbox under run/, drop a real model in, show its report
	scripts/run-local.sh

deps-run:
	@$(GO) mod download

deps: ## Install the Debian packages and Go modules the tests need (root)
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	$(GO) mod download

test: deps ## Run the test suite (needs root for swap, cgroup and ssh tests; skips them otherwise)
	$(GO) test -count=1 -timeout 25m ./...

test-short: ## Run the unit tests only (no packages installed, no root needed)
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet (pure Go and with cgo), go mod tidy must be a no-op
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) vet ./...
	@cp go.mod /tmp/trtd-go.mod.bak; cp go.sum /tmp/trtd-go.sum.bak; $(GO) mod tidy; \
	if ! diff -q go.mod /tmp/trtd-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/trtd-go.sum.bak >/dev/null; then \
		cp /tmp/trtd-go.mod.bak go.mod; cp /tmp/trtd-go.sum.bak go.sum; echo "go mod tidy would change go.mod/go.sum"; exit 1; fi

bench: deps build ## Run every benchmark beside its reference and rewrite docs/BENCHMARKS.md
	scripts/bench.sh

clean: ## Remove build outputs and the local run/ tree
	rm -rf $(BIN) run build

-include mk/*.mk
