# Helpers shared by run.sh (amd64) and arm64.sh: checks, the container
# shell (c, cs, as_user), polling, logs and teardown. Sourced; the caller
# sets RUN, LOGDIR and KEEP.
# shellcheck shell=bash disable=SC2317
t0=$(date +%s)
npass=0
nfail=0
RUN=""
NSPAWN=""
CPID=""

log() { echo "e2e: $*"; }
# phase NAME: a heading with the time since the start.
phase() { echo "e2e: --- $* (+$(($(date +%s) - t0))s)"; }
pass() { npass=$((npass + 1)); echo "e2e: PASS: $*"; }
fail() { nfail=$((nfail + 1)); echo "e2e: FAIL: $*"; }
# check DESC CMD...: one assertion.
check() {
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$d"; else fail "$d"; fi
}
summary() {
	echo "e2e: $npass passed, $nfail failed ($(($(date +%s) - t0))s)"
}
fatal() {
	fail "$*"
	finish
}

# c CMD...: run in the container, as root, with a clean environment.
c() {
	nsenter -t "$CPID" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
cs() { c /bin/bash -c "$1"; }
# as_user SCRIPT: run a shell script as the uploader, through a login shell.
as_user() { c su - alice -c "$1"; }

# out_is WANT CMD...: the container command prints exactly WANT.
out_is() {
	local want=$1
	shift
	[[ "$(c "$@" 2>/dev/null)" == "$want" ]]
}
# out_match REGEX CMD...: the container command's output matches REGEX.
out_match() {
	local re=$1
	shift
	[[ "$(c "$@" 2>/dev/null)" =~ $re ]]
}
# is WANT CMD...: the local command (e.g. a helper function) prints exactly WANT.
is() {
	local want=$1
	shift
	[[ "$("$@" 2>/dev/null)" == "$want" ]]
}
# no CMD...: the container command fails.
no() { ! c "$@" >/dev/null 2>&1; }
# jn FILTER: how many entries of `journalctl -u trtd -o json` match jq FILTER.
jn() { c bash -c "journalctl -u trtd -o json --no-pager | jq -c 'select($1)' | wc -l" 2>/dev/null; }
jn_ge() { local n; n=$(jn "$2"); [[ ${n:-0} -ge $1 ]]; }
jn_eq() { local n; n=$(jn "$2"); [[ ${n:-0} -eq $1 ]]; }
# model NAME: jq test for the entries of one model.
model() { printf '(.TRTD_MODEL == "%s" or .TRTD_MODEL == "%s.onnx")' "$1" "$1"; }
# stages_started NAME: the stages started for a model, sorted, space-joined.
stages_started() {
	c bash -c "journalctl -u trtd -o json --no-pager | jq -r 'select($(model "$1") and .TRTD_EVENT == \"stage_started\") | .TRTD_STAGE' | sort -u | tr '\n' ' '"
}
restarted_since() { # N: NRestarts grew past N and the unit is active again
	local n
	n=$(c systemctl show -p NRestarts --value trtd)
	[[ ${n:-0} -gt $1 ]] && c systemctl is-active trtd >/dev/null
}

# wait_for: test/e2e/wait.sh.
# shellcheck source=test/e2e/wait.sh
source "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

collect_logs() {
	[[ -n $CPID ]] && kill -0 "$CPID" 2>/dev/null || return 0
	mkdir -p "$LOGDIR"
	cs 'journalctl -u trtd --no-pager -o short-precise' >"$LOGDIR/trtd.journal.txt" 2>&1
	cs 'journalctl -u trtd --no-pager -o json' >"$LOGDIR/trtd.journal.json" 2>&1
	cs 'journalctl -b --no-pager' >"$LOGDIR/boot.journal.txt" 2>&1
	[[ -n $RUN && -f $RUN/console.log ]] && cp "$RUN/console.log" "$LOGDIR/console.log"
}

teardown() {
	if [[ -n $CPID ]] && kill -0 "$CPID" 2>/dev/null; then
		c systemctl poweroff >/dev/null 2>&1 || true
	fi
	if [[ -n $NSPAWN ]]; then
		local end=$((SECONDS + 20))
		while kill -0 "$NSPAWN" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
		kill -KILL "$NSPAWN" 2>/dev/null || true
		wait "$NSPAWN" 2>/dev/null || true
	fi
	if [[ -n $RUN ]]; then
		awk -v r="$RUN/" 'NR > 1 && index($1, r) == 1 { print $1 }' /proc/swaps | while read -r f; do
			log "switching off $f, left on by the container"
			swapoff "$f" || true
		done
		mountpoint -q "$RUN/root" && umount "$RUN/root"
		if [[ $KEEP == 1 ]]; then log "kept $RUN"; else rm -rf "$RUN"; fi
	fi
	RUN=""
	NSPAWN=""
	CPID=""
}

finish() {
	collect_logs
	teardown
	[[ $nfail -gt 0 ]] && log "logs: $LOGDIR"
	summary
	[[ $nfail -eq 0 ]]
	exit
}
trap 'fail "interrupted"; finish' INT TERM

# boot NSPAWN-ARGS...: boot $RUN/root with systemd-nspawn (private network,
# machine trtd-e2e-PID) and wait until its systemd is running; sets NSPAWN
# and CPID. TIMEOUT_BOOT (60 s) bounds the wait (an emulated arm64 boot is slower).
boot() {
	local boot_t state
	boot_t=$(date +%s%N)
	systemd-nspawn -D "$RUN/root" --register=no --keep-unit -b --private-network \
		"$@" --machine="trtd-e2e-$$" </dev/null >"$RUN/console.log" 2>&1 &
	NSPAWN=$!
	for _ in $(seq 1 300); do
		for p in $(pgrep -P "$NSPAWN"); do
			[[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] && CPID=$p
		done
		[[ -n $CPID ]] && break
		kill -0 "$NSPAWN" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $CPID ]] || fatal "the container did not start: $(tail -5 "$RUN/console.log")"
	wait_for "${TIMEOUT_BOOT:-60}" c test -S /run/systemd/private
	state=$(c timeout "${TIMEOUT_BOOT:-60}" systemctl is-system-running --wait 2>&1)
	log "container up in $((($(date +%s%N) - boot_t) / 1000000)) ms, state $state"
	[[ $state == running || $state == degraded ]] || fatal "container boot: $state"
}
