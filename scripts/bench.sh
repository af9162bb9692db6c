#!/usr/bin/env bash
# `make bench`: run every benchmark beside its reference in the same run and
# rewrite docs/BENCHMARKS.md (command, machine, date, figures, ratios).
#
# Sections come from the make targets that exist (bench-inspect, bench-swap,
# bench-guard, bench-split, bench-worker) and from test/bench/daemonbench (pickup latency,
# burst p50/p99, idle RSS, wake-ups). A section that fails is recorded as
# failed with its last lines; the others still run.
#
# test/bench/fleetbench measures pulling a 100 MiB engine from Debian's
# docker-registry against curl fetching the same blob, and 50 devices
# pulling at once.
#
# test/bench/daemonbench -scale history|flood measures the cost of a large
# history (10,000 finished jobs and outbox files: start to READY, RSS,
# `trtd status --json`) and of 1,000 uploads at once (each claimed exactly
# once, peak RSS); -scale intake the daemon's CPU time and peak RSS for one
# 220 MB upload with 30,000 initializers (parsed once).
#
# Env: BENCH_ONLY  space-separated subset of: inspect swap guard split daemon history flood intake fleet worker
#      BENCH_RUNS  runs per figure of the daemon benchmark (default 5)
#      BENCH_OUT   output file (default docs/BENCHMARKS.md)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

all='inspect swap guard split daemon history flood intake fleet worker'
only=${BENCH_ONLY:-$all}
runs=${BENCH_RUNS:-5}
out=${BENCH_OUT:-docs/BENCHMARKS.md}
bin=$(mktemp -d)
body=$(mktemp)
trap 'rm -rf "$bin" "$body"' EXIT

want() { [[ " $only " == *" $1 "* ]]; }

# keep TITLE: with BENCH_ONLY, a section not run now keeps its figures from
# the previous docs/BENCHMARKS.md, marked with that run's date.
old_date=$(sed -n 's/^| date | \(.*\) |$/\1/p' "$out" 2>/dev/null | head -1)
keep() {
	local title=$1
	[ -f "$out" ] || return 1
	awk -v t="## $title" '$0 == t {on = 1; print; next} on && /^## / {exit} on {print}' "$out" >"$body.keep"
	[ -s "$body.keep" ] || return 1
	if grep -q '^(Kept from the run of' "$body.keep"; then
		cat "$body.keep" >>"$body" # already carried over: keep its own date
	else
		head -n 1 "$body.keep"
		printf '\n(Kept from the run of %s: not rerun this time.)\n' "${old_date:-an earlier date}"
		tail -n +2 "$body.keep"
	fi >>"$body"
	rm -f "$body.keep"
}

section() { # title target
	local title=$1 target=$2 log rc start end
	if ! want "${target#bench-}"; then
		keep "$title" || true
		return 0
	fi
	if ! make -n "$target" >/dev/null 2>&1; then
		printf '## %s\n\n`make %s` does not exist yet in this tree: not run.\n\n' "$title" "$target" >>"$body"
		return 0
	fi
	echo "bench.sh: make $target" >&2
	log=$(mktemp)
	start=$(date +%s)
	make -s --no-print-directory "$target" >"$log" 2>"$log.err"
	rc=$?
	end=$(date +%s)
	{
		printf '## %s\n\nCommand: `make %s` (%ss)\n\n' "$title" "$target" "$((end - start))"
		if [ $rc -eq 0 ]; then
			grep -v '^go: ' "$log"
		else
			printf 'FAILED (exit %s):\n\n```\n' "$rc"
			tail -n 15 "$log" "$log.err"
			printf '```\n'
		fi
		printf '\n'
	} >>"$body"
	rm -f "$log" "$log.err"
}

section "ONNX inspection: trtd inspect vs onnx.load" bench-inspect
section "Swapfile provisioning: trtd vs the dd recipe" bench-swap
section "Memory guard reaction" bench-guard
section "Graph split: trtd split vs cp" bench-split
# The cgo worker against the TensorRT test double needs the header sets
# (make bench TRT_HEADERS=dir; CI: ../shared/trt-headers).
section "cgo worker: its own RSS when the build starts (TensorRT test double)" bench-worker

