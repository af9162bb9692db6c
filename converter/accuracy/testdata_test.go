package accuracy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testData is Debian's libonnx-testdata: real models of the ONNX test
// suite, each with test_data_set_N/input_N.pb and output_N.pb.
const testData = "/usr/share/libonnx-testdata/data"

func testDataFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(testData); err != nil {
		t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata): " + err.Error())
	}
	var files []string
	filepath.WalkDir(testData, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".pb") && strings.Contains(p, "/test_data_set_") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) < 1000 {
		t.Fatalf("only %d test data files under %s", len(files), testData)
	}
	return files
}

type refTensor struct {
	Name      string  `json:"name"`
	DType     string  `json:"dtype"`
	Shape     []int64 `json:"shape"`
	SHA256    string  `json:"sha256"`
	Sum       float64 `json:"sum"`
	NonFinite int     `json:"nonfinite"`
	Skip      bool    `json:"skip"`
	Error     string  `json:"error"`
}

// reference decodes files with onnx.numpy_helper (Debian's python3-onnx).
func reference(t *testing.T, files []string) map[string]refTensor {
	t.Helper()
	py := "/usr/bin/python3"
	if testing.Short() {
		t.Skip("-short: runs no external tools (python3-onnx)")
	}
	if err := exec.Command(py, "-I", "-c", "import onnx.numpy_helper").Run(); err != nil {
		t.Skip("no reference reader: /usr/bin/python3 without python3-onnx (apt-get install python3-onnx)")
	}
	cmd := exec.Command(py, "testdata/reference.py")
	cmd.Stdin = strings.NewReader(strings.Join(files, "\n"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference reader: %v", err)
	}
	ref := map[string]refTensor{}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	return ref
}

// Every tensor file of the ONNX test data sets decodes to exactly what
// onnx.numpy_helper makes of it: name, type, shape, the element bytes and
// their sum; the files the reference cannot read as tensors (sequences,
// optionals) and string tensors are refused with ErrBadTensor.
func TestTestDataMatchesONNX(t *testing.T) {
	files := testDataFiles(t)
	ref := reference(t, files)
	counts := map[string]int{}
	refused := 0
	for _, p := range files {
		r, ok := ref[p]
		if !ok {
			t.Fatalf("%s: no reference", p)
		}
		got, err := ReadFile(p)
		if r.Error != "" || r.Skip {
			// Sequences and optionals are other protos; a few happen to
			// decode as a tensor whose data does not fit its dims.
			if err == nil {
				t.Errorf("%s: decoded (%s %v) a file the reference cannot read as a numeric tensor (%q, %s)", p, got.DType, got.Dims, r.Error, r.DType)
			} else if !errors.Is(err, ErrBadTensor) {
				t.Errorf("%s: error %v is not ErrBadTensor", p, err)
			}
			refused++
			continue
		}
		if err != nil {
			t.Errorf("%s: %v (reference: %s %v)", p, err, r.DType, r.Shape)
			continue
		}
		counts[got.DType]++
		if got.Name != r.Name || got.DType != r.DType || !sameShape(got.Dims, r.Shape) && !(len(got.Dims) == 0 && len(r.Shape) == 0) {
			t.Errorf("%s: %q %s %v, reference %q %s %v", p, got.Name, got.DType, got.Dims, r.Name, r.DType, r.Shape)
			continue
		}
		sum := sha256.Sum256(got.Data)
		if hex.EncodeToString(sum[:]) != r.SHA256 {
			t.Errorf("%s: element bytes differ from the reference's", p)
		}
		var s float64
		nonFinite := 0
		for _, v := range got.Float64s() {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				nonFinite++
				continue
			}
			s += v
		}
		if nonFinite != r.NonFinite || math.Abs(s-r.Sum) > 1e-6*math.Max(1, math.Abs(r.Sum)) {
			t.Errorf("%s: sum %v (%d non-finite), reference %v (%d)", p, s, nonFinite, r.Sum, r.NonFinite)
		}
	}
	for _, dt := range []string{"float32", "float16", "float64", "int32", "int64", "uint8", "int8", "bool"} {
		if counts[dt] == 0 {
			t.Errorf("no %s tensor among the test data: the cross-check does not cover it", dt)
		}
	}
	t.Logf("%d files: %v decoded, %d refused like the reference", len(files), counts, refused)
}

// A real model's test data set compared with itself is within any
// tolerance, and a perturbed copy is outside a tight one.
func TestCheckRealOutputs(t *testing.T) {
	if _, err := os.Stat(testData); err != nil {
		t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata)")
	}
	dir := filepath.Join(testData, "node/test_softmax_axis_1/test_data_set_0")
	exp, err := ReadFile(filepath.Join(dir, "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := Check([]Tensor{exp}, []Tensor{exp}, 0, 0)
	if err != nil || !o.OK || len(o.Stats) != 1 || o.Stats[0].MaxAbsErr != 0 {
		t.Fatalf("identical: %+v %v", o, err)
	}
	got := Perturb(exp, 1e-2)
	o, err = Check([]Tensor{got}, []Tensor{exp}, 1e-3, 1e-3)
	if err != nil || o.OK || o.Stats[0].OK || o.Stats[0].MaxAbsErr < 5e-3 || !strings.Contains(o.Message, "output "+exp.Name) {
		t.Fatalf("perturbed: %+v %v", o, err)
	}
}
