#!/bin/bash
# Helpers run through check(); shellcheck cannot see those calls.
# shellcheck disable=SC2317
# End-to-end test of the trtd package: a Debian bookworm root (debootstrap,
# cached in $TRTD_E2E_CACHE) boots systemd 252 in systemd-nspawn; inside it
# the .deb is installed with apt, a user of group trtd uploads real ONNX
# models over ssh with scp (SFTP and the legacy protocol, one at mode 0600),
# and the test follows the jobs through systemd, journald and the outbox:
# without TensorRT, then with the worker's test double (an out-of-memory
# stage followed by a good one), across a SIGKILL of the daemon mid-job, a
# SIGSTOP caught by the watchdog, an upgrade over an edited conffile, and a
# purge.
#
# Needs root, debootstrap, systemd-container (systemd-nspawn), util-linux
# (nsenter), and Debian's python3-torch, python3-torchvision, python3-onnx
# (to export the model); missing packages are installed with apt-get unless
# TRTD_E2E_APT=0. make e2e builds and lints the debs first.
#
#   TRTD_E2E_CACHE   where the root and the models are cached (/var/cache/trtd-e2e)
#   TRTD_E2E_MIRROR  Debian mirror (http://deb.debian.org/debian)
#   TRTD_E2E_KEEP=1  keep the container's files after the run (for debugging)
#   TRTD_E2E_JOB_WAIT  seconds one job may take to reach the outbox (180)
#
# Prints one line per check and ends with "e2e: N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${TRTD_E2E_CACHE:-/var/cache/trtd-e2e}
MIRROR=${TRTD_E2E_MIRROR:-http://deb.debian.org/debian}
KEEP=${TRTD_E2E_KEEP:-0}
# Deadline for one job to reach the outbox (a deadline, not a speed target).
JOB_WAIT=${TRTD_E2E_JOB_WAIT:-180}
# Bump when the package list or the customisation of the root changes.
ROOTFS_REV=1
ROOTFS_PKGS=systemd,systemd-sysv,dbus,openssh-server,openssh-client,adduser,passwd,procps,jq,less,file
LOWER=$CACHE/bookworm-r$ROOTFS_REV
LOGDIR=$repo/build/e2e
INBOX=/var/lib/trtd/inbox
OUTBOX=/var/lib/trtd/outbox
FAKE_DST=/usr/local/lib/trtd-e2e/trtd-fake-worker

# shellcheck source=test/e2e/lib.sh
source "$here/lib.sh"

# --- preconditions ----------------------------------------------------------

[[ $(id -u) -eq 0 ]] || { echo "e2e: needs root (debootstrap, systemd-nspawn, overlayfs)"; summary; exit 1; }
# Debian packages this needs on the host; installed when missing (CI runs as
# root on Debian) unless TRTD_E2E_APT=0.
need=""
command -v debootstrap >/dev/null || need="$need debootstrap"
command -v systemd-nspawn >/dev/null || need="$need systemd-container"
# One interpreter start (importing torch takes seconds): print what is missing.
pymissing=$(/usr/bin/python3 -c '
import importlib.util as u
print(" ".join("python3-" + m for m in ("onnx", "torch", "torchvision") if u.find_spec(m) is None))' 2>/dev/null || echo python3-onnx python3-torch python3-torchvision)
[[ -n $pymissing ]] && need="$need $pymissing"
if [[ -n $need && ${TRTD_E2E_APT:-1} != 0 ]]; then
	log "installing$need"
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >/dev/null 2>&1; } ||
		log "apt-get install$need failed"
fi
missing=""
for t in debootstrap systemd-nspawn nsenter unshare flock mountpoint dpkg-deb; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
[[ -z $missing ]] || fatal "missing tools:$missing (apt-get install debootstrap systemd-container util-linux)"
if [[ ! -f $CACHE/models/model-6.onnx ]]; then
	/usr/bin/python3 -c 'import onnx, torch, torchvision' 2>/dev/null ||
		fatal "Debian's python3-onnx, python3-torch and python3-torchvision are needed to export the model"
fi

arch=$(dpkg --print-architecture)
[[ -s $repo/build/deb/debs.txt ]] || fatal "no packages: run make deb first (build/deb/debs.txt is missing)"
DEB=$(grep "_$arch.deb\$" "$repo/build/deb/debs.txt" | head -1)
[[ -f $DEB ]] || fatal "no $arch package in build/deb/debs.txt"
DEB_VERSION=$(dpkg-deb -f "$DEB" Version)
log "package $(basename "$DEB")"

# --- the cached root ----------------------------------------------------------

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
if [[ ! -f $LOWER/.trtd-e2e-complete ]]; then
	log "building the bookworm root in $LOWER (debootstrap, cached for later runs)"
	rm -rf "$LOWER.tmp"
	if ! debootstrap --variant=minbase --include="$ROOTFS_PKGS" bookworm "$LOWER.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
		tail -20 "$CACHE/debootstrap.log"
		fatal "debootstrap failed (log: $CACHE/debootstrap.log)"
	fi
	echo trtd-e2e >"$LOWER.tmp/etc/hostname"
	# No login prompt on the console of a container nobody types into.
	ln -sf /dev/null "$LOWER.tmp/etc/systemd/system/console-getty.service"
	rm -f "$LOWER.tmp/etc/machine-id"
	: >"$LOWER.tmp/etc/machine-id"
	apt-get -o RootDir="$LOWER.tmp" clean >/dev/null 2>&1 || true
	touch "$LOWER.tmp/.trtd-e2e-complete"
	mv "$LOWER.tmp" "$LOWER"
else
	log "using the cached root $LOWER"
fi
# Models: SqueezeNet 1.1 exported by torch, variants differ in one weight.
if [[ ! -f $CACHE/models/model-6.onnx ]]; then
	/usr/bin/python3 "$here/make-models.py" "$CACHE/models" 6 >"$CACHE/models.log" 2>&1 ||
		fatal "exporting the models failed: $(tail -3 "$CACHE/models.log")"
fi
flock -u 9

# --- boot -------------------------------------------------------------------

RUN=$(mktemp -d /var/tmp/trtd-e2e.XXXXXX)
mkdir -p "$RUN/upper" "$RUN/work" "$RUN/root"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" "$RUN/root" ||
	fatal "overlay mount of the root failed"
mkdir -p "$RUN/root/e2e/models" "$RUN/varlib"
printf '127.0.0.1\tlocalhost trtd-e2e\n::1\tlocalhost ip6-localhost\n' >"$RUN/root/etc/hosts"
cp "$DEB" "$RUN/root/e2e/"
cp "$CACHE"/models/model-*.onnx "$RUN/root/e2e/models/"
chmod -R a+rX "$RUN/root/e2e"

# The test double of the worker (never in the deb).
FAKE=""
if compgen -G "$repo/cmd/trtd-fake-worker/*.go" >/dev/null; then
	if (cd "$repo" && CGO_ENABLED=0 go build -o "$RUN/root/e2e/trtd-fake-worker" ./cmd/trtd-fake-worker) 2>"$RUN/fake-build.log"; then
		FAKE=/e2e/trtd-fake-worker
	else
		fail "building cmd/trtd-fake-worker: $(tail -3 "$RUN/fake-build.log")"
	fi
else
	fail "cmd/trtd-fake-worker does not exist: the ladder pass cannot run"
fi

# The upgrade: the same package with a higher version.
up=$RUN/repack
dpkg-deb -R "$DEB" "$up"
UP_VERSION="$DEB_VERSION+e2e.1"
sed -i "s/^Version: .*/Version: $UP_VERSION/" "$up/DEBIAN/control"
dpkg-deb -Zgzip --root-owner-group -b "$up" "$RUN/root/e2e/trtd_${UP_VERSION}_$arch.deb" >/dev/null ||
	fatal "repacking the upgrade package failed"
rm -rf "$up"

# --system-call-filter=@swap: nspawn blocks swapon by default; the daemon's
# own swap handling runs under the unit's sandbox here (teardown switches
# off whatever a failed run left on). /var/lib/trtd is a directory of the
# host's filesystem, not the overlay root: a swapfile needs a real one.
boot --system-call-filter=@swap --bind="$RUN/varlib:/var/lib/trtd"
check "systemd in the container is 252" out_match '^systemd 252 ' systemctl --version

# --- 1. install ---------------------------------------------------------------
phase "install"

if ! cs "DEBIAN_FRONTEND=noninteractive apt-get install -y /e2e/$(basename "$DEB")" >"$RUN/install.log" 2>&1; then
	cat "$RUN/install.log"
	fatal "apt install of the package failed"
fi
pass "apt install ./$(basename "$DEB")"
check "the unit is enabled" c systemctl is-enabled trtd
wait_for 30 c systemctl is-active trtd
check "the unit is active (Type=notify: READY=1 was sent)" c systemctl is-active trtd
status_text=$(c systemctl show -p StatusText --value trtd)
check "the daemon sent a STATUS= line ($status_text)" test -n "$status_text"
check "systemctl status trtd shows the STATUS line" out_match $'\n[[:space:]]+Status: "' systemctl status --no-pager trtd
check "the watchdog is armed (WatchdogUSec=30s)" out_is 30s systemctl show -p WatchdogUSec --value trtd
check "system user trtd exists" c getent passwd trtd
check "inbox is root:trtd 3770" out_is 'root:trtd 3770' stat -c '%U:%G %a' $INBOX
check "outbox is root:trtd 750" out_is 'root:trtd 750' stat -c '%U:%G %a' $OUTBOX
check "/etc/trtd/config.toml is a conffile" out_match '/etc/trtd/config.toml [0-9a-f]{32}' dpkg-query -W -f='${Conffiles}' trtd
check "trtd version prints the build's version" out_match '[0-9a-f]{7}|[0-9]+\.[0-9]+' /usr/bin/trtd version
verify=$(c systemd-analyze verify trtd.service 2>&1)
check "systemd-analyze verify trtd.service is clean${verify:+: $verify}" test -z "$verify"
exposure=$(c systemd-analyze security --no-pager trtd.service 2>&1 | sed -n 's/.*Overall exposure level for trtd.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security exposure $exposure <= 4.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 4.0) }'

# --- 2. uploads over ssh --------------------------------------------------------
phase "uploads over ssh"

cs 'useradd -m -s /bin/bash -G trtd alice' || fatal "useradd alice"
as_user 'mkdir -p ~/.ssh && ssh-keygen -q -t ed25519 -N "" -f ~/.ssh/id_ed25519 &&
	cp ~/.ssh/id_ed25519.pub ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys &&
	for i in 1 2 3 4 5 6; do cp /e2e/models/model-$i.onnx ~/; done' || fatal "alice's ssh key"
c systemctl start ssh
wait_for 20 c systemctl is-active ssh
check "sshd is active" c systemctl is-active ssh
SSHO='-o BatchMode=yes -o StrictHostKeyChecking=accept-new'
# upload DESC SCP-FLAGS SRC DST-NAME: alice copies a model into the inbox.
upload() {
	local out
	if out=$(as_user "scp $2 $SSHO ~/$3 localhost:$INBOX/$4" 2>&1); then
		pass "$1"
	else
		fail "$1: $out"
	fi
}

# scp: SFTP (the default of OpenSSH 9), the legacy protocol, a 0600 model.
upload "alice: scp (SFTP) m1.onnx into the inbox" "" model-1.onnx m1.onnx
upload "alice: scp -O (legacy protocol) m2.onnx into the inbox" -O model-2.onnx m2.onnx
as_user 'chmod 600 ~/model-3.onnx'
upload "alice: scp (SFTP) a 0600 m3.onnx into the inbox" "" model-3.onnx m3.onnx
m3mode=$(c stat -c '%a %U:%G' "$INBOX/m3.onnx" 2>/dev/null)
if [[ -n $m3mode ]]; then
	check "m3.onnx arrived as '$m3mode' (0600, alice, group trtd by setgid)" test "$m3mode" = "600 alice:trtd"
else
	log "m3.onnx was claimed before its mode could be read"
fi

# --- 3. without TensorRT: the documented "builder_unavailable" state ------------
phase "without TensorRT"

for m in m1 m2 m3; do
	if wait_for "$JOB_WAIT" c test -s "$OUTBOX/$m.report.json"; then
		pass "$m: report in the outbox"
		outcome=$(c jq -r .outcome "$OUTBOX/$m.report.json" 2>/dev/null)
		check "$m: outcome is builder_unavailable ($outcome)" test "$outcome" = builder_unavailable
	else
		fail "$m: no $OUTBOX/$m.report.json"
	fi
done
check "alice (group trtd) can read the reports" as_user "cat $OUTBOX/m1.report.json $OUTBOX/m3.report.json >/dev/null"
check "the waiting models are kept in the job store" out_is 3 bash -c "find /var/lib/trtd/state -path '*/model/*.onnx' -type f | wc -l"
# A claim is a rename (the uploader still owns the file), not a copy across
# the sandbox's mounts.
check "the claimed 0600 model was renamed into the job store, not copied" out_is alice bash -c "stat -c %U /var/lib/trtd/state/jobs/*/model/m3.onnx"
check "the unit is still active after the jobs" c systemctl is-active trtd

check "journal: TRTD_EVENT=builder_unavailable says why" jn_ge 1 '.TRTD_EVENT == "builder_unavailable" and (.MESSAGE | test("TensorRT not available"))'
for ev in job_queued job_waiting; do
	check "journal: TRTD_EVENT=$ev with TRTD_JOB and TRTD_MODEL" jn_ge 1 ".TRTD_EVENT == \"$ev\" and .TRTD_JOB != null and .TRTD_MODEL != null"
done

# --- 4. the worker's test double: a ladder through systemd ----------------------
phase "the worker's test double: a ladder"

if [[ -n $FAKE ]]; then
	cs "install -D -m 0755 $FAKE $FAKE_DST"
	# The local conffile edit that the upgrade must keep.
	cs "sed -i 's#^worker = .*#worker = \"$FAKE_DST\"  \\# e2e: the worker test double#' /etc/trtd/config.toml"
	check "config edited: [paths] worker is the test double" c grep -q "^worker = \"$FAKE_DST\"" /etc/trtd/config.toml
	# The test double records what it saw at start (uid, cwd, environment,
	# the work dir's entries) in a file only the e2e reads.
	RECORD=/var/lib/trtd/e2e/record.jsonl
	cs "install -d -o trtd -g trtd /var/lib/trtd/e2e"
	set_fake() {
		cs "mkdir -p /etc/systemd/system/trtd.service.d && printf '[Service]\nEnvironment=TRTD_FAKE_WORKER=%s TRTD_FAKE_WORKER_RECORD=$RECORD\n' '$1' >/etc/systemd/system/trtd.service.d/e2e-fake.conf && systemctl daemon-reload && systemctl restart trtd"
	}
	# rec NAME JQ: JQ over what the worker recorded for its first build of NAME.
	rec() { c jq -sc "[.[] | select(.request.op != \"probe\" and ((.request.model // \"\") | . == \"$1.onnx\" or endswith(\"/$1.onnx\")))] | if length == 0 then \"no record of $1\" else (.[0] | $2) end" "$RECORD"; }
	set_fake 'fast=oom,lean=ok'
	check "restarted with the test double" c systemctl is-active trtd
	upload "alice: scp m4.onnx" "" model-4.onnx m4.onnx
	if wait_for "$JOB_WAIT" c test -s "$OUTBOX/m4.engine"; then
		pass "m4: engine written after the ladder"
		wait_for 30 c test -s "$OUTBOX/m4.report.json"
		check "m4: report outcome built" out_is built jq -r .outcome $OUTBOX/m4.report.json
		check "m4: report shows fast out of memory, then lean" c jq -e '[.attempts[] | .stage] | index("fast") < index("lean")' $OUTBOX/m4.report.json
	else
		fail "m4: no engine"
	fi
	check "journal: m4 job_started" jn_eq 1 "$(model m4) and .TRTD_EVENT == \"job_started\" and .TRTD_JOB != null"
	check "journal: m4 stage_started for stages fast and lean (TRTD_STAGE)" is 'fast lean ' stages_started m4
	check "journal: m4 stage fast finished out of memory" jn_eq 1 "$(model m4) and .TRTD_EVENT == \"stage_finished\" and .TRTD_STAGE == \"fast\" and (.MESSAGE | test(\"out_of_memory\"))"
	check "journal: m4 job_done once, with TRTD_JOB" jn_eq 1 "$(model m4) and .TRTD_EVENT == \"job_done\" and .TRTD_JOB != null"
	check "journal: the builder's own lines of m4's stage fast, with TRTD_JOB and TRTD_STAGE" jn_ge 1 "$(model m4) and .TRTD_EVENT == \"builder_log\" and .TRTD_STAGE == \"fast\" and .TRTD_JOB != null"
	check "the unit survived the worker's out-of-memory stage" c systemctl is-active trtd
	check "the waiting jobs were retried once a builder appeared (m1.engine)" wait_for "$JOB_WAIT" c test -s "$OUTBOX/m1.engine"
	check "m3, uploaded at mode 0600, was built by the worker (user trtd)" wait_for "$JOB_WAIT" c test -s "$OUTBOX/m3.engine"

	# --- 5. SIGKILL the daemon mid-job: restarted, the job completes once ------
	phase "SIGKILL mid-job"
	set_fake 'fast=slow=20s'
	n0=$(c systemctl show -p NRestarts --value trtd)
	upload "alice: scp m5.onnx" "" model-5.onnx m5.onnx
	main=$(c systemctl show -p MainPID --value trtd)
	worker=""
	if wait_for 60 c pgrep -u trtd -P "$main"; then
		worker=$(c pgrep -u trtd -P "$main" | head -1)
		pass "m5: a worker runs as user trtd (pid $worker)"
		check "worker: no capabilities (CapEff, CapPrm)" out_is $'0000000000000000\n0000000000000000' bash -c "sed -n 's/^Cap\(Eff\|Prm\):[[:space:]]*//p' /proc/$worker/status"
		check "worker: oom_score_adj 1000" out_is 1000 cat "/proc/$worker/oom_score_adj"
		netns_differs() { [[ -n $(c readlink "/proc/$1/ns/net") && $(c readlink "/proc/$1/ns/net") != $(c readlink "/proc/$2/ns/net") ]]; }
		check "worker: its own network namespace" netns_differs "$worker" "$main"
		check "worker: no NOTIFY_SOCKET or WATCHDOG_* in its environment" no bash -c "tr '\\0' '\\n' </proc/$worker/environ | grep -E '^(NOTIFY_SOCKET|WATCHDOG_)'"
		wcwd=$(c readlink "/proc/$worker/cwd")
		check "worker: cwd $wcwd is its job's work dir" is true rec m5 "(.cwd == .request.work_dir and (.cwd | startswith(\"/var/lib/trtd/state/\")))"
		check "worker: its work dir held only the model when it started" is true rec m5 '.workdir_entries == ["m5.onnx"]'
		check "worker: uid and gid are trtd's" is true rec m5 "(.uid == $(c id -u trtd) and .gid == $(c id -g trtd))"
		# systemctl status: the elapsed time in Status: moves while the
		# 20 s stage runs (STATUS= is refreshed every 5 s).
		status_elapsed() { c systemctl show -p StatusText --value trtd | sed -n 's/^building m5\.onnx: .*, \([0-9][0-9]*\)s;.*/\1/p'; }
		e0=$(status_elapsed)
		elapsed_moved() { local e; e=$(status_elapsed); [[ -n $e0 && -n $e && $e -gt $e0 ]]; }
		check "systemctl status: the elapsed time moves during a build (was ${e0:-none}s)" wait_for 12 elapsed_moved
		mkdir -p "$LOGDIR" && c cat "$RECORD" >"$LOGDIR/fake-worker-record.jsonl" 2>&1
		c kill -KILL "$main"
		log "SIGKILL to the daemon (pid $main) mid-job"
		check "systemd restarted the daemon" wait_for 60 restarted_since "$n0"
		check "the old worker is gone with the old daemon" no kill -0 "$worker"
		if wait_for "$JOB_WAIT" c test -s "$OUTBOX/m5.engine"; then
			pass "m5: engine written after the restart"
			check "m5: job_done exactly once in the journal" jn_eq 1 "$(model m5) and .TRTD_EVENT == \"job_done\""
			check "m5: one engine in the outbox" out_is 1 bash -c "find $OUTBOX -name 'm5*.engine' | wc -l"
		else
			fail "m5: no engine after the restart"
		fi
	else
		fail "m5: no worker appeared"
	fi

	# --- 6. SIGSTOP: the watchdog restarts the daemon ---------------------------
	phase "SIGSTOP and the watchdog"
	cs "printf '[Service]\nWatchdogSec=6s\nTimeoutAbortSec=10s\n' >/etc/systemd/system/trtd.service.d/e2e-watchdog.conf && systemctl daemon-reload && systemctl restart trtd"
	wait_for 30 c systemctl is-active trtd
	n0=$(c systemctl show -p NRestarts --value trtd)
	main=$(c systemctl show -p MainPID --value trtd)
	since=$(c date '+%Y-%m-%d %H:%M:%S')
	c kill -STOP "$main"
	log "SIGSTOP to the daemon (pid $main), watchdog 6s"
	check "the watchdog restarted the daemon" wait_for 60 restarted_since "$n0"
	check "journal: systemd logged the watchdog timeout" out_match 'Watchdog timeout' journalctl -u trtd --since "$since" --no-pager
	cs "rm -f /etc/systemd/system/trtd.service.d/e2e-watchdog.conf && systemctl daemon-reload"
fi

# --- 7. upgrade: the local conffile edit survives, the daemon restarts ------------
phase "upgrade"

main=$(c systemctl show -p MainPID --value trtd)
cs "echo '# e2e: a local edit' >>/etc/trtd/config.toml"
if cs "DEBIAN_FRONTEND=noninteractive apt-get install -y /e2e/trtd_${UP_VERSION}_$arch.deb" >"$RUN/upgrade.log" 2>&1; then
	pass "apt install of $UP_VERSION (upgrade)"
else
	cat "$RUN/upgrade.log"
	fail "apt install of $UP_VERSION (upgrade)"
fi
check "dpkg shows $UP_VERSION" out_is "$UP_VERSION" dpkg-query -W -f='${Version}' trtd
check "the local conffile edit survived the upgrade" c grep -q '^# e2e: a local edit' /etc/trtd/config.toml
new_main() { c systemctl is-active trtd >/dev/null && [[ $(c systemctl show -p MainPID --value trtd) != "$1" ]]; }
check "the upgrade restarted the daemon" wait_for 30 new_main "$main"

# --- 8. remove, then purge ----------------------------------------------------------
phase "remove and purge"

# The test's own files are the admin's, not the package's.
cs "rm -rf /etc/systemd/system/trtd.service.d /var/lib/trtd/e2e && systemctl daemon-reload"
cs "DEBIAN_FRONTEND=noninteractive apt-get remove -y trtd" >"$RUN/remove.log" 2>&1
check "remove: the unit is stopped" no systemctl is-active trtd
check "remove: /usr/bin/trtd is gone" no test -e /usr/bin/trtd
check "remove: the conffile stays until purge" c test -f /etc/trtd/config.toml
cs "DEBIAN_FRONTEND=noninteractive apt-get purge -y trtd" >"$RUN/purge.log" 2>&1
check "purge: dpkg forgot the package" no dpkg-query -W trtd
check "purge: no unit left" out_is "" bash -c "systemctl list-unit-files --no-legend 'trtd*'; find /etc/systemd /lib/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'trtd*' 2>/dev/null"
check "purge: no user trtd" no getent passwd trtd
check "purge: no group trtd" no getent group trtd
check "purge: no /etc/trtd, /run/trtd, state or swap" out_is "" bash -c "ls -d /etc/trtd /run/trtd /var/lib/trtd/state /var/lib/trtd/swap 2>/dev/null"
check "purge: no trtd swap active" no grep -q /var/lib/trtd /proc/swaps
check "purge: says where the kept models are" grep -q '/var/lib/trtd/kept-models' "$RUN/purge.log"
check "purge: the kept models are there" out_match '^[1-9]' bash -c "find /var/lib/trtd/kept-models -name '*.onnx' -type f | wc -l"
sed -n 's/^trtd: /purge said: /p' "$RUN/purge.log"

finish
