package fsutil

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestWriteFileAtomicReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	if err := WriteFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("perm %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("debris left: %v", ents)
	}
}

func TestWriteAtomicErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	os.WriteFile(p, []byte("old"), 0o644)
	boom := errors.New("boom")
	err := WriteAtomic(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("old content lost: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp left behind: %v", ents)
	}
}

func TestOpenUntrusted(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "m.onnx")
	os.WriteFile(reg, []byte("x"), 0o600)
	link := filepath.Join(dir, "link.onnx")
	os.Symlink("/etc/passwd", link)
	fifo := filepath.Join(dir, "fifo.onnx")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.onnx")
	os.Mkdir(sub, 0o755)
	sock := filepath.Join(dir, "s.onnx")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	f, _, err := OpenUntrusted(reg)
	if err != nil {
		t.Fatalf("regular: %v", err)
	}
	f.Close()
	for name, want := range map[string]error{link: ErrSymlink, fifo: ErrNotRegular, sub: ErrNotRegular, sock: ErrNotRegular} {
		done := make(chan error, 1)
		go func() { _, _, err := OpenUntrusted(name); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("%s: got %v, want %v", filepath.Base(name), err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: OpenUntrusted blocked", filepath.Base(name))
		}
	}
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	if err := RenameNoReplace(a, b); !errors.Is(err, os.ErrExist) {
		t.Fatalf("want ErrExist, got %v", err)
	}
	if got, _ := os.ReadFile(b); string(got) != "b" {
		t.Fatal("b was replaced")
	}
	os.Remove(b)
	if err := RenameNoReplace(a, b); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TempPrefix+"x"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "keep.engine"), nil, 0o644)
	rm, err := RemoveTemps(dir)
	if err != nil || len(rm) != 1 {
		t.Fatalf("removed %v err %v", rm, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.engine")); err != nil {
		t.Fatal("removed a non-temp file")
	}
}
