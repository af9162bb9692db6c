#!/bin/bash
# End-to-end test of the arm64 package on an emulated arm64 system: a Debian
# bookworm arm64 root (debootstrap --foreign, second stage under
# qemu-user-static through binfmt_misc, cached in $TRTD_E2E_CACHE) boots its
# systemd in systemd-nspawn. The arm64 .deb is installed with apt, the unit
# reaches READY, and with the TensorRT test double (test/trtdouble, TensorRT
# 8.2's ABI, cross-compiled for arm64 and laid out where JetPack puts
# TensorRT) a member of group trtd uploads a model over scp that the
# packaged arm64 cgo worker (trtd-worker-trt8) builds: the engine and the
# report land in the outbox. trtd selftest passes there; purge leaves
# nothing of the package.
#
# Needs root, debootstrap, systemd-container, qemu-user-static,
# binfmt-support, g++-aarch64-linux-gnu, libonnx-testdata (the model:
# test_relu) and TRT_HEADERS (the TensorRT headers the double is built
# from); missing packages are installed unless TRTD_E2E_APT=0. make e2e-arm64
# builds and lints the debs first.
#
#   TRTD_E2E_CACHE   where the root is cached (/var/cache/trtd-e2e)
#   TRTD_E2E_MIRROR  Debian mirror (http://deb.debian.org/debian)
#   TRTD_E2E_KEEP=1  keep the container's files after the run
#   TRTD_E2E_JOB_WAIT  seconds the job may take to reach the outbox (300)
#
# Prints one line per check and ends with "e2e: N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${TRTD_E2E_CACHE:-/var/cache/trtd-e2e}
MIRROR=${TRTD_E2E_MIRROR:-http://deb.debian.org/debian}
KEEP=${TRTD_E2E_KEEP:-0}
JOB_WAIT=${TRTD_E2E_JOB_WAIT:-300}
TIMEOUT_BOOT=180
# Bump when the package list or the customisation of the root changes.
ROOTFS_REV=1
ROOTFS_PKGS=systemd,systemd-sysv,dbus,openssh-server,openssh-client,adduser,passwd,procps,jq,file,libstdc++6
LOWER=$CACHE/bookworm-arm64-r$ROOTFS_REV
LOGDIR=$repo/build/e2e-arm64
INBOX=/var/lib/trtd/inbox
OUTBOX=/var/lib/trtd/outbox
TRT_DIR=/usr/lib/aarch64-linux-gnu # where JetPack installs TensorRT
MODEL=/usr/share/libonnx-testdata/data/node/test_relu/model.onnx

# shellcheck source=test/e2e/lib.sh
source "$here/lib.sh"

# --- preconditions ----------------------------------------------------------

[[ $(id -u) -eq 0 ]] || { echo "e2e: needs root (debootstrap, binfmt_misc, systemd-nspawn, overlayfs)"; summary; exit 1; }
need=""
for p in debootstrap:debootstrap systemd-nspawn:systemd-container qemu-aarch64-static:qemu-user-static \
	update-binfmts:binfmt-support aarch64-linux-gnu-g++:g++-aarch64-linux-gnu; do
	command -v "${p%%:*}" >/dev/null || need="$need ${p#*:}"
done
[[ -f $MODEL ]] || need="$need libonnx-testdata"
if [[ -n $need && ${TRTD_E2E_APT:-1} != 0 ]]; then
	log "installing$need"
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >/dev/null 2>&1; } ||
		log "apt-get install$need failed"
fi
missing=""
for t in debootstrap systemd-nspawn nsenter flock mountpoint dpkg-deb qemu-aarch64-static update-binfmts aarch64-linux-gnu-g++ python3; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
[[ -z $missing ]] || fatal "missing tools:$missing"
[[ -f $MODEL ]] || fatal "$MODEL is missing (apt-get install libonnx-testdata)"
[[ -n ${TRT_HEADERS:-} && -f ${TRT_HEADERS:-}/8.2/include/NvInfer.h ]] || fatal "TRT_HEADERS must hold 8.2/include (the TensorRT test double is built from it)"
TRT_HEADERS=$(cd "$TRT_HEADERS" && pwd)
# binfmt_misc runs arm64 programs through qemu; the F flag opens the
# interpreter once, so the container root needs no copy of it.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
	fatal "cannot mount binfmt_misc"
