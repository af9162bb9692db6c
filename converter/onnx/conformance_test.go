package onnx

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// The fields of `trtd inspect --json` that scripts rely on, compared
// exactly with python3-onnx.
var conformanceFields = []string{"ir_version", "opset", "producer", "inputs", "outputs", "node_count", "op_counts", "initializers"}

const refPython = "/usr/bin/python3"

// pythonONNX checks that refPython has a working onnx package: an empty
// dist-packages/onnx directory left behind imports as a namespace package
// and used to pass for one.
func pythonONNX() error {
	return exec.Command(refPython, "-I", "-c", "import onnx, onnx.checker; onnx.load").Run()
}

// needPythonONNX skips the test unless Debian's python3-onnx is installed.
func needPythonONNX(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs no external tools (python3-onnx)")
	}
	if err := pythonONNX(); err != nil {
		t.Skipf("reference parser unavailable (%s -c 'import onnx': %v): apt-get install python3-onnx", refPython, err)
	}
}

type refResult struct {
	Path    string         `json:"path"`
	Summary map[string]any `json:"summary"`
	Error   string         `json:"error"`
}

// reference runs testdata/reference.py once over all paths.
func reference(t *testing.T, paths []string) map[string]refResult {
	t.Helper()
	cmd := exec.Command(refPython, "testdata/reference.py", "-")
	cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.py: %v\n%s", err, stderr.String())
	}
	res := map[string]refResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var r refResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("reference.py output %q: %v", sc.Text(), err)
		}
		res[r.Path] = r
	}
	if len(res) != len(paths) {
		t.Fatalf("reference.py answered for %d of %d files", len(res), len(paths))
	}
	return res
}

// goSummary returns the conformance fields of Open(path).Summary() as
// generic JSON values.
func goSummary(path string) (map[string]any, error) {
	m, err := Open(path)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m.Summary())
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var all map[string]any
	if err := dec.Decode(&all); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, k := range conformanceFields {
		out[k] = all[k]
	}
	return out, nil
}

// compareWithReference checks every path against python3-onnx and returns
// how many agreed.
func compareWithReference(t *testing.T, paths []string) int {
	t.Helper()
	ref := reference(t, paths)
	agreed := 0
	for _, p := range paths {
		r := ref[p]
		got, err := goSummary(p)
		if r.Error != "" {
			if err == nil {
				t.Errorf("%s: python-onnx refuses it (%s) but the reader accepts it", p, r.Error)
			} else {
				agreed++
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: python-onnx reads it, the reader says: %v", p, err)
			continue
		}
		ok := true
		for _, k := range conformanceFields {
			if !reflect.DeepEqual(got[k], r.Summary[k]) {
				g, _ := json.Marshal(got[k])
				w, _ := json.Marshal(r.Summary[k])
				t.Errorf("%s: %s differs:\n   got %s\n  want %s", p, k, g, w)
				ok = false
			}
		}
		if ok {
			agreed++
		}
	}
	return agreed
}

// onnxTestdata is where Debian's libonnx-testdata puts its models.
func onnxTestdata() string {
	if d := os.Getenv("TRTD_ONNX_TESTDATA"); d != "" {
		return d
	}
	return "/usr/share/libonnx-testdata/data"
}

func TestConformanceONNXTestdata(t *testing.T) {
	needPythonONNX(t)
	root := onnxTestdata()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".onnx") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil || len(paths) == 0 {
		t.Skipf("no ONNX test models under %s (%v): apt-get install libonnx-testdata", root, err)
	}
	sort.Strings(paths)
	agreed := compareWithReference(t, paths)
	t.Logf("libonnx-testdata: %d of %d models agree with python3-onnx on %s", agreed, len(paths), strings.Join(conformanceFields, ", "))
}

// fixturesDir is the cache of exported models (make_fixtures.py).
func fixturesDir() string {
	if d := os.Getenv("TRTD_FIXTURES"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "trtd-fixtures")
}

// fixtures returns the paths of the default fixture models, exporting the
// missing ones with python3-torch (about 15 s for all on 2 cores).
func fixtures(t *testing.T) []string {
	t.Helper()
	if err := exec.Command(refPython, "-c", "import torch, torchvision, onnx").Run(); err != nil {
		t.Skipf("cannot export fixtures (%s -c 'import torch, torchvision, onnx': %v): apt-get install python3-torch python3-torchvision python3-onnx", refPython, err)
	}
	dir := fixturesDir()
	cmd := exec.Command(refPython, "testdata/make_fixtures.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_fixtures.py %s: %v\n%s", dir, err, out)
	}
	list, err := exec.Command(refPython, "testdata/make_fixtures.py", "--list", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		if strings.Contains(line, "only with --only") {
			continue
		}
		paths = append(paths, filepath.Join(dir, strings.TrimSpace(line)+".onnx"))
	}
	return paths
}

func TestConformanceTorchExports(t *testing.T) {
	needPythonONNX(t)
	paths := fixtures(t)
	agreed := compareWithReference(t, paths)
	t.Logf("torchvision/torch exports: %d of %d models agree with python3-onnx", agreed, len(paths))

	// What the fixtures are there to show.
	lstm, err := Open(filepath.Join(fixturesDir(), "lstm.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if got := lstm.Summary().DynamicInputs; !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("lstm dynamic inputs = %v", got)
	}
	ext, err := Open(filepath.Join(fixturesDir(), "resnet18_external.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Open(filepath.Join(fixturesDir(), "resnet18.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	es, ps := ext.Summary(), plain.Summary()
	if len(es.ExternalData) == 0 || es.Initializers != ps.Initializers || es.WeightBytes != ps.WeightBytes {
		t.Errorf("external-data resnet18: %d refs, %+v / %d bytes; embedded: %+v / %d bytes",
			len(es.ExternalData), es.Initializers, es.WeightBytes, ps.Initializers, ps.WeightBytes)
	}
}