if ! want daemon; then
	keep "Daemon: pickup latency, idle RSS, wake-ups" || true
else
	echo "bench.sh: daemon benchmark" >&2
	CGO_ENABLED=0 go build -trimpath -o "$bin/trtd" ./cmd/trtd &&
		CGO_ENABLED=0 go build -trimpath -o "$bin/trtd-fake-worker" ./cmd/trtd-fake-worker
	cmd="go run ./test/bench/daemonbench -runs $runs"
	{
		printf '## Daemon: pickup latency, idle RSS, wake-ups\n\nCommand: `%s` (through `make bench`)\n\n' "$cmd"
		if ! go run ./test/bench/daemonbench -trtd "$bin/trtd" -worker "$bin/trtd-fake-worker" -runs "$runs" 2>&1; then
			printf '\nFAILED\n'
		fi
		printf '\n'
	} >>"$body"
fi

# Cost as work grows: a large history, and a flood of uploads.
scale() { # which title
	local which=$1 title=$2
	if ! want "$which"; then
		keep "$title" || true
		return 0
	fi
	echo "bench.sh: daemon $which benchmark" >&2
	[ -x "$bin/trtd" ] || { CGO_ENABLED=0 go build -trimpath -o "$bin/trtd" ./cmd/trtd &&
		CGO_ENABLED=0 go build -trimpath -o "$bin/trtd-fake-worker" ./cmd/trtd-fake-worker; }
	{
		printf '## %s\n\nCommand: `go run ./test/bench/daemonbench -scale %s -runs %s` (through `make bench`; load average at start: %s)\n\n' \
			"$title" "$which" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
		if ! go run ./test/bench/daemonbench -trtd "$bin/trtd" -worker "$bin/trtd-fake-worker" -runs "$runs" -scale "$which" 2>&1; then
			printf '\nFAILED\n'
		fi
		printf '\n'
	} >>"$body"
}
scale history "Daemon: 10,000 finished jobs and outbox files"
scale flood "Daemon: 1,000 uploads at once"
scale intake "Daemon: one large upload, parsed once"

if ! want fleet; then
	keep "Fleet: engine pull from an OCI registry vs curl" || true
else
	echo "bench.sh: fleet benchmark" >&2
	cmd="go run ./test/bench/fleetbench -size 100M -runs 9 -devices 50"
	{
		printf '## Fleet: engine pull from an OCI registry vs curl\n\nCommand: `%s` (through `make bench`; load average at start: %s)\n\n' "$cmd" "$(cut -d' ' -f1-3 /proc/loadavg)"
		if ! command -v docker-registry >/dev/null; then
			printf 'Not run: Debian'"'"'s docker-registry is not installed (`make deps` installs it).\n'
		elif ! go run ./test/bench/fleetbench -runs 9 -devices 50 2>&1; then
			printf '\nFAILED\n'
		fi
		printf '\n'
	} >>"$body"
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
{
	printf '# Benchmarks\n\n'
	printf 'Rewritten by `make bench` (scripts/bench.sh); do not edit by hand.\n\n'
	printf '| | |\n|---|---|\n'
	printf '| date | %s |\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '| command | `make bench`%s |\n' "$([ "$only" = "$all" ] || echo " (BENCH_ONLY=\"$only\")")"
	printf '| machine | %s CPUs, %s, %s RAM |\n' "$(nproc)" "$cpu" "$mem"
	printf '| kernel | %s |\n' "$(uname -r)"
	printf '| go | %s |\n' "$(go version | cut -d' ' -f3-)"
	printf '| tree | %s |\n\n' "$(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
	printf 'Every figure is measured beside its reference in the same run; noisy\n'
	printf 'machines: medians of several runs with their spread.\n\n'
	cat "$body"
} >"$out"
echo "bench.sh: wrote $out" >&2
