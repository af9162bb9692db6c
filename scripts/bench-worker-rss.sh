#!/usr/bin/env bash
# The cgo worker's own memory at the moment the build call starts: its RSS
# at buildSerializedNetwork minus what the TensorRT test double's libraries
# hold (their mappings' Rss in /proc/self/smaps, read by the double at that
# call). That is the memory a Jetson Nano loses to trtd rather than to
# TensorRT. Unsanitized builds of the double and the worker, one per
# TensorRT version, built by `make bench-worker` into $1.
# Usage: scripts/bench-worker-rss.sh DIR "8.2 10.0 11.1" [runs]
set -euo pipefail
dir=$1 versions=$2 runs=${3:-5}
model=/usr/share/libonnx-testdata/data/node/test_add/model.onnx
test -f "$model" || { echo "needs libonnx-testdata ($model)"; exit 1; }
target=$((15 * 1024))
printf '| TensorRT headers | worker RSS at build start | test double libraries | worker own (median of %s) | target | own / target |\n' "$runs"
printf '|---|---|---|---|---|---|\n'
for v in $versions; do
	work=$(mktemp -d)
	cp "$model" "$work/m.onnx"
	prec=fp16
	case $v in 11.*) prec=fp32 ;; esac
	owns=() totals=() libs=()
	for _ in $(seq "$runs"); do
		line=$(printf '{"version":1,"op":"build","backend":"api","work_dir":"%s","model":"m.onnx","engine":"m.engine","settings":{"precision":"%s","workspace_mib":64,"timing_cache":false},"validate_runs":-1}' "$work" "$prec" |
			LD_LIBRARY_PATH="$dir/$v" "$dir/$v/trtd-worker" 2>&1 >/dev/null | grep -m1 'RSS at buildSerializedNetwork' || true)
		[ -n "$line" ] || { echo "| $v | failed: no RSS line from the double | | | | |"; continue 2; }
		t=$(sed -n 's/.*process \([0-9]*\) KiB.*/\1/p' <<<"$line")
		l=$(sed -n 's/.*libraries \([0-9]*\) KiB.*/\1/p' <<<"$line")
		totals+=("$t") libs+=("$l") owns+=("$((t - l))")
	done
	med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
	o=$(med "${owns[@]}") t=$(med "${totals[@]}") l=$(med "${libs[@]}")
	spread=$(printf '%s\n' "${owns[@]}" | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.1f–%.1f", lo/1024, hi/1024}')
	awk -v v="$v" -v t="$t" -v l="$l" -v o="$o" -v s="$spread" -v g="$target" \
		'BEGIN {printf "| %s | %.1f MiB | %.1f MiB | **%.1f MiB** (%s) | 15 MiB | %.2f |\n", v, t/1024, l/1024, o/1024, s, o/g}'
	rm -rf "$work"
done
printf '\nThe worker (cmd/trtd-worker, -tags tensorrt, no sanitizers) runs one build of\n'
printf 'libonnx-testdata'"'"'s test_add against the TensorRT test double (test/trtdouble); the\n'
printf 'double reads /proc/self/smaps when buildSerializedNetwork is called. trtexec'"'"'s own\n'
printf 'figure for the same model needs real TensorRT and is not measured here.\n'
