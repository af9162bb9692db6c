package onnx

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fuzzSeeds adds the hand-built model and up to 60 small real models of
// libonnx-testdata (when installed) to f's seed corpus. The corpus of
// interesting inputs found so far lives in testdata/fuzz/FuzzRead.
func fuzzSeeds(f *testing.F) {
	f.Add(buildTestModel().file)
	f.Add(deepModel(3))
	var paths []string
	filepath.WalkDir(onnxTestdata(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".onnx" {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	step := len(paths)/60 + 1
	for i := 0; i < len(paths); i += step {
		if b, err := os.ReadFile(paths[i]); err == nil && len(b) <= 8<<10 {
			f.Add(b)
		}
	}
}

func FuzzRead(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Read(bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error without position: %v", err)
			}
			if !errors.Is(err, ErrNotONNX) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrExternalData) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		checkInvariants(t, m, data)
	})
}

// checkInvariants checks what every accepted model must satisfy.
func checkInvariants(t *testing.T, m *Model, data []byte) {
	t.Helper()
	size := int64(len(data))
	// Top-level fields tile the file.
	var at int64
	for _, f := range m.Fields {
		if f.Span.Off != at || f.Span.Len <= 0 {
			t.Fatalf("model field %d at [%d,+%d), expected at %d", f.Num, f.Span.Off, f.Span.Len, at)
		}
		at = f.Span.End()
	}
	if at != size {
		t.Fatalf("model fields end at %d of %d", at, size)
	}
	inside := func(what string, s, outer Span) {
		if s.Off < outer.Off || s.Len < 0 || s.End() > outer.End() {
			t.Fatalf("%s span [%d,+%d) outside [%d,+%d)", what, s.Off, s.Len, outer.Off, outer.Len)
		}
	}
	file := Span{0, size}
	m.Walk(func(g *Graph, depth int) {
		inside("graph", g.Span, file)
		for _, n := range g.Nodes {
			inside("node", n.Span, file)
			for _, a := range n.Attributes {
				inside("attribute", a.Span, n.Span)
				if a.SSpan != (Span{}) {
					inside("attribute s", a.SSpan, a.Span)
				}
				if len(a.Ints) > a.NInts || len(a.Floats) > a.NFloats || len(a.Strings) > a.NStrings {
					t.Fatalf("attribute %q keeps more values than it counted", a.Name)
				}
			}
		}
		for _, v := range append(append(append([]*ValueInfo{}, g.Inputs...), g.Outputs...), g.ValueInfo...) {
			inside("value", v.Span, file)
		}
	})
	for _, tn := range m.tensors {
		inside("tensor", tn.Span, file)
		if tn.DataField != 0 {
			inside("tensor data", tn.Data, tn.Span)
		} else if tn.Data != (Span{}) {
			t.Fatalf("tensor %q: data span without a data field", tn.Name)
		}
		if tn.Bytes() < 0 || tn.Elements() < 0 {
			t.Fatalf("tensor %q: negative size", tn.Name)
		}
		if (tn.External != nil) != (tn.Location == External) {
			t.Fatalf("tensor %q: location %d, external %v", tn.Name, tn.Location, tn.External)
		}
	}
	s := m.Summary()
	if _, err := json.Marshal(s); err != nil {
		t.Fatalf("summary does not marshal: %v", err)
	}
	if err := s.WriteText(new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if s.NodeCount != len(m.Graph.Nodes) || s.WeightBytes < s.Initializers.Bytes && s.WeightBytes != 1<<63-1 {
		t.Fatalf("summary counts: %d nodes, weight %d < init %d", s.NodeCount, s.WeightBytes, s.Initializers.Bytes)
	}
}

// FuzzExternalLocation feeds external-data locations, offsets and lengths
// to the confinement checks, in a directory with symlinks that lead out:
// an accepted reference must resolve inside the directory and fit its file.
func FuzzExternalLocation(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "inbox")
	for _, p := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "w.bin"), filepath.Join(dir, "sub", "w.bin"), filepath.Join(root, "secret")} {
		if err := os.WriteFile(p, make([]byte, 64), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{"up": "..", "etc": "/etc", "secret.bin": "../secret", "ok.bin": "sub/w.bin", "sub/back": "../w.bin"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			f.Fatal(err)
		}
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, loc := range []string{"w.bin", "sub/w.bin", "up/secret", "etc/passwd", "secret.bin", "ok.bin", "sub/back", "./w.bin", "sub/../w.bin", "/etc/passwd", "w.bin/", "sub//w.bin", ".", ""} {
		f.Add(loc, "0", "16")
	}
	f.Fuzz(func(t *testing.T, loc, off, length string) {
		tensor := pb{}.bytes(1, packed(4)).varint(2, uint64(Float)).str(8, "w").varint(14, 1).
			msg(13, entryPB("location", loc)).msg(13, entryPB("offset", off)).msg(13, entryPB("length", length))
		file := pb{}.varint(1, 8).msg(8, opsetPB("", 13)).msg(7, pb{}.msg(5, tensor))
		m, err := Read(bytes.NewReader(file), int64(len(file)), dir)
		if err != nil {
			if !errors.Is(err, ErrExternalData) {
				t.Fatalf("location %q: unclassified error %v", loc, err)
			}
			return
		}
		for _, ref := range m.ExternalRefs() {
			real, err := filepath.EvalSymlinks(ref.Path)
			if err != nil {
				t.Fatalf("accepted %q: %v", loc, err)
			}
			if !strings.HasPrefix(real, realDir+string(filepath.Separator)) {
				t.Fatalf("accepted %q, which resolves to %s outside %s", loc, real, realDir)
			}
			st, err := os.Stat(real)
			if err != nil || !st.Mode().IsRegular() || ref.Offset+max(ref.Length, 16) > st.Size() || ref.Offset < 0 {
				t.Fatalf("accepted %q offset %d length %d of %v", loc, ref.Offset, ref.Length, st)
			}
		}
	})
}
