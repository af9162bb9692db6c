package treecopy

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/trtd/trtd/internal/untrusted"
)

// tree makes src/{a, sub/b} and returns src.
func tree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"a": "A", "sub/b": "B"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func check(t *testing.T, dst string) {
	t.Helper()
	for p, want := range map[string]string{"a": "A", "sub/b": "B"} {
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestCopy(t *testing.T) {
	for _, link := range []bool{false, true} {
		src := tree(t)
		dst := filepath.Join(t.TempDir(), "dst")
		if err := Copy(src, dst, link); err != nil {
			t.Fatalf("link=%v: %v", link, err)
		}
		check(t, dst)
		// Same directory tree, same file system: a link when allowed.
		if same := inode(t, filepath.Join(src, "a")) == inode(t, filepath.Join(dst, "a")); same != link {
			t.Errorf("link=%v: hard-linked = %v", link, same)
		}
	}
}

func TestCopyRefusesLinks(t *testing.T) {
	src := tree(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "sub", "evil")); err != nil {
		t.Fatal(err)
	}
	err := Copy(src, filepath.Join(t.TempDir(), "dst"), false)
	if !errors.Is(err, untrusted.ErrNotRegular) {
		t.Fatalf("Copy over a symlink: %v, want ErrNotRegular", err)
	}
}

func TestDurable(t *testing.T) {
	src := tree(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "sub", "evil")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := Durable(src, dst); err != nil {
		t.Fatal(err)
	}
	check(t, dst)
	if _, err := os.Lstat(filepath.Join(dst, "sub", "evil")); !os.IsNotExist(err) {
		t.Errorf("the symlink was copied: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dst, "sub", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("copied file mode %v, want 0644", fi.Mode().Perm())
	}
	if inode(t, filepath.Join(src, "a")) == inode(t, filepath.Join(dst, "a")) {
		t.Error("Durable linked instead of copying")
	}
	ents, _ := os.ReadDir(filepath.Join(dst, "sub"))
	for _, e := range ents {
		if e.Name() != "b" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
