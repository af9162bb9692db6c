package meminfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	i, err := Parse("meminfo", []byte("MemTotal:        4059272 kB\nMemFree: 1 kB\nMemAvailable:    2000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: x\n"))
	if err != nil || i.MemTotal != 4059272<<10 || i.MemAvailable != 2000000<<10 || len(i.Missing) != 0 {
		t.Fatalf("%+v %v", i, err)
	}
	i, err = Parse("meminfo", []byte("MemTotal: 1 kB\n"))
	if err != nil || i.Has("MemAvailable") || !i.Has("MemTotal") {
		t.Fatalf("missing fields: %+v %v", i, err)
	}
	for _, bad := range []string{"MemAvailable: lots kB\n", "SwapFree:\n"} {
		if _, err := Parse("meminfo", []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReadUnderRoot(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal: 2 kB\nMemAvailable: 1 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"), 0o644)
	i, err := Read(dir)
	if err != nil || i.MemAvailable != 1024 {
		t.Fatalf("%+v %v", i, err)
	}
	if _, err := Read(filepath.Join(dir, "none")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
