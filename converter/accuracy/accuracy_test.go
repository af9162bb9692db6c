package accuracy

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trtd/trtd/converter/protocol"
)

// proto builds a TensorProto by hand.
type proto []byte

func (p proto) dims(d ...int64) proto {
	for _, v := range d {
		p = protowire.AppendTag(p, 1, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(v))
	}
	return p
}
func (p proto) dtype(v int) proto {
	return protowire.AppendVarint(protowire.AppendTag(p, 2, protowire.VarintType), uint64(v))
}
func (p proto) name(s string) proto {
	return protowire.AppendString(protowire.AppendTag(p, 8, protowire.BytesType), s)
}
func (p proto) raw(b []byte) proto {
	return protowire.AppendBytes(protowire.AppendTag(p, 9, protowire.BytesType), b)
}
func (p proto) packedVarints(field protowire.Number, v ...int64) proto {
	var b []byte
	for _, x := range v {
		b = protowire.AppendVarint(b, uint64(x))
	}
	return protowire.AppendBytes(protowire.AppendTag(p, field, protowire.BytesType), b)
}
func (p proto) floats(packed bool, v ...float32) proto {
	if !packed {
		for _, x := range v {
			p = protowire.AppendFixed32(protowire.AppendTag(p, 4, protowire.Fixed32Type), math.Float32bits(x))
		}
		return p
	}
	var b []byte
	for _, x := range v {
		b = protowire.AppendFixed32(b, math.Float32bits(x))
	}
	return protowire.AppendBytes(protowire.AppendTag(p, 4, protowire.BytesType), b)
}
func (p proto) doubles(v ...float64) proto {
	var b []byte
	for _, x := range v {
		b = protowire.AppendFixed64(b, math.Float64bits(x))
	}
	return protowire.AppendBytes(protowire.AppendTag(p, 10, protowire.BytesType), b)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    proto
		dtype string
		dims  []int64
		vals  []float64
		err   string
	}{
		{"float_data packed", proto{}.name("x").dtype(1).dims(2, 2).floats(true, 1, -2, 3.5, 0), "float32", []int64{2, 2}, []float64{1, -2, 3.5, 0}, ""},
		{"float_data unpacked", proto{}.dtype(1).dims(3).floats(false, 1, 2, 3), "float32", []int64{3}, []float64{1, 2, 3}, ""},
		{"packed dims", proto{}.dtype(1).packedVarints(1, 1, 2).floats(true, 4, 5), "float32", []int64{1, 2}, []float64{4, 5}, ""},
		{"int32_data", proto{}.dtype(6).dims(3).packedVarints(5, -1, 0, 7), "int32", []int64{3}, []float64{-1, 0, 7}, ""},
		{"int32_data as int8", proto{}.dtype(3).dims(2).packedVarints(5, -128, 127), "int8", []int64{2}, []float64{-128, 127}, ""},
		{"int32_data as uint8", proto{}.dtype(2).dims(2).packedVarints(5, 0, 255), "uint8", []int64{2}, []float64{0, 255}, ""},
		{"int32_data as bool", proto{}.dtype(9).dims(3).packedVarints(5, 1, 0, 1), "bool", []int64{3}, []float64{1, 0, 1}, ""},
		{"int32_data as float16 bits", proto{}.dtype(10).dims(2).packedVarints(5, 0x3c00, 0xc000), "float16", []int64{2}, []float64{1, -2}, ""},
		{"int64_data", proto{}.dtype(7).dims(2).packedVarints(7, -5, 1<<40), "int64", []int64{2}, []float64{-5, 1 << 40}, ""},
		{"double_data", proto{}.dtype(11).dims(2).doubles(0.1, -1e300), "float64", []int64{2}, []float64{0.1, -1e300}, ""},
		{"raw float32", proto{}.dtype(1).dims(1).raw([]byte{0, 0, 0x80, 0x3f}), "float32", []int64{1}, []float64{1}, ""},
		{"raw float16", proto{}.dtype(10).dims(2).raw([]byte{0x00, 0x3c, 0x00, 0x7c}), "float16", []int64{2}, []float64{1, math.Inf(1)}, ""},
		{"scalar", proto{}.dtype(7).packedVarints(7, 42), "int64", nil, []float64{42}, ""},
		{"empty tensor", proto{}.dtype(1).dims(0, 3), "float32", []int64{0, 3}, []float64{}, ""},
		{"unknown field skipped", append(proto{}.dtype(1).dims(1).floats(true, 2), protowire.AppendString(protowire.AppendTag(nil, 12, protowire.BytesType), "doc")...), "float32", []int64{1}, []float64{2}, ""},
		{"raw size wrong", proto{}.dtype(1).dims(2).raw([]byte{1, 2, 3}), "", nil, nil, "raw_data has 3 bytes"},
		{"value count wrong", proto{}.dtype(1).dims(3).floats(true, 1, 2), "", nil, nil, "float_data has 2 values"},
		{"raw and typed", proto{}.dtype(1).dims(1).floats(true, 1).raw([]byte{0, 0, 0, 0}), "", nil, nil, "both raw_data"},
		{"string", proto{}.dtype(8).dims(1), "", nil, nil, "string tensors"},
		{"complex", proto{}.dtype(14).dims(1), "", nil, nil, "complex64 tensors"},
		{"no data type", proto{}.dims(1), "", nil, nil, "data_type 0"},
		{"negative dim", proto{}.dtype(1).dims(-1), "", nil, nil, "negative dimension"},
		{"huge dims", proto{}.dtype(1).dims(1<<40, 1<<40), "", nil, nil, "too large"},
		{"truncated", proto{}.dtype(1).dims(2).floats(true, 1, 2)[:9], "", nil, nil, "ONNX TensorProto"},
		{"external data", append(proto{}.dtype(1).dims(1), protowire.AppendVarint(protowire.AppendTag(nil, 14, protowire.VarintType), 1)...), "", nil, nil, "external data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadTensor) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrBadTensor containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != tc.dtype || !sameShape(got.Dims, tc.dims) || got.Len() != int64(len(tc.vals)) {
				t.Fatalf("%s %v (len %d), want %s %v", got.DType, got.Dims, got.Len(), tc.dtype, tc.dims)
			}
			for i, v := range got.Float64s() {
				if v != tc.vals[i] {
					t.Errorf("element %d = %v, want %v", i, v, tc.vals[i])
				}
			}
		})
	}
}

func TestReadFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "output_0.pb")
	os.WriteFile(p, proto{}.dtype(1).dims(2).raw([]byte{1}), 0o644)
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) || !errors.Is(err, ErrBadTensor) {
		t.Errorf("error %v", err)
	}
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func f32(name string, dims []int64, v ...float64) Tensor {
	return FromFloat64s(name, "float32", dims, v)
}

var (
	nan = math.NaN()
	inf = math.Inf(1)
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name       string
		got, exp   Tensor
		atol, rtol float64
		ok         bool
		abs, rel   float64
		mismatched int
		problem    string
	}{
		{"equal", f32("y", []int64{3}, 1, 2, 3), f32("y", []int64{3}, 1, 2, 3), 0, 0, true, 0, 0, 0, ""},
		{"within atol", f32("y", []int64{2}, 1.0005, 2), f32("y", []int64{2}, 1, 2), 1e-3, 0, true, 0.0005, 0.0005, 0, ""},
		{"outside atol", f32("y", []int64{2}, 1.002, 2), f32("y", []int64{2}, 1, 2), 1e-3, 0, false, 0.002, 0.002, 1, ""},
		// rtol scales with |expected|, not |got| (numpy.allclose is asymmetric).
		{"within rtol", f32("y", []int64{1}, 1010), f32("y", []int64{1}, 1000), 0, 1e-2, true, 10, 0.01, 0, ""},
		{"outside rtol", f32("y", []int64{1}, 1020), f32("y", []int64{1}, 1000), 0, 1e-2, false, 20, 0.02, 1, ""},
		{"atol plus rtol", f32("y", []int64{1}, 12), f32("y", []int64{1}, 10), 1, 0.1, true, 2, 0.2, 0, ""},
		{"expected zero: rel left out", f32("y", []int64{2}, 0.5, 4), f32("y", []int64{2}, 0, 4), 1, 0, true, 0.5, 0, 0, ""},
		{"nan expected nan", f32("y", []int64{2}, nan, 1), f32("y", []int64{2}, nan, 1), 0, 0, true, 0, 0, 0, ""},
		{"nan got", f32("y", []int64{2}, nan, 1), f32("y", []int64{2}, 0, 1), 1, 1, false, math.MaxFloat64, math.MaxFloat64, 1, ""},
		{"nan missing", f32("y", []int64{1}, 0), f32("y", []int64{1}, nan), 1, 1, false, math.MaxFloat64, math.MaxFloat64, 1, ""},
		{"same infinity", f32("y", []int64{2}, inf, -inf), f32("y", []int64{2}, inf, -inf), 0, 0, true, 0, 0, 0, ""},
		{"wrong infinity", f32("y", []int64{1}, -inf), f32("y", []int64{1}, inf), 1, 1, false, math.MaxFloat64, math.MaxFloat64, 1, ""},
		{"shape", f32("y", []int64{2, 1}, 1, 2), f32("y", []int64{2}, 1, 2), 1, 1, false, 0, 0, 0, "shape [2 1], expected [2]"},
		{"int outputs", FromFloat64s("i", "int32", []int64{2}, []float64{3, 4}), FromFloat64s("i", "int64", []int64{2}, []float64{3, 5}), 0, 0, false, 1, 0.2, 1, ""},
		{"float16 engine output", FromFloat64s("h", "float16", []int64{1}, []float64{0.3333}), f32("h", []int64{1}, 1.0/3), 1e-3, 0, true, 0, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare("y", tc.got, tc.exp, tc.atol, tc.rtol)
			if c.Stat.OK != tc.ok || c.Mismatched != tc.mismatched {
				t.Fatalf("ok %v mismatched %d, want %v %d (%s)", c.Stat.OK, c.Mismatched, tc.ok, tc.mismatched, c)
			}
			if tc.problem != "" {
				if c.Problem != tc.problem {
					t.Fatalf("problem %q, want %q", c.Problem, tc.problem)
				}
				return
			}
			if tc.name == "float16 engine output" {
				return // the error is float16 rounding, checked by ok
			}
			if math.Abs(c.Stat.MaxAbsErr-tc.abs) > 1e-4*math.Max(1, tc.abs) || math.Abs(c.Stat.MaxRelErr-tc.rel) > 1e-4*math.Max(1, tc.rel) {
				t.Errorf("abs %v rel %v, want %v %v", c.Stat.MaxAbsErr, c.Stat.MaxRelErr, tc.abs, tc.rel)
			}
		})
	}
}

