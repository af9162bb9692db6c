#!/usr/bin/env bash
# `make fuzz`: run every fuzz target of the module for FUZZTIME each
# (default 5m; CI uses 30s). Targets are found, not listed: a new
# `func FuzzX(f *testing.F)` in any _test.go file is fuzzed from then on.
# Each target starts from its committed corpus (<package>/testdata/fuzz/FuzzX)
# and a crash leaves the failing input there, to commit with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5m}
n=0
fail=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	n=$((n + 1))
	echo "== $pkg $name ($FUZZTIME)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 10s "$pkg"; then
		fail=$((fail + 1))
		echo "FAIL: $pkg $name"
	fi
done < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' | sed 's/^\(.*\):func \(Fuzz[A-Za-z0-9_]*\)(.*/\1:\2/' | sort)
echo "fuzz: $n targets, $fail failed, $FUZZTIME each"
[ "$fail" = 0 ]