[[ -f /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
	fatal "cannot enable the qemu-aarch64 binfmt handler"
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
	fatal "the qemu-aarch64 binfmt handler lacks the F flag (qemu-user-static's does)"

[[ -s $repo/build/deb/debs.txt ]] || fatal "no packages: run make deb first (build/deb/debs.txt is missing)"
DEB=$(grep "_arm64.deb\$" "$repo/build/deb/debs.txt" | head -1)
[[ -f $DEB ]] || fatal "no arm64 package in build/deb/debs.txt"
log "package $(basename "$DEB")"

# --- the cached root ----------------------------------------------------------

phase "arm64 root"
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
if [[ ! -f $LOWER/.trtd-e2e-complete ]]; then
	log "building the arm64 bookworm root in $LOWER (debootstrap under qemu, cached for later runs)"
	rm -rf "$LOWER.tmp"
	if ! debootstrap --foreign --arch=arm64 --variant=minbase --include="$ROOTFS_PKGS" bookworm "$LOWER.tmp" "$MIRROR" >"$CACHE/debootstrap-arm64.log" 2>&1 ||
		! chroot "$LOWER.tmp" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap-arm64.log" 2>&1; then
		tail -20 "$CACHE/debootstrap-arm64.log"
		fatal "debootstrap failed (log: $CACHE/debootstrap-arm64.log)"
	fi
	echo trtd-e2e >"$LOWER.tmp/etc/hostname"
	ln -sf /dev/null "$LOWER.tmp/etc/systemd/system/console-getty.service"
	rm -f "$LOWER.tmp/etc/machine-id"
	: >"$LOWER.tmp/etc/machine-id"
	touch "$LOWER.tmp/.trtd-e2e-complete"
	mv "$LOWER.tmp" "$LOWER"
else
	log "using the cached root $LOWER"
fi
flock -u 9

# --- the TensorRT test double for arm64 (TensorRT 8.2, CUDA 10.2: JetPack 4.6.x)

phase "TensorRT test double for arm64"
RUN=$(mktemp -d /var/tmp/trtd-e2e-arm64.XXXXXX)
mkdir -p "$RUN/upper" "$RUN/work" "$RUN/root" "$RUN/double"
# make trtdouble with the cross compiler, no sanitizers (qemu-user runs no
# ASan; the double's deliberate use-after-free, reached only when a test
# scripts it, then needs GCC's -Wuse-after-free off), and GO=true: the
# host's sanitized worker it also builds is not needed here (the package's
# arm64 worker is what runs).
if ! make -C "$repo" --no-print-directory trtdouble TRT_HEADERS="$TRT_HEADERS" TRTDOUBLE_VERSIONS=8.2 GO=true \
	TRTDOUBLE_DIR="$RUN/double" TRTDOUBLE_CXX=aarch64-linux-gnu-g++ TRTDOUBLE_SAN=-Wno-use-after-free >"$RUN/double.log" 2>&1; then
	cat "$RUN/double.log"
	fatal "building the arm64 TensorRT test double failed"
fi
check "the double's libnvinfer.so.8 is an arm64 library" bash -c "file -b '$RUN/double/8.2/libnvinfer.so.8' | grep -q aarch64"

# --- boot ---------------------------------------------------------------------

mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" "$RUN/root" ||
	fatal "overlay mount of the root failed"
mkdir -p "$RUN/root/e2e/dev"
printf '127.0.0.1\tlocalhost trtd-e2e\n::1\tlocalhost ip6-localhost\n' >"$RUN/root/etc/hosts"
cp "$DEB" "$MODEL" "$RUN/root/e2e/"
# Stand-ins for a Jetson's GPU device nodes, for selftest's permission check
# (only their modes are read; the double needs none).
for n in nvhost-ctrl nvhost-ctrl-gpu nvmap; do install -m 0666 /dev/null "$RUN/root/e2e/dev/$n"; done
chmod -R a+rX "$RUN/root/e2e"
boot
check "the container's userland is arm64" out_is aarch64 uname -m
check "dpkg in the container is arm64" out_is arm64 dpkg --print-architecture

# --- install --------------------------------------------------------------------
phase "install"
# qemu-user cannot set up the network and IPC namespaces systemd gives the
# unit (PrivateNetwork=, PrivateIPC=: "Failed to set up network namespacing:
# Input/output error"), so the emulated system runs the unit without those
# two; the rest of its sandbox stays. On a real arm64 board they stay on.
cs "mkdir -p /etc/systemd/system/trtd.service.d && printf '[Service]\nPrivateNetwork=no\nPrivateIPC=no\n' >/etc/systemd/system/trtd.service.d/e2e-qemu.conf" ||
	fatal "writing the emulation drop-in"
if ! cs "DEBIAN_FRONTEND=noninteractive apt-get install -y /e2e/$(basename "$DEB")" >"$RUN/install.log" 2>&1; then
	cat "$RUN/install.log"
	fatal "apt install of the arm64 package failed"
fi
pass "apt install ./$(basename "$DEB")"
for abi in 8 10 11; do
	check "trtd-worker-trt$abi is installed and runs (arm64, under qemu)" out_match "compiled against TensorRT $abi\\." /usr/lib/trtd/trtd-worker-trt$abi version
done
check "the unit reaches READY without TensorRT (active)" wait_for 120 c systemctl is-active trtd
check "without TensorRT the daemon falls back to the trtexec worker and says why" \
	wait_for 60 out_match 'in use by the daemon: trtexec .*no libnvinfer.so.N found' trtd version

# --- TensorRT appears: the daemon picks the arm64 cgo worker ------------------------
phase "TensorRT 8 (test double): the cgo worker"
for f in "$RUN"/double/8.2/lib*.so*; do cp "$f" "$RUN/root$TRT_DIR/"; done
cs "ldconfig"
check "libnvinfer.so.8 is where JetPack puts it" c test -f $TRT_DIR/libnvinfer.so.8
cs "systemctl restart trtd"
check "the unit reaches READY again (active)" wait_for 120 c systemctl is-active trtd
check "trtd version: workers trt8, trt10, trt11, trtexec; the daemon uses trt8 (probe passed)" \
	wait_for 60 out_match 'workers: trt8, trt10, trt11, trtexec.*in use by the daemon: trt8 \(/usr/lib/trtd/trtd-worker-trt8\): matches libnvinfer.so.8 .*probe passed' trtd version
check "trtd diagnose names the worker in use" out_match 'in use by the daemon: trt8' trtd diagnose

cs 'useradd -m -s /bin/bash -G trtd alice' || fatal "useradd alice"
as_user 'mkdir -p ~/.ssh && ssh-keygen -q -t ed25519 -N "" -f ~/.ssh/id_ed25519 &&
	cp ~/.ssh/id_ed25519.pub ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys && cp /e2e/model.onnx ~/relu.onnx' ||
	fatal "alice's ssh key"
c systemctl start ssh
wait_for 60 c systemctl is-active ssh
t_up=$(date +%s)
if out=$(as_user "scp -o BatchMode=yes -o StrictHostKeyChecking=accept-new ~/relu.onnx localhost:$INBOX/relu.onnx" 2>&1); then
	pass "alice (group trtd): scp relu.onnx into the inbox"
else
	fail "alice: scp: $out"
fi
if wait_for "$JOB_WAIT" c test -s "$OUTBOX/relu.engine"; then
	pass "relu: engine in the outbox after $(($(date +%s) - t_up)) s"
	wait_for 60 c test -s "$OUTBOX/relu.report.json"
	check "relu: report outcome built" out_is built jq -r .outcome $OUTBOX/relu.report.json
	check "relu: built by the arm64 cgo worker trtd-worker-trt8 (API backend)" out_is "api /usr/lib/trtd/trtd-worker-trt8" \
		jq -r '.builder.backend + " " + .builder.worker' $OUTBOX/relu.report.json
	check "relu: the report names TensorRT 8.2 and why this worker" out_match '^8\.2.* matches libnvinfer.so.8' \
		jq -r '.builder.tensorrt + " " + .builder.worker_reason' $OUTBOX/relu.report.json
	check "relu: the Markdown report is there" c test -s $OUTBOX/relu.report.md
else
	fail "relu: no engine in the outbox within $JOB_WAIT s"
fi

# --- selftest --------------------------------------------------------------------
phase "trtd selftest"
c find $INBOX $OUTBOX -printf '%p %T@\n' 2>/dev/null | sort >"$RUN/boxes.before"
st_t=$(date +%s%N)
c trtd selftest --dev /e2e/dev >"$RUN/selftest.txt" 2>&1
st_rc=$?
log "selftest took $((($(date +%s%N) - st_t) / 1000000)) ms (emulated), exit $st_rc"
sed 's/^/e2e: selftest| /' "$RUN/selftest.txt"
check "trtd selftest passes (exit 0)" test "$st_rc" -eq 0
check "selftest built through the API with trtd-worker-trt8 as user trtd" grep -q '^PASS  build through api: trtd-worker-trt8' "$RUN/selftest.txt"
check "selftest ran the worker as trtd" grep -q '^PASS  worker user: trtd ' "$RUN/selftest.txt"
c find $INBOX $OUTBOX -printf '%p %T@\n' 2>/dev/null | sort >"$RUN/boxes.after"
check "selftest touched neither inbox nor outbox" cmp -s "$RUN/boxes.before" "$RUN/boxes.after"

# --- purge -----------------------------------------------------------------------
phase "purge"
# The emulation drop-in is the admin's file, not the package's.
cs "rm -rf /etc/systemd/system/trtd.service.d && systemctl daemon-reload"
cs "DEBIAN_FRONTEND=noninteractive apt-get purge -y trtd" >"$RUN/purge.log" 2>&1
check "purge: dpkg forgot the package" no dpkg-query -W trtd
check "purge: no unit, binary, worker or config left" out_is "" bash -c "ls -d /usr/bin/trtd /usr/lib/trtd /etc/trtd /run/trtd /var/lib/trtd/state /var/lib/trtd/swap /lib/systemd/system/trtd.service 2>/dev/null; systemctl list-unit-files --no-legend 'trtd*'"
check "purge: no user or group trtd" no bash -c "getent passwd trtd || getent group trtd"
check "purge: no trtd process" no pgrep -f /usr/bin/trtd

finish
