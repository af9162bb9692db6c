package filehash

import (
	"os"
	"path/filepath"
	"testing"
)

// The sha256 of "abc" (FIPS 180-2, appendix B.1).
const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func TestOneHashThreeWays(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := SHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	h := New()
	h.Write([]byte("a"))
	h.Write([]byte("bc"))
	for name, got := range map[string]string{"SHA256": file, "Bytes": Bytes([]byte("abc")), "Hash": h.Sum()} {
		if got != abc {
			t.Errorf("%s = %s, want %s", name, got, abc)
		}
	}
	if _, err := SHA256(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SHA256 of a missing file: no error")
	}
}
