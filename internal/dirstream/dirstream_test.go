package dirstream

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestEachReadsEveryEntryInBatches(t *testing.T) {
	dir := t.TempDir()
	want := map[string]bool{}
	for i := 0; i < 3*Batch+7; i++ {
		n := fmt.Sprintf("f%04d", i)
		want[n] = true
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	if err := Each(dir, func(e fs.DirEntry) error {
		if got[e.Name()] {
			t.Errorf("%s twice", e.Name())
		}
		got[e.Name()] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	stop := errors.New("stop")
	n := 0
	if err := Each(dir, func(fs.DirEntry) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error: got %v after %d entries, want stop after 1", err, n)
	}
	if err := Each(filepath.Join(dir, "absent"), func(fs.DirEntry) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("absent dir: %v", err)
	}
}

func TestWalkVisitsTreeAndSkips(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"a/b/c.txt", "a/d.txt", "skip/e.txt", "f.txt"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte("x"), 0o644)
	}
	os.Symlink(root, filepath.Join(root, "loop"))
	var got []string
	err := Walk(root, func(p string, d fs.DirEntry) error {
		rel, _ := filepath.Rel(root, p)
		got = append(got, rel)
		if d.IsDir() && d.Name() == "skip" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"a", "a/b", "a/b/c.txt", "a/d.txt", "f.txt", "loop", "skip"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walked %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := Walk(root, func(p string, d fs.DirEntry) error {
		if d.Name() == "c.txt" {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Fatalf("fn's error deep in the tree: %v", err)
	}
}

func TestWalkSkipsUnreadableSubdir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "locked"), 0o755)
	os.WriteFile(filepath.Join(root, "locked", "x"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "y"), nil, 0o644)
	os.Chmod(filepath.Join(root, "locked"), 0)
	defer os.Chmod(filepath.Join(root, "locked"), 0o755)
	n := 0
	if err := Walk(root, func(string, fs.DirEntry) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("Walk = %v after %d entries, want nil after 2", err, n)
	}
}
