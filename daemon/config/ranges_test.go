package config

import (
	"errors"
	"strings"
	"testing"
)

// Every out-of-range value is reported at once, each with its key and line,
// in line order, and the same text on every run.
func TestValueRangesAllAtOnceWithLinesInStableOrder(t *testing.T) {
	src := `[inbox]
max_bytes = "1e19"
settle = "-5s"
[worker]
timeout = "1000000h"
validate_runs = -3
stderr_limit = 99999999999999
[validate]
atol = nan
rtol = inf
runs = -1
[[stage]]
name = "a"
workspace = "1K"
[[stage]]
name = "b"
kind = "segmented"
parts = 1000
timeout = "-1s"
workspace = "20000000T"
`
	var first string
	for run := 0; run < 20; run++ {
		_, err := Parse("r.toml", []byte(src))
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("want ErrInvalid, got %v", err)
		}
		if run == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("order differs between runs:\n%s\n---\n%s", first, err)
		}
	}
	want := []string{
		`r.toml:2: inbox.max_bytes: bad size "1e19"`,
		`r.toml:3: inbox.settle: -5s is not in 0s..168h0m0s`,
		`r.toml:5: worker.timeout: 1000000h0m0s is not in 0s..168h0m0s`,
		`r.toml:6: worker.validate_runs: -3 is not in 0..100000`,
		`r.toml:7: worker.stderr_limit: 99999999999999 is not in 0..1024G`,
		`r.toml:9: validate.atol: NaN is not a finite number >= 0`,
		`r.toml:10: validate.rtol: +Inf is not a finite number >= 0`,
		`r.toml:11: validate.runs: -1 is not in 0..100000`,
		`r.toml:14: stage[0] (a).workspace: 1K is not 0 or in 1M..1024G`,
		`r.toml:18: stage[1] (b).parts: 1000 is not in 0..64`,
		`r.toml:19: stage[1] (b).timeout: -1s is not in 0s..168h0m0s`,
		`r.toml:20: stage[1].workspace: bad size "20000000T": too large`,
	}
	last := -1
	for _, w := range want {
		i := strings.Index(first, w)
		if i < 0 {
			t.Errorf("error lacks %q", w)
			continue
		}
		if i < last {
			t.Errorf("%q out of line order", w)
		}
		last = i
	}
	if t.Failed() {
		t.Log(first)
	}
}

func TestParseSizeNeverOverflows(t *testing.T) {
	for _, in := range []string{"1e19", "9223372036854775808", "8589934592G", "16777216T", "NaN", "Inf",
		"0x10", "1e3", "1..2", ".", "-0", "+1"} {
		if v, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, v)
		}
	}
	for in, want := range map[string]Size{"9223372036854775807": 1<<63 - 1, "8388607T": 8388607 << 40,
		".5K": 512, "1.": 1, "0.25M": 256 << 10} {
		if v, err := ParseSize(in); err != nil || v != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
}

// A type error no longer hides the problems after it.
func TestTypeErrorsDoNotStopTheRest(t *testing.T) {
	_, err := Parse("t.toml", []byte("log_level = 3\n[inbox]\nsettle = 5\n[swap]\nenabled = \"yes\"\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"t.toml:1: log_level:", "t.toml:3: inbox.settle:", "t.toml:5: swap.enabled:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// F-16: a stage listed twice would run twice and be reported as a second
// out-of-memory failure.
func TestSidecarDuplicateStagesAndNaNTolerance(t *testing.T) {
	_, err := ParseSidecar("m.toml", []byte("stages = [\"lean\", \"lean\"]\nworkspace = \"1K\"\n[accuracy]\natol = nan\n"), DefaultStages())
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`m.toml:1: stages: stage "lean" listed twice`, `m.toml:2: workspace: 1K`,
		`m.toml:4: accuracy.atol: NaN is not a finite number`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// [retention] counts are ranged like every other key, with key and line.
func TestRetentionRanges(t *testing.T) {
	_, err := Parse("k.toml", []byte("[retention]\nkeep_jobs = -1\nkeep_days = 99999999\n"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	for _, w := range []string{`k.toml:2: retention.keep_jobs: -1 is not in 0..1000000`,
		`k.toml:3: retention.keep_days: 99999999 is not in 0..36500`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	c, err := Parse("ok.toml", []byte("[retention]\nkeep_jobs = 0\nkeep_days = 0\n"))
	if err != nil || c.Retention != (Retention{}) {
		t.Fatalf("zero retention (keep everything) refused: %v %+v", err, c)
	}
}
