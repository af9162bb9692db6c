package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseSize: sizes never overflow, never go negative, and an accepted
// size prints back to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "512", "64K", "256MiB", "1.5G", "4GiB", "1e19", "9223372036854775807",
		"8388607T", "NaN", "-1M", ".5K", "1..2", " 3 G "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, v)
		}
		back, err := ParseSize(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseSize(%q) = %d prints as %q, which parses to %d, %v", s, v, v.String(), back, err)
		}
	})
}

// FuzzDuration: any text either parses or is refused with a message, and
// an accepted duration prints back to itself.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"5s", "250ms", "2h", "-1s", "1000000h", "9223372036854775807ns", "1e3s", "soon", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			if !strings.Contains(err.Error(), "bad duration") {
				t.Fatalf("error %v", err)
			}
			return
		}
		var back Duration
		if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
			t.Fatalf("%q -> %v -> %v, %v", s, time.Duration(d), time.Duration(back), err)
		}
	})
}

// FuzzParseSidecar: an uploaded settings file never panics the parser; an
// accepted one names only ladder stages, each once, with sane shapes and
// tolerances; a refused one wraps ErrInvalid.
func FuzzParseSidecar(f *testing.F) {
	for _, s := range []string{
		"precision = \"fp16\"\nstages = [\"lean\", \"minimal\"]\n",
		"[[shape]]\ninput = \"x\"\nmin = [1, 3, 224, 224]\nopt = [4, 3, 224, 224]\nmax = [8, 3, 224, 224]\n",
		"[accuracy]\natol = 1e-3\nrtol = nan\n",
		"workspace = \"1K\"\nstages = [\"lean\", \"lean\"]\n",
		"colour = 1\n[[shape]]\nmin = [0]\n",
		"workspace = 1e19\n",
	} {
		f.Add(s)
	}
	ladder := DefaultStages()
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseSidecar("m.toml", []byte(src), ladder)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, st := range s.Stages {
			if _, ok := (&Config{Stages: ladder}).Stage(st); !ok || seen[st] {
				t.Fatalf("accepted stages %v", s.Stages)
			}
			seen[st] = true
		}
		if s.Workspace < 0 {
			t.Fatalf("accepted workspace %d", s.Workspace)
		}
		for _, p := range []*float64{s.Accuracy.ATol, s.Accuracy.RTol} {
			if p != nil && !validTolerance(*p) {
				t.Fatalf("accepted tolerance %v", *p)
			}
		}
		for _, sh := range s.ProtocolShapes() {
			if len(sh.Min) != len(sh.Max) || len(sh.Opt) != len(sh.Max) {
				t.Fatalf("accepted shape %+v", sh)
			}
		}
	})
}

// FuzzParseConfig: the daemon's own file, all problems at once, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("log_level = \"debug\"\n[inbox]\nsettle = \"1s\"\nmax_bytes = \"1G\"\n")
	f.Add("[[stage]]\nname = \"a\"\nworkspace = \"1K\"\n[[stage]]\nname = \"a\"\n")
	f.Add("[validate]\natol = nan\nruns = -1\n")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("c.toml", []byte(src))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			// The same input gives the same message.
			if _, err2 := Parse("c.toml", []byte(src)); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("unstable errors:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
	})
}
