#!/bin/bash
# Benchmark: `trtd inspect --json MODEL` vs `python3 -c "import onnx; onnx.load(MODEL)"`
# on resnet50 and vgg16 exports and on a model of many nodes (the daemon's
# intake benchmark model: 30,000 Add nodes and 30,000 initializers, 220 MB,
# written by test/bench/daemonbench -intake-model): median wall time and
# median peak RSS of RUNS runs each (after one warm-up run, so both read
# from the page cache), and the ratios. Prints a Markdown table.
#
# Usage: converter/onnx/testdata/bench_inspect.sh [RUNS]   (from the repository root)
# Env:   TRTD_FIXTURES  cache of exported models (default $TMPDIR/trtd-fixtures)
#        TRTD_BIN       trtd binary to measure (default: built here, CGO_ENABLED=0)
# Needs: go, /usr/bin/time (Debian package time), python3-onnx, python3-torch,
#        python3-torchvision (to export the models once).
set -euo pipefail

runs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${TRTD_FIXTURES:-${TMPDIR:-/tmp}/trtd-fixtures}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -x /usr/bin/time ] || { echo "bench_inspect.sh: /usr/bin/time missing: apt-get install time" >&2; exit 1; }
"$py" -c 'import onnx' 2>/dev/null || { echo "bench_inspect.sh: $py has no onnx: apt-get install python3-onnx" >&2; exit 1; }

bin=${TRTD_BIN:-}
if [ -z "$bin" ]; then
	bin=$work/trtd
	(cd "$here/../../.." && CGO_ENABLED=0 go build -o "$bin" ./cmd/trtd)
fi
"$py" "$here/make_fixtures.py" "$fixtures" --only resnet50,vgg16 >&2
(cd "$here/../../.." && go run ./test/bench/daemonbench -intake-model "$work/intake-30k-nodes.onnx")

# measure CMD...: prints "seconds kib" for one run. Peak RSS is taken by
# /usr/bin/time, a small parent: a child's ru_maxrss keeps the high-water
# mark of the process it was forked from until its exec, so a large parent
# (a benchmark holding the model in memory) would count as the child's.
measure() {
	local t0 t1
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$work/rss")"
}

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "| model | file | trtd inspect --json | onnx.load | faster | trtd peak RSS | onnx.load peak RSS | less RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in resnet50 vgg16 intake-30k-nodes; do
	model=$fixtures/$name.onnx
	[ -f "$model" ] || model=$work/$name.onnx
	measure "$bin" inspect --json "$model" >/dev/null
	measure "$py" -c "import onnx; onnx.load('$model')" >/dev/null
	: >"$work/trtd.txt"
	: >"$work/py.txt"
	for _ in $(seq "$runs"); do
		measure "$bin" inspect --json "$model" >>"$work/trtd.txt"
		measure "$py" -c "import onnx; onnx.load('$model')" >>"$work/py.txt"
	done
	tu=$(cut -d' ' -f1 "$work/trtd.txt" | median)
	tk=$(cut -d' ' -f2 "$work/trtd.txt" | median)
	pu=$(cut -d' ' -f1 "$work/py.txt" | median)
	pk=$(cut -d' ' -f2 "$work/py.txt" | median)
	size=$(stat -c %s "$model")
	awk -v n="$name" -v s="$size" -v tu="$tu" -v tk="$tk" -v pu="$pu" -v pk="$pk" 'BEGIN {
		printf "| %s | %.0f MiB | %.3f s | %.3f s | %.0f× | %.1f MiB | %.1f MiB | %.0f× |\n",
			n, s/1048576, tu/1e6, pu/1e6, pu/tu, tk/1024, pk/1024, pk/tk }'
done
echo
echo "Median of $runs runs after a warm-up run (page cache warm), $(nproc) cores, $(uname -m); $("$bin" version 2>/dev/null | head -1 || true), python3-onnx $("$py" -c 'import onnx; print(onnx.__version__)')."
