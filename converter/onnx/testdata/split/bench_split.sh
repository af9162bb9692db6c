#!/bin/bash
# Time and peak RSS of `trtd split MODEL --parts K` against `cp` of the same
# file, in the same run, on the same filesystem; prints Markdown rows.
#
# Usage: bench_split.sh TRTD MODEL [K] [RUNS]
#
# Each measurement starts with the model in the page cache and no dirty
# pages left by the previous one (sync, untimed). Wall time is the median
# of RUNS; peak RSS (GNU time's maximum resident set size) the largest seen.
# The second row compares `trtd split --sync` (fsyncs the parts) with cp
# followed by `sync FILE`.
set -euo pipefail
trtd=${1:?usage: bench_split.sh TRTD MODEL [K] [RUNS]}
model=${2:?usage: bench_split.sh TRTD MODEL [K] [RUNS]}
k=${3:-4}
runs=${4:-5}
[ -x /usr/bin/time ] || { echo "bench_split.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
[ -f "$model" ] || { echo "bench_split.sh: $model missing (make fixtures-vgg16)" >&2; exit 1; }
work=$(mktemp -d "$(dirname "$model")/.trtd-bench-split.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat "$model" >/dev/null # into the page cache

# run NAME CMD...: appends "seconds kib" to $work/NAME
run() {
	local name=$1; shift
	rm -rf "$work/out"
	sync
	local t0=$EPOCHREALTIME
	/usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null
	local t1=$EPOCHREALTIME
	echo "$(echo "$t1 - $t0" | bc -l) $(cat "$work/rss")" >>"$work/$name"
}
for _ in $(seq "$runs"); do
	run split "$trtd" split "$model" --parts "$k" --out "$work/out"
	run cp cp "$model" "$work/out"
	run splitsync "$trtd" split "$model" --parts "$k" --out "$work/out" --sync
	run cpsync sh -c 'cp "$1" "$2" && sync "$2"' sh "$model" "$work/out"
done
rm -rf "$work/out"
median() { sort -n -k1,1 "$work/$1" | awk '{a[NR]=$1} END {printf "%.3f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rss() { sort -n -k2,2 "$work/$1" | tail -1 | awk '{printf "%.1f", $2/1024}'; }
size=$(stat -c %s "$model")
mib=$(echo "$size / 1048576" | bc)
name=$(basename "$model" .onnx)
echo "| what | split: median s (of $runs) | split: peak RSS MiB | cp: median s | cp: peak RSS MiB | split speed / cp speed |"
echo "|---|---|---|---|---|---|"
for pair in "split cp" "splitsync cpsync"; do
	set -- $pair
	label="$name ($mib MiB) in $k, no fsync vs cp"
	[ "$1" = splitsync ] && label="$name ($mib MiB) in $k, --sync vs cp + sync FILE"
	s=$(median "$1"); c=$(median "$2")
	echo "| $label | $s | $(rss "$1") | $c | $(rss "$2") | $(echo "scale=2; $c / $s" | bc -l) |"
done
