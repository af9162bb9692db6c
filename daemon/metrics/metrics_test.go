package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestTextfileGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trtd.prom")
	c := New(path)
	c.Job("built", "fast", 0, 120.5)
	c.Job("built", "lean", 2, 300)
	c.Job("failed", "", 4, 900)
	c.Job("reused", "fast", 0, 0)
	c.Pulled()
	c.Pushed()
	c.Pushed()
	c.RegistryError("push")
	c.Fleet("registry.lan:5000/trtd/\"engines\"", 3)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path) // rewritten by the last change
	golden := filepath.Join("testdata", "trtd.prom")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("textfile differs from %s (go test -update):\n%s", golden, got)
	}
	// What node_exporter's parser requires: every sample's family is
	// declared before it, no sample is repeated.
	seen, typed := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		if strings.HasPrefix(l, "# TYPE ") {
			typed[strings.Fields(l)[2]] = true
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		name := strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0]
		fam := strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count")
		if !typed[fam] {
			t.Errorf("sample before its TYPE: %s", l)
		}
		key := l[:strings.LastIndexByte(l, ' ')]
		if seen[key] {
			t.Errorf("repeated sample %s", key)
		}
		seen[key] = true
	}
	if c.Write("") != nil {
		t.Error("an empty path must write nothing")
	}
}
