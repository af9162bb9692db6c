#!/bin/bash
# Time and peak RSS of `trtd split MODEL --parts K` against `cp` of the same
# file, in the same run, on the same filesystem; prints Markdown rows.
#
# Usage: bench_split.sh TRTD MODEL [K] [RUNS]
#
# Each measurement starts with the model in the page cache and no dirty
# pages left by the previous one (sync, untimed). Wall time is the median
# of RUNS, and so is CPU time (user + system: what the copy itself costs,
# less sensitive than wall time to other load and to writeback); peak RSS
# (GNU time's maximum resident set size) is the largest seen.
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

# run NAME CMD...: appends "seconds kib cpu-seconds" to $work/NAME
run() {
	local name=$1; shift
	rm -rf "$work/out"
	sync
	local t0=$EPOCHREALTIME
	/usr/bin/time -f "%M %U %S" -o "$work/rss" "$@" >/dev/null
	local t1=$EPOCHREALTIME
	read -r kib usr sys <"$work/rss"
	awk -v a="$t0" -v b="$t1" -v k="$kib" -v u="$usr" -v s="$sys" 'BEGIN {printf "%.4f %d %.2f\n", b - a, k, u + s}' >>"$work/$name"
}
for _ in $(seq "$runs"); do
	run split "$trtd" split "$model" --parts "$k" --out "$work/out"
	run cp cp "$model" "$work/out"
	run splitsync "$trtd" split "$model" --parts "$k" --out "$work/out" --sync
	run cpsync sh -c 'cp "$1" "$2" && sync "$2"' sh "$model" "$work/out"
done
rm -rf "$work/out"
# median NAME [COLUMN]
median() {
	local c=${2:-1}
	sort -n -k$c,$c "$work/$1" | awk -v c=$c '{a[NR]=$c} END {printf "%.3f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
rss() { sort -n -k2,2 "$work/$1" | tail -1 | awk '{printf "%.1f", $2/1024}'; }
size=$(stat -c %s "$model")
mib=$((size / 1048576))
name=$(basename "$model" .onnx)
echo "| what | split: wall s | split: CPU s | split: peak RSS MiB | cp: wall s | cp: CPU s | cp: peak RSS MiB | speed vs cp (wall) | speed vs cp (CPU) |"
echo "|---|---|---|---|---|---|---|---|---|"
for pair in "split cp" "splitsync cpsync"; do
	set -- $pair
	label="$name ($mib MiB) in $k vs cp (medians of $runs)"
	[ "$1" = splitsync ] && label="$name ($mib MiB) in $k --sync vs cp + sync FILE (medians of $runs)"
	s=$(median "$1"); c=$(median "$2"); sc=$(median "$1" 3); cc=$(median "$2" 3)
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
	echo "| $label | $s | $sc | $(rss "$1") | $c | $cc | $(rss "$2") | $(ratio "$c" "$s") | $(ratio "$cc" "$sc") |"
done
