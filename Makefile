# trtd — build, run, test. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS := -s -w -X github.com/trtd/trtd/daemon.Version=$(VERSION)
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: help build trtd fake-worker run test test-short deps deps-list lint bench clean

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

deps: ## Say which Debian packages the tests need and why, install the missing ones (root), leave their services disabled
	scripts/deps.sh
	$(GO) mod download

deps-list: ## Only say which Debian packages `make deps` would install, and why
	@scripts/deps.sh --dry

test: deps ## Run the test suite (needs root for swap, cgroup and ssh tests; skips them otherwise)
	$(GO) test -count=1 -timeout 25m ./...

test-short: ## Run the unit tests only (no packages installed, no root needed)
	$(GO) test -short -count=1 ./...

# errcheck at a pinned version, fetched and built by `go run` through the
# Go module proxy (cached after the first run; go.mod is not touched).
# errcheck.excludes lists the few calls it lets pass, each with why.
ERRCHECK_VERSION := v1.9.0
ERRCHECK = $(GO) run github.com/kisielk/errcheck@$(ERRCHECK_VERSION) -ignoretests -exclude errcheck.excludes

lint: ## gofmt, go vet (pure Go and with cgo), errcheck on non-test code (pure Go, cgo, trtdfault), go mod tidy must be a no-op
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) vet ./...
	@echo "errcheck $(ERRCHECK_VERSION) (github.com/kisielk/errcheck, through the Go module proxy): every error in non-test code checked"
	CGO_ENABLED=0 $(ERRCHECK) ./...
	$(ERRCHECK) ./...
	$(ERRCHECK) -tags trtdfault ./...
	@cp go.mod /tmp/trtd-go.mod.bak; cp go.sum /tmp/trtd-go.sum.bak; $(GO) mod tidy; \
	if ! diff -q go.mod /tmp/trtd-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/trtd-go.sum.bak >/dev/null; then \
		cp /tmp/trtd-go.mod.bak go.mod; cp /tmp/trtd-go.sum.bak go.sum; echo "go mod tidy would change go.mod/go.sum"; exit 1; fi

bench: deps build ## Run every benchmark beside its reference and rewrite docs/BENCHMARKS.md
	scripts/bench.sh

clean: ## Remove build outputs and the local run/ tree
	rm -rf $(BIN) run build

-include mk/*.mk
