#!/bin/bash
# test-compat.sh proves the glibc compatibility layer on this machine's
# glibc: a C++ program linked exactly like the shipped workers runs its
# constructor and destructor once, times out a steady-clock wait, starts a
# thread (arm64 under qemu-user), and check-glibc.sh passes it while
# failing a binary linked the ordinary way. Run by lint-deb.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pkg=$(cd "$here/.." && pwd)
root=$(cd "$pkg/.." && pwd)
work=${WORKDIR:-$root/build/worker}
fail=0
for arch in ${ARCHES:-amd64 arm64}; do
	case $arch in
	amd64) cxx=g++ run=() ;;
	arm64) cxx=aarch64-linux-gnu-g++ run=(qemu-aarch64-static -L /usr/aarch64-linux-gnu) ;;
	esac
	WORKDIR=$work COMPAT_ONLY=1 "$pkg/build-worker.sh" "$arch" 8 - /dev/null >/dev/null
	# shellcheck disable=SC2046
	"$cxx" -O2 -fPIE -pie "$here/testdata/compat.cc" -o "$work/$arch/compat-test" $(cat "$work/$arch/ldflags")
	"$cxx" -O2 "$here/testdata/compat.cc" -o "$work/$arch/plain-test"
	if [[ $arch == arm64 ]] && ! command -v qemu-aarch64-static >/dev/null; then
		echo "test-compat: arm64: qemu-aarch64-static missing (apt-get install qemu-user-static): not run"
	else
		out=$("${run[@]}" "$work/$arch/compat-test")
		want=$'constructor 1\nthread shared\nmain constructed=1 timeout=1 waited_enough=1\ndestructor'
		if [[ $out == "$want" ]]; then echo "test-compat: $arch: constructors once, steady wait, thread: ok"; else
			echo "test-compat: FAIL: $arch: got:"$'\n'"$out"$'\n'"want:"$'\n'"$want" >&2; fail=1; fi
	fi
	"$pkg/check-glibc.sh" "$arch" "$work/$arch/compat-test" >/dev/null || { echo "test-compat: FAIL: $arch: the compat-linked program needs a newer glibc" >&2; fail=1; }
	if "$pkg/check-glibc.sh" "$arch" "$work/$arch/plain-test" >/dev/null 2>&1; then
		echo "test-compat: FAIL: $arch: check-glibc.sh passed a program linked without the compat layer" >&2; fail=1
	else
		echo "test-compat: $arch: check-glibc.sh rejects an ordinary link: ok"
	fi
done
exit $fail
