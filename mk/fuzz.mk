# Fuzzing every parser of untrusted input (scripts/fuzz.sh finds the targets).

.PHONY: fuzz

FUZZTIME ?= 5m

fuzz: ## Run every fuzz target for FUZZTIME each (default 5m; CI: FUZZTIME=30s)
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
