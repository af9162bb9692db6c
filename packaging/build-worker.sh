#!/bin/bash
# build-worker.sh builds one shipped cgo worker: trtd-worker for one
# TensorRT ABI (major version) and one architecture, compiled against the
# oldest TensorRT release of that major, linked so that it starts on the
# oldest glibc and libstdc++ trtd supports (docs/PACKAGING.md).
#
#   build-worker.sh ARCH ABI HEADERS OUT
#     ARCH     amd64 | arm64 (arm64 uses Debian's aarch64-linux-gnu cross compiler)
#     ABI      8 | 10 | 11
#     HEADERS  a directory with <release>/include (NvInfer.h ...) and cudastub/
#     OUT      the binary to write
#   VERSION    version compiled in (default: git describe)
#   WORKDIR    scratch directory (default: build/worker)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
die() { echo "build-worker: $*" >&2; exit 1; }

[[ $# -eq 4 ]] || die "usage: build-worker.sh ARCH ABI HEADERS OUT"
arch=$1 abi=$2 headers=$3 out=$4
VERSION=${VERSION:-$(cd "$root" && git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)}

# The oldest release of each ABI the worker must run on: TensorRT keeps the
# ABI backward compatible within a major version and breaks it between them.
case $abi in
8) rel=8.0 ;;
10) rel=10.0 ;;
11) rel=11.1 ;;
*) die "unknown TensorRT ABI '$abi' (8, 10, 11)" ;;
esac
# The oldest glibc each architecture must load on: JetPack 4.6 (Ubuntu
# 18.04) on arm64, Ubuntu 20.04 on amd64. libstdc++ is linked statically.
case $arch in
amd64) floor=2.31 cc=${CC_amd64:-gcc} cxx=${CXX_amd64:-g++} libdir=${LIBDIR_amd64:-/lib/x86_64-linux-gnu} ;;
arm64) floor=2.27 cc=${CC_arm64:-aarch64-linux-gnu-gcc} cxx=${CXX_arm64:-aarch64-linux-gnu-g++} libdir=${LIBDIR_arm64:-/usr/aarch64-linux-gnu/lib} ;;
*) die "unsupported architecture '$arch' (amd64, arm64)" ;;
esac
if [[ ${COMPAT_ONLY:-} != 1 ]]; then # COMPAT_ONLY=1: only the glibc layer (test-compat.sh)
	[[ -d $headers ]] || die "HEADERS $headers is not a directory"
	headers=$(cd "$headers" && pwd)
	inc=$headers/$rel/include
	[[ -f $inc/NvInfer.h ]] || die "$inc/NvInfer.h is missing: HEADERS must hold $rel/include (TensorRT $rel's public headers)"
	[[ -f $headers/cudastub/cuda_runtime_api.h ]] || die "$headers/cudastub/cuda_runtime_api.h is missing"
fi
command -v "$cxx" >/dev/null || die "$cxx is missing (apt-get install g++-aarch64-linux-gnu for arm64)"
[[ -f $libdir/libc.so.6 ]] || die "$libdir/libc.so.6 is missing (the target's C library)"

work=${WORKDIR:-$root/build/worker}/$arch
mkdir -p "$work" "$(dirname "$out")"

# wrap.inc: each listed symbol to its newest version <= floor in the target libc.
le() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1) == "$1" ]]; }
syms=$(objdump -T "$libdir/libc.so.6" "$libdir/libm.so.6")
: >"$work/wrap.inc"
wrapflags=()
while read -r s; do
	[[ -z $s || $s == \#* ]] && continue
	best=""
	for v in $(awk -v s="$s" '$NF == s { v = $(NF-1); gsub(/[()]/, "", v); print v }' <<<"$syms" | sed -n 's/^GLIBC_//p' | sort -uV); do
		le "$v" "$floor" && best=$v
	done
	newest=$(awk -v s="$s" '$NF == s { v = $(NF-1); gsub(/[()]/, "", v); print v }' <<<"$syms" | sed -n 's/^GLIBC_//p' | sort -uV | tail -1)
	[[ -z $newest ]] && continue       # not in this libc: nothing to pin
	le "$newest" "$floor" && continue  # already old enough
	[[ -n $best ]] || die "$s has no version <= GLIBC_$floor in $libdir/libc.so.6"
	echo "TRTD_WRAP($s, \"GLIBC_$best\")" >>"$work/wrap.inc"
	wrapflags+=("-Wl,--wrap=$s")
done <"$here/glibc/wrap.txt"
lsm=$(awk '$NF == "__libc_start_main" { v = $(NF-1); gsub(/[()]/, "", v); print v }' <<<"$syms" | sed -n 's/^GLIBC_//p' | sort -V | head -1)
"$cc" -O2 -fPIC -Wall -Wextra -Werror -I"$work" -DTRTD_LSM_VERSION="\"GLIBC_$lsm\"" -c "$here/glibc/compat.c" -o "$work/compat.o"
# An archive: go passes CGO_LDFLAGS to the linker once per cgo package.
rm -f "$work/libtrtdcompat.a"
ar rcs "$work/libtrtdcompat.a" "$work/compat.o"
wrapflags+=("-Wl,--wrap=__libc_start_main" "-Wl,--wrap=__libc_single_threaded" "-Wl,--wrap=arc4random" "-Wl,--wrap=pthread_cond_clockwait")

# libdl and libpthread by name: on glibc < 2.34 dlopen and pthread_* live there.
# (netgo and osusergo keep Go's resolver and user lookups off libc.)
ldflags="-static-libstdc++ $work/libtrtdcompat.a ${wrapflags[*]} -Wl,--no-as-needed $libdir/libdl.so.2 $libdir/libpthread.so.0"
echo "$ldflags" >"$work/ldflags"  # for packaging/glibc/test-compat.sh
[[ ${COMPAT_ONLY:-} == 1 ]] && exit 0

echo "build-worker: $arch TensorRT $abi.x (headers $rel, glibc <= $floor)"
cd "$root"
env CGO_ENABLED=1 GOOS=linux GOARCH="$arch" CC="$cc" CXX="$cxx" \
	CGO_CPPFLAGS="-isystem $inc -isystem $headers/cudastub" \
	CGO_CFLAGS="-O2" CGO_CXXFLAGS="-O2" CGO_LDFLAGS="$ldflags" \
	go build -tags tensorrt,netgo,osusergo -trimpath -buildmode=pie \
	-ldflags "-s -w -buildid= -X github.com/trtd/trtd/daemon.Version=$VERSION" \
	-o "$out" ./cmd/trtd-worker
"$here/check-glibc.sh" "$arch" "$out"
