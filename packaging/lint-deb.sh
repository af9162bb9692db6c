#!/bin/bash
# lint-deb.sh checks the packages build-deb.sh just built (listed in
# build/deb/debs.txt): lintian with no errors, the expected contents and
# conffile, no test double inside, every binary of the right architecture
# and needing no glibc/libstdc++ symbol version newer than the oldest target
# has (check-glibc.sh), and the unit through systemd-analyze verify and
# security (exposure at most SECURITY_THRESHOLD, in tenths).
#   TRTD_WORKER_ABIS  the cgo workers each package must carry: "8 10 11"
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
OUT=${OUT:-$root/build/deb}
SECURITY_THRESHOLD=${SECURITY_THRESHOLD:-40}

TRTD_WORKER_ABIS=${TRTD_WORKER_ABIS:-8 10 11}
fail=0
bad() { echo "lint-deb: FAIL: $*" >&2; fail=1; }

[[ -s $OUT/debs.txt ]] || { echo "lint-deb: $OUT/debs.txt is missing: run make deb first" >&2; exit 1; }
mapfile -t debs <"$OUT/debs.txt"

if ! command -v lintian >/dev/null && [[ $(id -u) -eq 0 && ${TRTD_E2E_APT:-1} != 0 ]]; then
	echo "lint-deb: installing lintian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends lintian >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends lintian >/dev/null 2>&1; } || true
fi
for tool in lintian dpkg-deb systemd-analyze; do
	command -v "$tool" >/dev/null || { echo "lint-deb: $tool is missing (apt-get install lintian systemd)" >&2; exit 1; }
done

for deb in "${debs[@]}"; do
	name=$(basename "$deb")
	# Lintian: errors fail; the summary line counts every class.
	out=$(lintian --pedantic --show-overrides "$deb" 2>&1 | grep -v '^running with root privileges' || true)
	[[ -n $out ]] && printf '%s\n' "$out" | grep -v '^N:' | sed "s/^/lintian: /"
	count() { printf '%s\n' "$out" | grep -c "^$1: " || true; }
	echo "lint-deb: $name: lintian errors=$(count E) warnings=$(count W) info=$(count I) pedantic=$(count P) overridden=$(count O)"
	[[ $(count E) -eq 0 ]] || bad "$name: lintian reports errors"

	# Contents.
	list=$(dpkg-deb -c "$deb" | awk '{print $6}')
	for p in ./usr/bin/trtd ./usr/lib/trtd/trtd-worker ./lib/systemd/system/trtd.service \
		./etc/trtd/config.toml ./usr/share/doc/trtd/copyright ./usr/share/doc/trtd/changelog.gz \
		./usr/share/lintian/overrides/trtd $(for a in $TRTD_WORKER_ABIS; do echo ./usr/lib/trtd/trtd-worker-trt$a; done); do
		grep -qxF "$p" <<<"$list" || bad "$name: $p is missing"
	done
	if grep -qi fake <<<"$list"; then bad "$name: a test double is packaged: $(grep -i fake <<<"$list")"; fi
	conff=$(dpkg-deb -f "$deb" >/dev/null; dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles 2>/dev/null || true)
	[[ $conff == "/etc/trtd/config.toml" ]] || bad "$name: conffiles is '$conff', want /etc/trtd/config.toml"
	arch=$(dpkg-deb -f "$deb" Architecture)
	tmp=$(mktemp -d)
	dpkg-deb -x "$deb" "$tmp"
	want=$([[ $arch == arm64 ]] && echo aarch64 || echo x86-64)
	for b in "$tmp"/usr/bin/trtd "$tmp"/usr/lib/trtd/trtd-worker*; do
		b=${b#"$tmp/"}
		file -b "$tmp/$b" 2>/dev/null | grep -q "$want" || [[ ! -x /usr/bin/file ]] || bad "$name: $b is not $want: $(file -b "$tmp/$b")"
	done
	# Every dynamically linked binary must load on the oldest target.
	dyn=()
	while IFS= read -r -d '' f; do
		readelf -d "$f" 2>/dev/null | grep -q NEEDED && dyn+=("$f")
	done < <(find "$tmp" -type f -perm -u+x -print0)
	if [[ ${#dyn[@]} -gt 0 ]]; then
		"$here/check-glibc.sh" "$arch" "${dyn[@]}" | sed "s|$tmp/||; s/^/lint-deb: $name: /" || bad "$name: a binary needs a newer glibc or libstdc++ than the oldest target"
	fi

	# The unit: verify needs /usr/bin/trtd to exist, so it runs in a private
	# mount namespace with the package's /usr/bin laid over the host's.
	if [[ $arch == "$(dpkg --print-architecture)" ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			if v=$(unshare -m sh -c "mount -t overlay overlay -o lowerdir=$tmp/usr/bin:/usr/bin /usr/bin &&
				mkdir -p /usr/lib/trtd && mount --bind $tmp/usr/lib/trtd /usr/lib/trtd &&
				systemd-analyze verify $tmp/lib/systemd/system/trtd.service" 2>&1); then
				echo "lint-deb: $name: systemd-analyze verify: clean"
			else
				bad "$name: systemd-analyze verify: $v"
			fi
		else
			echo "lint-deb: $name: systemd-analyze verify skipped: needs root for a private mount namespace"
		fi
	fi
	sec=$(systemd-analyze security --offline=yes --threshold="$SECURITY_THRESHOLD" "$tmp/lib/systemd/system/trtd.service" 2>&1) || bad "$name: security exposure over ${SECURITY_THRESHOLD%?}.${SECURITY_THRESHOLD: -1}: $(tail -1 <<<"$sec")"
	echo "lint-deb: $name: $(grep 'Overall exposure' <<<"$sec" | sed 's/^→ //')"
	rm -rf "$tmp"
done

# The glibc layer itself: constructors, waits and threads on this glibc,
# and check-glibc.sh failing an ordinary link (so the check above can fail).
"$here/glibc/test-compat.sh" | sed 's/^/lint-deb: /' || bad "the glibc compatibility test failed"

if [[ $fail -ne 0 ]]; then
	echo "lint-deb: FAILED"
	exit 1
fi
echo "lint-deb: ok (${#debs[@]} packages)"
