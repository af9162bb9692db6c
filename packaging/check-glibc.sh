#!/bin/bash
# check-glibc.sh fails when a binary needs a symbol version newer than the
# oldest system trtd supports: GLIBC 2.27 on arm64 (JetPack 4.6, Ubuntu
# 18.04), 2.31 on amd64 (Ubuntu 20.04); GLIBCXX 3.4.25 / CXXABI 1.3.11
# (GCC 8's libstdc++ on 18.04); GCC 7.0.0 (its libgcc_s).
#
#   check-glibc.sh ARCH BINARY...
set -euo pipefail
arch=$1
shift
case $arch in
amd64) glibc=2.31 ;;
arm64) glibc=2.27 ;;
*) echo "check-glibc: unsupported architecture '$arch'" >&2; exit 2 ;;
esac
newer() { [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1) == "$1" ]]; }
objdump=objdump
command -v aarch64-linux-gnu-objdump >/dev/null && [[ $arch == arm64 ]] && objdump=aarch64-linux-gnu-objdump
fail=0
for b in "$@"; do
	vers=$($objdump -T "$b" | grep -oE '\b(GLIBC|GLIBCXX|CXXABI|GCC)_[0-9][0-9.]*' | sort -uV || true)
	bad=()
	for v in $vers; do
		n=${v#*_}
		case $v in
		GLIBC_*) newer "$n" "$glibc" && bad+=("$v") ;;
		GLIBCXX_*) newer "$n" 3.4.25 && bad+=("$v") ;;
		CXXABI_*) newer "$n" 1.3.11 && bad+=("$v") ;;
		GCC_*) newer "$n" 7.0.0 && bad+=("$v") ;;
		esac
	done
	if [[ ${#bad[@]} -gt 0 ]]; then
		echo "check-glibc: FAIL: $b needs ${bad[*]} (newest allowed: GLIBC_$glibc, GLIBCXX_3.4.25, CXXABI_1.3.11, GCC_7.0.0):" >&2
		for v in "${bad[@]}"; do $objdump -T "$b" | grep -F "$v" | awk '{print "  " $NF " " $(NF-1)}' >&2; done
		fail=1
	else
		echo "check-glibc: $b: newest $(tr '\n' ' ' <<<"$vers" | grep -oE 'GLIBC_[0-9.]+' | sort -V | tail -1) (<= GLIBC_$glibc), no GLIBCXX beyond 3.4.25"
	fi
done
exit $fail
