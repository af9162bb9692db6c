#!/bin/bash
# Installs the Debian packages the test suite uses, saying first what and
# why, and leaves no service enabled or running that was not before (a
# package such as openssh-server enables and starts its daemon when it is
# installed; the tests start their own sshd on a random loopback port).
#
#   scripts/deps.sh          say what is missing, then install it
#   scripts/deps.sh --dry    only say what is missing
#
# Run as root. For tests: TRTD_DEPS_ROOT prefixes the paths this script
# changes (policy-rc.d, the systemd unit links) and TRTD_DEPS_INSTALL is run
# instead of apt-get.
set -euo pipefail

root=${TRTD_DEPS_ROOT:-}
dry=false
[ "${1:-}" = --dry ] && dry=true

# package|why the tests need it
table='python3-onnx|builds test models and checks the ONNX reader against the reference implementation
libonnx-testdata|ONNX conformance models for the reader and the splitter
python3-torch|exports real PyTorch models to ONNX (large: about 1 GB installed)
python3-torchvision|real model architectures (resnet, mobilenet) for the split and memory tests
openssh-server|an sshd on a random loopback port for the scp upload and offload tests (left disabled)
openssh-client|scp and ssh for the upload and offload tests
rsync|the offload tests copy models with rsync over ssh
time|/usr/bin/time -v measures peak memory in the benchmarks
util-linux|swapon, losetup, mkswap for the swap tests
e2fsprogs|mkfs.ext4 for the loop-device filesystem tests
procps|ps and free in the end-to-end scripts
chromium|renders the HTML report headless for the layout test and screenshots
fonts-dejavu-core|the fonts the HTML report falls back to
g++|compiles the worker'"'"'s C++ shim in the cgo tests
nodejs|runs split models through onnxruntime for the splitter test
docker-registry|a real OCI registry on 127.0.0.1 for the fleet pull and push tests (left disabled)'

# Tests give their own table (TRTD_DEPS_TABLE, same format).
table=${TRTD_DEPS_TABLE:-$table}
missing=()
while IFS='|' read -r pkg why; do
	dpkg -s "$pkg" >/dev/null 2>&1 && continue
	missing+=("$pkg")
	printf '  %-20s %s\n' "$pkg" "$why"
done <<<"$table" >/tmp/trtd-deps.$$
if [ ${#missing[@]} -eq 0 ]; then
	rm -f /tmp/trtd-deps.$$
	echo "make deps: every Debian package the tests use is installed"
	exit 0
fi
echo "make deps: the tests need these Debian packages, not installed yet:"
cat /tmp/trtd-deps.$$
rm -f /tmp/trtd-deps.$$
if $dry; then
	exit 0
fi
echo "make deps: installing them with apt-get (services they ship are left disabled and stopped)"

# Enabled units before, as the links systemd reads.
links() { find "$root/etc/systemd/system" -type l 2>/dev/null | sort; }
before=$(links)
# Keep maintainer scripts from starting daemons (invoke-rc.d honours
# policy-rc.d; 101 = action forbidden). Ours only if there was none.
policy="$root/usr/sbin/policy-rc.d"
ours=false
if [ ! -e "$policy" ]; then
	mkdir -p "$(dirname "$policy")"
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours=true
fi
cleanup() {
	if $ours; then rm -f "$policy"; fi
}
trap cleanup EXIT

if [ -z "$root" ]; then
	apt-get update -qq || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	"${TRTD_DEPS_INSTALL:?TRTD_DEPS_ROOT needs TRTD_DEPS_INSTALL}" "${missing[@]}"
fi

# Whatever the packages enabled is disabled again: remove the new links.
new=$(comm -13 <(echo "$before") <(links) || true)
for l in $new; do
	unit=$(basename "$l")
	rm -f "$l"
	echo "make deps: left $unit disabled (it was not enabled before)"
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl stop "$unit" >/dev/null 2>&1 || true
	fi
done
if [ -z "$root" ] && [ -d /run/systemd/system ] && [ -n "$new" ]; then
	systemctl daemon-reload || true
fi
