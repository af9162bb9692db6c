package untrusted

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

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

	f, _, err := Open(reg)
	if err != nil {
		t.Fatalf("regular: %v", err)
	}
	f.Close()
	for name, want := range map[string]error{link: ErrSymlink, fifo: ErrNotRegular, sub: ErrNotRegular, sock: ErrNotRegular} {
		done := make(chan error, 1)
		go func() { _, _, err := Open(name); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("%s: got %v, want %v", filepath.Base(name), err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Open blocked", filepath.Base(name))
		}
	}
}
