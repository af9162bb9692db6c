# wait_for, shared by lib.sh (run.sh, arm64.sh) and fleet.sh. Sourced.
# shellcheck shell=bash

# wait_for SECONDS CMD...: poll until CMD succeeds; a deadline, not a timing.
wait_for() {
	local t=$1
	shift
	local end=$((SECONDS + t))
	while ((SECONDS < end)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	"$@" >/dev/null 2>&1
}
