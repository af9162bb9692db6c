#!/bin/bash
# Helpers run through check(); shellcheck cannot see those calls.
# shellcheck disable=SC2317
# End-to-end test of engine sharing: two booted Debian bookworm containers
# (systemd-nspawn, the root cached by test/e2e/run.sh) with the .deb
# installed, sharing one OCI registry: Debian's docker-registry, run in the
# first container with TLS from a test CA and htpasswd auth, on 127.0.0.1 of
# a network namespace both containers share (the second joins the first's
# with --network-namespace-path). Device A builds a model with the worker's
# test double and pushes it; device B, same fingerprint, publishes A's
# engine without building; its report names the registry's digest.
#
# Needs root, the packages and root of test/e2e/run.sh (make deb first), the
# host's docker-registry (installed with apt-get unless TRTD_E2E_APT=0;
# copied into the first container: it links only libc), openssl and go.
#
#   TRTD_E2E_CACHE   the cached root (/var/cache/trtd-e2e), built by run.sh
#   TRTD_E2E_KEEP=1  keep the containers' files after the run
#
# Prints one line per check and ends with "e2e-fleet: N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${TRTD_E2E_CACHE:-/var/cache/trtd-e2e}
KEEP=${TRTD_E2E_KEEP:-0}
LOWER=$CACHE/bookworm-r1
OUTBOX=/var/lib/trtd/outbox
INBOX=/var/lib/trtd/inbox
FAKE_DST=/usr/local/lib/trtd-e2e/trtd-fake-worker
RECORD=/var/lib/trtd/e2e/record.jsonl
PORT=5443

t0=$(date +%s)
npass=0
nfail=0
WORK=""
declare -A NSPAWN CPID

log() { echo "e2e-fleet: $*"; }
pass() { npass=$((npass + 1)); echo "e2e-fleet: PASS: $*"; }
fail() { nfail=$((nfail + 1)); echo "e2e-fleet: FAIL: $*"; }
check() {
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$d"; else fail "$d"; fi
}
# in DEV CMD...: run in container DEV (a or b) as root, clean environment.
on() {
	local dev=$1
	shift
	nsenter -t "${CPID[$dev]}" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
ins() { on "$1" /bin/bash -c "$2"; }
# shellcheck source=test/e2e/wait.sh
source "$here/wait.sh"
teardown() {
	local dev
	for dev in b a; do
		[[ -n ${CPID[$dev]:-} ]] && kill -0 "${CPID[$dev]}" 2>/dev/null && on "$dev" systemctl poweroff >/dev/null 2>&1
		if [[ -n ${NSPAWN[$dev]:-} ]]; then
			local end=$((SECONDS + 20))
			while kill -0 "${NSPAWN[$dev]}" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
			kill -KILL "${NSPAWN[$dev]}" 2>/dev/null || true
			wait "${NSPAWN[$dev]}" 2>/dev/null || true
		fi
		[[ -n $WORK ]] && mountpoint -q "$WORK/$dev/root" && umount "$WORK/$dev/root"
	done
	if [[ -n $WORK ]]; then
		if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	fi
}
finish() {
	if ((nfail > 0)) && [[ -n ${CPID[a]:-} ]]; then
		for dev in a b; do
			[[ -n ${CPID[$dev]:-} ]] && ins "$dev" 'journalctl -u trtd -u registry --no-pager -o short-precise | tail -40' 2>/dev/null | sed "s/^/  $dev: /"
		done
	fi
	teardown
	echo "e2e-fleet: $npass passed, $nfail failed ($(($(date +%s) - t0))s)"
	[[ $nfail -eq 0 ]]
	exit
}
fatal() {
	fail "$*"
	finish
}
trap 'fail "interrupted"; finish' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "e2e-fleet: needs root (systemd-nspawn, overlayfs)"; exit 1; }
if ! command -v docker-registry >/dev/null && [[ ${TRTD_E2E_APT:-1} != 0 ]]; then
	log "installing docker-registry"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null 2>&1; }
fi
for t in systemd-nspawn nsenter openssl docker-registry dpkg-deb go; do
	command -v "$t" >/dev/null || fatal "missing $t (apt-get install systemd-container util-linux openssl docker-registry)"
done
[[ -f $LOWER/.trtd-e2e-complete ]] || fatal "no cached root in $LOWER: run test/e2e/run.sh (make e2e) once"
arch=$(dpkg --print-architecture)
DEB=$(grep "_$arch.deb\$" "$repo/build/deb/debs.txt" 2>/dev/null | head -1)
[[ -f $DEB ]] || fatal "no $arch package: run make deb first"

