# Memory benchmarks (root): swapfile provisioning vs the dd recipe, and the
# memory guard's reaction time. Both print Markdown rows for docs.
.PHONY: bench-memory bench-swap bench-guard

SWAPBENCH_DIR  ?= /var/tmp
SWAPBENCH_SIZE ?= 4G
SWAPBENCH_RUNS ?= 3

bench-memory: bench-swap bench-guard ## Memory benchmarks: swapfile vs dd recipe, guard reaction (root)

bench-swap: ## Time a 4 GiB swapfile: trtd vs `dd … && mkswap && swapon`, same run (root)
	$(GO) run ./daemon/swap/swapbench -dir $(SWAPBENCH_DIR) -size $(SWAPBENCH_SIZE) -runs $(SWAPBENCH_RUNS)

bench-guard: ## Memory guard: floor crossed → SIGKILL, at 250 ms and 50 ms sampling
	$(GO) run ./daemon/guard/guardbench -runs 5
