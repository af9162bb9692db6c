package untrusted

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.toml")
	f, _ := os.Create(big)
	f.Truncate(2 << 30) // sparse
	f.Close()
	if _, err := ReadFileLimit(big, 64<<10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("2 GiB file: %v, want ErrTooLarge", err)
	}
	small := filepath.Join(dir, "small.toml")
	os.WriteFile(small, []byte("precision = \"fp16\"\n"), 0o644)
	if b, err := ReadFileLimit(small, 64<<10); err != nil || string(b) != "precision = \"fp16\"\n" {
		t.Fatalf("%q %v", b, err)
	}
	os.Symlink(small, filepath.Join(dir, "link.toml"))
	if _, err := ReadFileLimit(filepath.Join(dir, "link.toml"), 64<<10); !errors.Is(err, ErrSymlink) {
		t.Fatalf("link: %v, want ErrSymlink", err)
	}
}