WORK=$(mktemp -d /var/tmp/trtd-e2e-fleet.XXXXXX)
shared=$WORK/shared
mkdir -p "$shared"
(cd "$repo" && CGO_ENABLED=0 go build -o "$shared/trtd-fake-worker" ./cmd/trtd-fake-worker &&
	CGO_ENABLED=0 go run ./test/e2e/fleetmodel "$shared/net.onnx") >"$WORK/build.log" 2>&1 ||
	fatal "building the test double or the model: $(tail -3 "$WORK/build.log")"
cp "$DEB" "$shared/"
cp "$(command -v docker-registry)" "$shared/docker-registry"

# A CA, the registry's certificate for 127.0.0.1, an htpasswd account and
# the docker-style credentials file each device gets.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=trtd-e2e-ca \
	-keyout "$WORK/ca.key" -out "$shared/ca.crt" >/dev/null 2>&1 || fatal "openssl: the CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
	-keyout "$shared/registry.key" -out "$WORK/registry.csr" >/dev/null 2>&1 || fatal "openssl: the key"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/registry.csr" -CA "$shared/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 1 \
	-extfile "$WORK/ext" -out "$shared/registry.crt" >/dev/null 2>&1 || fatal "openssl: the certificate"
PASS=$(openssl rand -hex 12)
(cd "$repo" && go run ./test/e2e/fleetmodel -htpasswd fleet "$PASS") >"$shared/htpasswd" 2>"$WORK/htpasswd.log" ||
	fatal "htpasswd: $(tail -2 "$WORK/htpasswd.log")"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$PORT" "$(printf 'fleet:%s' "$PASS" | base64 -w0)" >"$shared/auth.json"
cat >"$shared/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry-e2e
http:
  addr: 127.0.0.1:$PORT
  tls:
    certificate: /e2e/registry.crt
    key: /e2e/registry.key
auth:
  htpasswd:
    realm: trtd-e2e
    path: /e2e/htpasswd
EOF
chmod -R a+rX "$shared"

# boot DEV [NSPAWN-ARGS...]: an overlay of the cached root, booted.
boot() {
	local dev=$1
	shift
	local d=$WORK/$dev
	mkdir -p "$d/upper" "$d/work" "$d/root" "$d/varlib"
	mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$d/upper,workdir=$d/work" "$d/root" || fatal "overlay for $dev"
	mkdir -p "$d/root/e2e"
	cp -a "$shared/." "$d/root/e2e/"
	echo "trtd-e2e-$dev" >"$d/root/etc/hostname"
	printf '127.0.0.1\tlocalhost trtd-e2e-%s\n' "$dev" >"$d/root/etc/hosts"
	systemd-nspawn -D "$d/root" --register=no --keep-unit -b "$@" --bind="$d/varlib:/var/lib/trtd" \
		--machine="trtd-e2e-fleet-$dev-$$" </dev/null >"$d/console.log" 2>&1 &
	NSPAWN[$dev]=$!
	local p
	for _ in $(seq 1 100); do
		for p in $(pgrep -P "${NSPAWN[$dev]}"); do
			[[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] && CPID[$dev]=$p
		done
		[[ -n ${CPID[$dev]:-} ]] && break
		kill -0 "${NSPAWN[$dev]}" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n ${CPID[$dev]:-} ]] || fatal "container $dev did not start: $(tail -5 "$d/console.log")"
	wait_for 30 on "$dev" test -S /run/systemd/private
	local state
	state=$(on "$dev" timeout 60 systemctl is-system-running --wait 2>&1)
	[[ $state == running || $state == degraded ]] || fatal "container $dev boot: $state"
	pass "container $dev booted ($state)"
}

