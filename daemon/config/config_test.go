package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoadsAndEqualsDefaults(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	c.File = ""
	if !reflect.DeepEqual(c, d) {
		t.Errorf("config.example.toml differs from the built-in defaults:\nfile:    %+v\ndefault: %+v", c, d)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	c, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Error("empty file is not the defaults")
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	src := `log_level = "loud"
bogus = 1
[paths]
inbox = "relative/inbox"
outbox = "/srv/x"
state = "/srv/x"
[inbox]
settle = "1ms"
setle = "5s"
[[stage]]
name = "a"
precision = "fp8"
tactic_sources = ["cudnn", "magic"]
optimization_level = 9
[[stage]]
name = "a"
kind = "segmented"
`
	_, err := Parse("bad.toml", []byte(src))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`bad.toml:2: unknown key "bogus"`,
		`bad.toml:9: unknown key "inbox.setle"`,
		`log_level: "loud"`,
		`paths.inbox: "relative/inbox" must be an absolute path`,
		`paths.outbox and paths.state: must be different directories`,
		`inbox.settle: 1ms is too short`,
		`stage[0] (a).precision: "fp8"`,
		`unknown tactic source "magic"`,
		`optimization_level: 9 is not in 0..5`,
		`stage[1] (a).name: duplicate stage name "a"`,
		`stage[1] (a).parts: a segmented stage needs parts >= 2`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("x.toml", []byte("log_level = \"info\"\nlog_format = = 1\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "x.toml:2:") {
		t.Fatalf("want x.toml:2: prefix, got %v", err)
	}
}

func TestStagesReplaceLadder(t *testing.T) {
	c, err := Parse("s.toml", []byte("[[stage]]\nname = \"only\"\nworkspace = \"64M\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Stages) != 1 || c.Stages[0].Name != "only" || c.Stages[0].Workspace != 64<<20 {
		t.Fatalf("stages %+v", c.Stages)
	}
	if got := c.Stages[0].Settings().WorkspaceMiB; got != 64 {
		t.Fatalf("workspace MiB %d", got)
	}
}

func TestSizesAndDurations(t *testing.T) {
	cases := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"0", 0, true}, {"512", 512, true}, {"64K", 64 << 10, true}, {"256M", 256 << 20, true},
		{"256MiB", 256 << 20, true}, {"256MB", 256 << 20, true}, {"1.5G", 3 << 29, true},
		{"4GiB", 4 << 30, true}, {"-1M", 0, false}, {"12X", 0, false}, {"", 0, false}, {"M", 0, false},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	c, err := Parse("d.toml", []byte("[inbox]\nsettle = \"250ms\"\nmax_bytes = 1024\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Inbox.Settle.D() != 250*time.Millisecond || c.Inbox.MaxBytes != 1024 {
		t.Fatalf("got %v %v", c.Inbox.Settle, c.Inbox.MaxBytes)
	}
	if _, err := Parse("d.toml", []byte("[inbox]\nsettle = \"soon\"\n")); err == nil || !strings.Contains(err.Error(), "bad duration") {
		t.Fatalf("bad duration not reported: %v", err)
	}
}

func TestMissingDefaultFileGivesDefaultsButNamedFileMustExist(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
}

func TestConverterStagesCarryEverySetting(t *testing.T) {
	for _, s := range DefaultStages() {
		c := s.Converter()
		if c.Name != s.Name || string(c.Kind) != s.Kind || string(c.Swap) != s.Swap || c.DropCaches != s.DropCaches ||
			c.Parts != s.Parts || c.Timeout != s.Timeout.D() {
			t.Errorf("stage %s converted to %+v", s.Name, c)
		}
		if c.Settings.WorkspaceMiB != int64(s.Workspace)>>20 || c.Settings.Precision != s.Precision {
			t.Errorf("stage %s settings %+v", s.Name, c.Settings)
		}
	}
}
