package onnx

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// readCorpusEntry decodes a `go test fuzz v1` file holding one []byte.
func readCorpusEntry(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" || !sc.Scan() {
		return nil, fmt.Errorf("%s: not a fuzz corpus file", path)
	}
	line := sc.Text()
	if !strings.HasPrefix(line, "[]byte(") || !strings.HasSuffix(line, ")") {
		return nil, fmt.Errorf("%s: not a []byte entry", path)
	}
	s, err := strconv.Unquote(line[len("[]byte(") : len(line)-1])
	return []byte(s), err
}

// The fuzz corpus (checked in, plus $TRTD_FUZZ_CORPUS, e.g. Go's cache of
// interesting inputs) is mostly garbage that python-onnx still parses: the
// reader must agree with it on every input both accept, and refuse only
// what it documents as stricter (empty file, no graph, no opset_import, no
// ir_version, limits, unsafe external data, groups, field numbers beyond
// 2^29-1).
func TestConformanceFuzzCorpus(t *testing.T) {
	needPythonONNX(t)
	dirs := []string{"testdata/fuzz/FuzzRead"}
	if d := os.Getenv("TRTD_FUZZ_CORPUS"); d != "" {
		dirs = append(dirs, d)
	}
	tmp := t.TempDir()
	var paths []string
	for _, dir := range dirs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			data, err := readCorpusEntry(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			p := filepath.Join(tmp, fmt.Sprintf("%d-%s.onnx", len(paths), e.Name()))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		t.Skip("no fuzz corpus")
	}
	sort.Strings(paths)
	ref := reference(t, paths)
	both, stricter := 0, 0
	for _, p := range paths {
		r := ref[p]
		_, goErr := Open(p)
		switch {
		case r.Error != "" && goErr == nil:
			t.Errorf("%s: python-onnx refuses it (%s), the reader accepts it", p, r.Error)
		case r.Error == "" && goErr != nil:
			if !documentedStricter(goErr) {
				t.Errorf("%s: python-onnx reads it, the reader says: %v", p, goErr)
			}
			stricter++
		case r.Error == "":
			both++
		}
	}
	// Inputs both accept must agree on every field.
	var accepted []string
	for _, p := range paths {
		if ref[p].Error == "" {
			if _, err := Open(p); err == nil {
				accepted = append(accepted, p)
			}
		}
	}
	agreed := compareWithReference(t, accepted)
	t.Logf("fuzz corpus: %d inputs; %d accepted by both (%d agree on every field), %d refused only by the reader's documented checks", len(paths), both, agreed, stricter)
}

func documentedStricter(err error) bool {
	var fe *FormatError
	if !errors.As(err, &fe) {
		return false
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrExternalData) {
		return true
	}
	// Field numbers beyond protobuf's 2^29-1 and groups (deprecated,
	// never used by ONNX) are refused; python-onnx skips some of them.
	if strings.Contains(fe.What, "invalid field number") || strings.Contains(fe.What, "unsupported wire type") {
		return true
	}
	return fe.Off < 0 // whole-model checks: empty file, no graph, opset_import or ir_version
}

// TestDifferentialMutations (make fuzz-diff; TRTD_DIFF_MUTATIONS=N) mutates
// real and hand-built models N times (byte changes, insertions, deletions,
// truncations), runs python-onnx once over all of them and holds the
// reader to the same rules as TestConformanceFuzzCorpus.
func TestDifferentialMutations(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TRTD_DIFF_MUTATIONS"))
	if n <= 0 {
		t.Skip("set TRTD_DIFF_MUTATIONS=N to compare N mutated models with python-onnx (make fuzz-diff)")
	}
	needPythonONNX(t)
	seeds := [][]byte{buildTestModel().file, deepModel(3)}
	var paths []string
	filepath.WalkDir(onnxTestdata(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".onnx" {
			paths = append(paths, p)
		}
		return nil
	})
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 4<<10 {
			seeds = append(seeds, b)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	tmp := t.TempDir()
	var files []string
	for i := 0; i < n; i++ {
		b := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for k := 1 + rng.IntN(3); k > 0 && len(b) > 1; k-- {
			at := rng.IntN(len(b))
			switch rng.IntN(5) {
			case 0:
				b[at] = byte(rng.IntN(256))
			case 1:
				b[at] ^= 1 << rng.IntN(8)
			case 2:
				b = append(b[:at], append([]byte{byte(rng.IntN(256))}, b[at:]...)...)
			case 3:
				b = append(b[:at], b[at+1:]...)
			case 4:
				b = b[:at]
			}
		}
		p := filepath.Join(tmp, fmt.Sprintf("%06d.onnx", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	ref := reference(t, files)
	var accepted []string
	bad := 0
	for _, p := range files {
		r := ref[p]
		_, goErr := Open(p)
		switch {
		case r.Error != "" && goErr == nil:
			bad++
			if bad <= 20 {
				t.Errorf("%s: python-onnx refuses it (%s), the reader accepts it", p, r.Error)
			}
		case r.Error == "" && goErr != nil && !documentedStricter(goErr):
			bad++
			if bad <= 20 {
				t.Errorf("%s: python-onnx reads it, the reader says: %v", p, goErr)
			}
		case r.Error == "" && goErr == nil:
			accepted = append(accepted, p)
		}
	}
	agreed := compareWithReference(t, accepted)
	t.Logf("%d mutated models: %d accepted by both, %d agree on every field, %d disagreements on acceptance", n, len(accepted), agreed, bad)
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "trtd-diff-failures")
		os.MkdirAll(keep, 0o755)
		for _, p := range files {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
		}
		t.Logf("inputs kept in %s", keep)
	}
}