# install DEV: the package, the test double and the [fleet] section.
install() {
	local dev=$1
	ins "$dev" "DEBIAN_FRONTEND=noninteractive apt-get install -y /e2e/$(basename "$DEB")" >"$WORK/$dev-install.log" 2>&1 ||
		fatal "$dev: apt install: $(tail -3 "$WORK/$dev-install.log")"
	ins "$dev" "install -D -m 0755 /e2e/trtd-fake-worker $FAKE_DST &&
		install -m 0600 /e2e/auth.json /etc/trtd/registry-auth.json &&
		install -d -o trtd -g trtd /var/lib/trtd/e2e &&
		sed -i 's#^worker = .*#worker = \"$FAKE_DST\"#' /etc/trtd/config.toml &&
		sed -i 's#^registry = \"\"#registry = \"127.0.0.1:$PORT/trtd/engines\"#; s#^credentials = \"\"#credentials = \"/etc/trtd/registry-auth.json\"#; s#^ca = \"\"#ca = \"/e2e/ca.crt\"#' /etc/trtd/config.toml &&
		mkdir -p /etc/systemd/system/trtd.service.d &&
		printf '[Service]\nEnvironment=TRTD_FAKE_WORKER=fast=oom,lean=ok TRTD_FAKE_WORKER_RECORD=$RECORD\n' >/etc/systemd/system/trtd.service.d/e2e-fake.conf &&
		printf '[Service]\nPrivateNetwork=no\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n' >/etc/systemd/system/trtd.service.d/fleet.conf &&
		systemctl daemon-reload && systemctl restart trtd" || fatal "$dev: configuring trtd"
	check "$dev: [fleet] registry set in /etc/trtd/config.toml" on "$dev" grep -q "^registry = \"127.0.0.1:$PORT/trtd/engines\"" /etc/trtd/config.toml
	check "$dev: trtd is active with the registry configured" wait_for 30 on "$dev" systemctl is-active trtd
}

# drop DEV: the model arrives in the inbox by rename, as rsync does.
drop() {
	ins "$1" "cp /e2e/net.onnx $INBOX/.net.onnx.part && mv $INBOX/.net.onnx.part $INBOX/net.onnx"
}

log "--- boot A, the registry in A's network namespace, and B in the same namespace (+$(($(date +%s) - t0))s)"
boot a --private-network
ins a "systemd-run --unit=registry /e2e/docker-registry serve /e2e/registry.yml" >/dev/null 2>&1 || fatal "starting the registry in A"
wait_for 30 ins a "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fatal "the registry does not listen on 127.0.0.1:$PORT"
pass "docker-registry listens on 127.0.0.1:$PORT (TLS, htpasswd) in A's network namespace"
boot b --network-namespace-path="/proc/${CPID[a]}/ns/net"
check "B reaches the registry on its 127.0.0.1" ins b "exec 3<>/dev/tcp/127.0.0.1/$PORT"
install a
install b

log "--- A builds and pushes (+$(($(date +%s) - t0))s)"
drop a
if wait_for 120 on a test -s "$OUTBOX/net.report.json"; then
	check "A: outcome built" ins a "jq -e '.outcome == \"built\"' $OUTBOX/net.report.json"
	check "A: report says the engine is queued for the registry" ins a "jq -e '.fleet.push | startswith(\"queued for 127.0.0.1:$PORT/trtd/engines\")' $OUTBOX/net.report.json"
else
	fatal "A: no report"
fi
check "A: the worker built it (fast out of memory, then lean)" ins a "grep -q '\"stage\":\"lean\"' $RECORD && grep -q '\"op\":\"build\"' $RECORD"
check "A: journal says the engine was pushed" wait_for 60 ins a "journalctl -u trtd --no-pager | grep -q 'engine pushed to the fleet registry'"
check "A: trtd fleet ls shows one engine for this device" ins a "trtd fleet ls | grep -q '^1 engine(s) for this device'"
check "A: trtd status shows the registry and an empty queue" wait_for 30 ins a "trtd status | grep -q 'fleet:   127.0.0.1:$PORT/trtd/engines (pull true, push true), 0 push(es) queued'"

log "--- B pulls instead of building (+$(($(date +%s) - t0))s)"
drop b
if wait_for 120 on b test -s "$OUTBOX/net.report.json"; then
	check "B: outcome reused, pulled from the registry" ins b "jq -e '.outcome == \"reused\" and (.fleet.pulled.digest | startswith(\"sha256:\"))' $OUTBOX/net.report.json"
	host_a=$(on a hostname)
	check "B: built by A ($host_a)" ins b "jq -e '.fleet.pulled.built_by == \"$host_a\"' $OUTBOX/net.report.json"
	check "B: the engine is A's, byte for byte" test "$(ins a "sha256sum < $OUTBOX/net.engine")" = "$(ins b "sha256sum < $OUTBOX/net.engine")"
	check "B: the worker ran (its probes are recorded)" ins b "grep -q '\"op\":\"probe\"' $RECORD"
	check "B: the worker built nothing" ins b "! grep -q '\"op\":\"build\"' $RECORD"
	check "B: the worker never saw the credentials" ins b "! grep -q registry-auth $RECORD"
else
	fatal "B: no report"
fi
check "B: the credentials file is root's, mode 600" ins b "test \"\$(stat -c '%U %a' /etc/trtd/registry-auth.json)\" = 'root 600'"
finish
