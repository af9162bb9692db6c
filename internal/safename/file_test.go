package safename

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// F-17: "-a" used to become "_a-c2748917", which is also what an upload
// named "_a-c2748917.onnx" is called: the second overwrote the first's
// engine. No two names share a stem now.
func TestFileNeverCollides(t *testing.T) {
	h := sha256.Sum256([]byte("-a"))
	legacy := "_a-" + hex.EncodeToString(h[:4]) // what "-a" was given before
	names := []string{"-a", legacy, "_a", ".a", "a", "a/b", "a_b", "a\nb", "a\xffb",
		File("-a"), File(".a"), "a-0123456789abcdef", "a-01234567", strings.Repeat("x", 250),
		strings.Repeat("x", 200), "", "-", "."}
	seen := map[string]string{}
	for _, n := range names {
		o := File(n)
		if prev, ok := seen[o]; ok && prev != n {
			t.Errorf("%q and %q share the outbox name %q", prev, n, o)
		}
		seen[o] = n
		if strings.ContainsAny(o, "/\\\n") || strings.HasPrefix(o, "-") || strings.HasPrefix(o, ".") || len(o) > 220 {
			t.Errorf("File(%q) = %q is not a safe stem", n, o)
		}
	}
	for _, ok := range []string{"resnet18", "yolo_v8-n", "modèle"} {
		if File(ok) != ok {
			t.Errorf("File(%q) = %q, want it unchanged", ok, File(ok))
		}
	}
}

func FuzzFile(f *testing.F) {
	for _, s := range []string{"resnet18", "-a", "_a-c2748917", ".x", "a/b", "\xff", strings.Repeat("é", 150)} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		oa, ob := File(a), File(b)
		if a != b && oa == ob {
			t.Fatalf("%q and %q share %q", a, b, oa)
		}
		if strings.ContainsAny(oa, "/\\\x00") || strings.HasPrefix(oa, "-") || strings.HasPrefix(oa, ".") || oa == "" {
			t.Fatalf("File(%q) = %q", a, oa)
		}
		for _, r := range oa {
			if r < 0x20 || r == 0x7f || r == 0xfffd && !strings.ContainsRune(a, 0xfffd) {
				t.Fatalf("File(%q) = %q holds %U", a, oa, r)
			}
		}
	})
}