func TestCompareWorstElement(t *testing.T) {
	// Element 2 has the largest absolute error but is inside rtol; element 0
	// is the one outside tolerance.
	c := Compare("y", f32("y", []int64{3}, 0.5, 1, 1050), f32("y", []int64{3}, 0, 1, 1000), 0.1, 0.1)
	if c.Stat.OK || c.Worst != 0 || c.Got != 0.5 || c.Exp != 0 || c.Mismatched != 1 {
		t.Fatalf("%+v", c)
	}
	if s := c.String(); !strings.Contains(s, "1 of 3 values outside tolerance (worst: element 0 is 0.5, expected 0)") {
		t.Errorf("%s", s)
	}
}

func TestCheck(t *testing.T) {
	exp := []Tensor{f32("prob", []int64{2}, 0.25, 0.75), f32("box", []int64{2}, 10, 20)}
	for _, tc := range []struct {
		name    string
		got     []Tensor
		ok      bool
		message string
		err     string
	}{
		{"match", []Tensor{f32("box", []int64{2}, 10, 20.01), f32("prob", []int64{2}, 0.25, 0.75)}, true, "largest error: output box: max abs error 0.01,", ""},
		{"worst named", []Tensor{f32("prob", []int64{2}, 0.3, 0.75), f32("box", []int64{2}, 10, 29)}, false, "output box: max abs error 9", ""},
		{"others listed", []Tensor{f32("prob", []int64{2}, 0.3, 0.75), f32("box", []int64{2}, 10, 29)}, false, "also outside tolerance: prob", ""},
		{"shape first", []Tensor{f32("prob", []int64{1, 2}, 0.25, 0.75), f32("box", []int64{2}, 10, 90)}, false, "output prob: shape [1 2], expected [2]", ""},
		{"extra engine output ignored", []Tensor{f32("prob", []int64{2}, 0.25, 0.75), f32("box", []int64{2}, 10, 20), f32("aux", []int64{1}, 9)}, true, "outputs match", ""},
		{"missing output", []Tensor{f32("prob", []int64{2}, 0.25, 0.75)}, false, "", `sample output 1 is named "box", but the engine's outputs are "prob"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Check(tc.got, exp, 1e-3, 1e-3)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.OK != tc.ok || !strings.Contains(o.Message, tc.message) || len(o.Stats) != 2 {
				t.Fatalf("ok %v %q %+v", o.OK, o.Message, o.Stats)
			}
			if o.Stats[0].Output != "prob" || o.Stats[1].Output != "box" {
				t.Errorf("stats %+v", o.Stats)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	a, b := f32("a", []int64{1}, 1), f32("b", []int64{1}, 2)
	unnamed := f32("", []int64{1}, 3)
	for _, tc := range []struct {
		name    string
		samples []Tensor
		want    []string
		order   []float64
		err     string
	}{
		{"by name", []Tensor{b, a}, []string{"a", "b"}, []float64{1, 2}, ""},
		{"by position", []Tensor{unnamed, unnamed}, []string{"a", "b"}, []float64{3, 3}, ""},
		{"unknown name", []Tensor{a, f32("c", []int64{1}, 0)}, []string{"a", "b"}, nil, `named "c", but the engine's inputs are "a", "b"`},
		{"missing input", []Tensor{a}, []string{"a", "b"}, nil, `no sample for input "b"`},
		{"too many", []Tensor{unnamed, unnamed, unnamed}, []string{"a", "b"}, nil, "3 sample inputs, the engine has 2"},
		{"twice", []Tensor{unnamed, a}, []string{"a", "b"}, nil, `two samples for input "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Match(tc.samples, tc.want, "input")
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if g.Name != tc.want[i] || g.Float64s()[0] != tc.order[i] {
					t.Errorf("%d: %s %v", i, g.Name, g.Float64s())
				}
			}
		})
	}
}

func TestAs(t *testing.T) {
	i64 := FromFloat64s("ids", "int64", []int64{3}, []float64{0, -7, 1 << 20})
	got, err := i64.As("int32")
	if err != nil || got.DType != "int32" || len(got.Data) != 12 || got.Float64s()[1] != -7 || got.Float64s()[2] != 1<<20 {
		t.Fatalf("int64->int32: %+v %v", got, err)
	}
	if _, err := FromFloat64s("ids", "int64", []int64{1}, []float64{1 << 40}).As("int32"); err == nil || !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("overflow: %v", err)
	}
	h, err := f32("x", []int64{3}, 1, -0.5, 65504).As("float16")
	if err != nil || h.DType != "float16" || len(h.Data) != 6 || h.Float64s()[1] != -0.5 || h.Float64s()[2] != 65504 {
		t.Fatalf("float32->float16: %+v %v", h, err)
	}
	if _, err := f32("x", []int64{1}, 1).As("int32"); err == nil || !strings.Contains(err.Error(), "input x is float32, the engine wants int32") {
		t.Errorf("float->int: %v", err)
	}
	if same, _ := i64.As("int64"); &same.Data[0] != &i64.Data[0] {
		t.Errorf("same type copied")
	}
}

func TestHalf(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
		{5.960464477539063e-08, 0x0001}, {6.103515625e-05, 0x0400}, {0.333251953125, 0x3555},
	} {
		if got := Float32ToHalf(tc.f); got != tc.h {
			t.Errorf("Float32ToHalf(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
		if tc.f != 1e6 {
			if back := HalfToFloat32(tc.h); back != tc.f {
				t.Errorf("HalfToFloat32(%#04x) = %v, want %v", tc.h, back, tc.f)
			}
		}
	}
	if !math.IsNaN(float64(HalfToFloat32(Float32ToHalf(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
	// Every half value survives a round trip through float32.
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := Float32ToHalf(f); back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestSortSamples(t *testing.T) {
	got := SortSamples([]string{"m.test/input_10.pb", "m.test/input_2.pb", "m.test/extra.pb", "m.test/input_0.pb"})
	want := []string{"m.test/input_0.pb", "m.test/input_2.pb", "m.test/input_10.pb", "m.test/extra.pb"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%v", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "input_0.pb"), proto{}.name("x").dtype(1).dims(1).floats(true, 1), 0o644)
	os.WriteFile(filepath.Join(dir, "output_0.pb"), proto{}.name("y").dtype(1).dims(1).floats(true, 2), 0o644)
	os.WriteFile(filepath.Join(dir, "output_1.pb"), []byte{0xff}, 0o644)
	in, out, err := Load(protocol.Accuracy{Inputs: []string{filepath.Join(dir, "input_0.pb")}, Outputs: []string{filepath.Join(dir, "output_0.pb")}})
	if err != nil || len(in) != 1 || in[0].Name != "x" || len(out) != 1 || out[0].Name != "y" {
		t.Fatalf("%v %v %v", in, out, err)
	}
	_, _, err = Load(protocol.Accuracy{Inputs: []string{filepath.Join(dir, "input_0.pb")}, Outputs: []string{filepath.Join(dir, "output_1.pb")}})
	if err == nil || !strings.Contains(err.Error(), "output_1.pb") {
		t.Errorf("bad file: %v", err)
	}
	if _, _, err := Load(protocol.Accuracy{Inputs: []string{"a"}}); !errors.Is(err, ErrMismatch) {
		t.Errorf("no outputs: %v", err)
	}
	if _, _, err := Load(protocol.Accuracy{Inputs: []string{"a"}, Outputs: []string{"b"}, ATol: -1}); !errors.Is(err, ErrMismatch) {
		t.Errorf("negative atol: %v", err)
	}
}

// TestParseClaimedSizeCostsNothing: a tiny file whose dims claim 2^28
// floats is refused without allocating room for them.
func TestParseClaimedSizeCostsNothing(t *testing.T) {
	in := proto{}.dtype(1).dims(1<<28).floats(true, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse(in)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "float_data has 1 values") {
		t.Fatalf("error %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("Parse allocated %d bytes for a %d-byte file", got, len(in))
	}
}
