package l4t

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64, DATE: Fri Jun  9 04:25:08 UTC 2023\n": "32.7.4",
		"# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64\n":                                     "36.3.0",
		"# R35 (release), REVISION: 5\n": "35.5.0",
		"garbage":                        "",
	} {
		got, ok := Parse(in)
		if got != want || ok != (want != "") {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if v, err := Read(dir); v != "" || err != nil {
		t.Fatalf("absent file: %q %v", v, err)
	}
	os.WriteFile(filepath.Join(dir, File), []byte("not a release\n"), 0o644)
	if _, err := Read(dir); err == nil {
		t.Fatal("no error for an unparsable file")
	}
	os.WriteFile(filepath.Join(dir, File), []byte("# R32 (release), REVISION: 7.4\n"), 0o644)
	if v, err := Read(dir); v != "32.7.4" || err != nil {
		t.Fatalf("%q %v", v, err)
	}
}
