package onnx

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/bytesize"
)

// splitTestModel is a small model with what the splitter must handle: a
// value read by several later nodes, tied weights behind an Identity, a
// Constant, and an If whose branches read an outer value.
//
//	X ─MatMul(W1)─ a ─Add(B1)─ b ─Relu─ c ─MatMul(Identity(W2))─ d ─Mul(Constant 2)─ e
//	e ─If(cond: e | -e)─ f ─Add(c)─ Y
func splitTestModel() []byte {
	floats := func(vs ...float32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	w := make([]float32, 16)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	then := pb{}.str(2, "then").
		msg(1, nodePB("Identity", []string{"e"}, []string{"t_out"})).
		msg(12, valuePB("t_out", tensorTypePB(Float, shapePB("N", 4))))
	els := pb{}.str(2, "else").
		msg(1, nodePB("Neg", []string{"e"}, []string{"e_out"})).
		msg(12, valuePB("e_out", tensorTypePB(Float, shapePB("N", 4))))
	g := pb{}.str(2, "main").
		msg(1, pb(nodePB("MatMul", []string{"X", "W1"}, []string{"a"})).str(3, "mm1")).
		msg(1, pb(nodePB("Add", []string{"a", "B1"}, []string{"b"})).str(3, "add1")).
		msg(1, pb(nodePB("Relu", []string{"b"}, []string{"c"})).str(3, "relu")).
		msg(1, pb(nodePB("Identity", []string{"W2"}, []string{"W2t"})).str(3, "tied")).
		msg(1, pb(nodePB("MatMul", []string{"c", "W2t"}, []string{"d"})).str(3, "mm2")).
		msg(1, pb(nodePB("Constant", nil, []string{"two"},
			pb{}.str(1, "value").varint(20, uint64(AttrTensor)).msg(5, floatTensorPB("two", []int64{1}, floats(2))))).str(3, "const")).
		msg(1, pb(nodePB("Mul", []string{"d", "two"}, []string{"e"})).str(3, "mul")).
		msg(1, pb(nodePB("If", []string{"cond"}, []string{"f"},
			pb{}.str(1, "then_branch").varint(20, uint64(AttrGraph)).msg(6, then),
			pb{}.str(1, "else_branch").varint(20, uint64(AttrGraph)).msg(6, els))).str(3, "if")).
		msg(1, pb(nodePB("Add", []string{"f", "c"}, []string{"Y"})).str(3, "add2")).
		msg(5, floatTensorPB("W1", []int64{4, 4}, floats(w...))).
		msg(5, floatTensorPB("B1", []int64{4}, floats(1, -1, 0.5, 0))).
		msg(5, floatTensorPB("W2", []int64{4, 4}, floats(append(w[3:], w[:3]...)...))).
		msg(11, valuePB("X", tensorTypePB(Float, shapePB("N", 4)))).
		msg(11, valuePB("cond", tensorTypePB(Bool, shapePB()))).
		msg(12, valuePB("Y", tensorTypePB(Float, shapePB("N", 4)))).
		// The model's own type for a is used as is; b's, without a shape,
		// is replaced by the derived one.
		msg(13, valuePB("a", tensorTypePB(Float, shapePB("N", 4)))).
		msg(13, valuePB("b", tensorTypePB(Float, nil)))
	return pb{}.varint(1, 8).str(2, "test").msg(7, g).msg(8, opsetPB("", 13))
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkSplit checks the parts in dir against the manifest and the model:
// each part parses; its inputs and outputs are the manifest's; every node of
// the model that computes on its inputs is in exactly one part, byte for
// byte; each part input comes from the model or an earlier part's output.
func checkSplit(t *testing.T, model, dir string, man *Manifest) {
	t.Helper()
	orig, err := Open(model)
	if err != nil {
		t.Fatal(err)
	}
	origBytes, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatalf("%s: %v", ManifestFile, err)
	}
	if len(onDisk.Parts) != man.K || man.K != len(man.Parts) || len(man.Cuts) != man.K-1 {
		t.Fatalf("manifest: k=%d, %d parts returned, %d on disk, %d cuts", man.K, len(man.Parts), len(onDisk.Parts), len(man.Cuts))
	}
	nodeBytes := map[string]int{} // node bytes -> parts holding them
	for _, n := range orig.Graph.Nodes {
		nodeBytes[string(origBytes[n.Span.Off:n.Span.End()])] = 0
	}
	made := map[string]int{} // value -> part making it (non-constant nodes)
	for _, pi := range man.Parts {
		path := filepath.Join(dir, pi.File)
		part, err := Open(path)
		if err != nil {
			t.Fatalf("part %d: %v", pi.Index, err)
		}
		st, _ := os.Stat(path)
		if st.Size() != pi.FileBytes {
			t.Errorf("part %d: %d bytes on disk, manifest says %d", pi.Index, st.Size(), pi.FileBytes)
		}
		pb, _ := os.ReadFile(path)
		inits := map[string]bool{}
		var weights int64
		for _, ti := range part.Graph.Initializers {
			inits[ti.Name] = true
			weights += ti.Bytes()
			if ti.External != nil {
				t.Errorf("part %d: initializer %q still refers to external data", pi.Index, ti.Name)
			}
		}
		if weights != pi.WeightBytes {
			t.Errorf("part %d: %d weight bytes, manifest says %d", pi.Index, weights, pi.WeightBytes)
		}
		var ins, wantIns, outs, wantOuts []string
		for _, v := range part.Graph.Inputs {
			if !inits[v.Name] {
				ins = append(ins, v.Name+":"+v.DType())
			}
		}
		for _, in := range pi.Inputs {
			wantIns = append(wantIns, in.Name+":"+in.DType)
			if in.FromPart == 0 {
				if in.Source != "model input "+in.Name {
					t.Errorf("part %d input %s: source %q", pi.Index, in.Name, in.Source)
				}
				continue
			}
			if in.FromPart >= pi.Index || made[in.Name] != in.FromPart || in.Source != fmt.Sprintf("part %d output %s", in.FromPart, in.Name) {
				t.Errorf("part %d input %s: source %q, made by part %d", pi.Index, in.Name, in.Source, made[in.Name])
			}
			found := false
			for _, o := range man.Parts[in.FromPart-1].Outputs {
				found = found || o.Name == in.Name
			}
			if !found {
				t.Errorf("part %d input %s: not an output of part %d", pi.Index, in.Name, in.FromPart)
			}
		}
		modelOut := map[string]bool{}
		for _, o := range man.Outputs {
			modelOut[o.Name] = true
		}
		for _, v := range part.Graph.Outputs {
			outs = append(outs, v.Name+":"+v.DType())
			if _, ok := v.Shape(); !ok && !modelOut[v.Name] {
				t.Errorf("part %d output %s crosses a cut without a shape", pi.Index, v.Name)
			}
		}
		for _, o := range pi.Outputs {
			wantOuts = append(wantOuts, o.Name+":"+o.DType)
		}
		if !reflect.DeepEqual(ins, wantIns) || !reflect.DeepEqual(outs, wantOuts) {
			t.Errorf("part %d: inputs %v outputs %v; manifest: %v %v", pi.Index, ins, outs, wantIns, wantOuts)
		}
		nonConst := 0
		for _, n := range part.Graph.Nodes {
			key := string(pb[n.Span.Off:n.Span.End()])
			if _, ok := nodeBytes[key]; !ok {
				t.Errorf("part %d: node %s is not byte-identical to a node of the model", pi.Index, n.Name)
				continue
			}
			nodeBytes[key]++
			computes := false
			for _, in := range uses(n) {
				computes = computes || !inits[in] && !isConstOut(part.Graph, in)
			}
			if computes {
				nonConst++
				for _, o := range n.Outputs {
					if _, dup := made[o]; dup {
						t.Errorf("value %s made by parts %d and %d", o, made[o], pi.Index)
					}
					made[o] = pi.Index
				}
			}
		}
		if nonConst != pi.Nodes {
			t.Errorf("part %d: %d computing nodes, manifest says %d", pi.Index, nonConst, pi.Nodes)
		}
	}
	for _, n := range orig.Graph.Nodes {
		if nodeBytes[string(origBytes[n.Span.Off:n.Span.End()])] == 0 {
			t.Errorf("node %s of the model is in no part", nodeLabel(n, 0))
		}
	}
	for _, o := range man.Outputs {
		if made[o.Name] != o.Part && o.Part != man.K {
			t.Errorf("model output %s: manifest says part %d, made by part %d", o.Name, o.Part, made[o.Name])
		}
	}
}

// isConstOut reports whether v is made by a node of g that reads only
// initializers and constants.
func isConstOut(g *Graph, v string) bool {
	inits := map[string]bool{}
	for _, t := range g.Initializers {
		inits[t.Name] = true
	}
	consts := map[string]bool{}
	for _, n := range g.Nodes {
		c := len(n.Subgraphs()) == 0
		for _, in := range uses(n) {
			c = c && (inits[in] || consts[in])
		}
		for _, o := range n.Outputs {
			consts[o] = c
		}
	}
	return consts[v]
}

func TestSplitSmallModel(t *testing.T) {
	model := writeTemp(t, "small.onnx", splitTestModel())
	for _, k := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint("K=", k), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "parts")
			// The fsyncing variant writes the same files.
			man, err := SplitWith(model, k, dir, SplitOptions{Sync: k == 2})
			if err != nil {
				t.Fatal(err)
			}
			checkSplit(t, model, dir, man)
			// A dry run plans the same split and writes nothing.
			plan, err := PlanSplit(model, k)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan, man) {
				t.Errorf("PlanSplit differs from Split:\n%+v\n%+v", plan, man)
			}
			// Every part is non-empty and the cuts follow the order.
			total := 0
			for _, p := range man.Parts {
				if p.Nodes == 0 {
					t.Errorf("part %d is empty", p.Index)
				}
				total += p.Nodes
			}
			if total != 7 {
				t.Errorf("%d computing nodes in the parts, want 7", total)
			}
			// Derived types: a value crossing a cut has the type its
			// producer gives it.
			want := map[string]string{"a": "FLOAT[N 4]", "b": "FLOAT[N 4]", "c": "FLOAT[N 4]", "d": "FLOAT[N 4]", "e": "FLOAT[N 4]", "f": "FLOAT[N 4]"}
			for _, c := range man.Cuts {
				for _, x := range c.Tensors {
					got := fmt.Sprintf("%s%v", x.DType, x.Shape)
					if got != want[x.Name] {
						t.Errorf("cut %d: %s has type %s, want %s", c.After, x.Name, got, want[x.Name])
					}
					wantFrom := map[string]string{"a": "", "b": "inferred from Add", "c": "inferred from Relu",
						"d": "inferred from MatMul", "e": "inferred from Mul", "f": "inferred from If"}[x.Name]
					if x.TypeFrom != wantFrom {
						t.Errorf("cut %d: %s: type from %q, want %q", c.After, x.Name, x.TypeFrom, wantFrom)
					}
					if x.Exact || x.Bytes != 16 {
						t.Errorf("cut %d: %s: %d bytes exact=%v, want 16 (N counted as 1), not exact", c.After, x.Name, x.Bytes, x.Exact)
					}
				}
			}
		})
	}
	// With 7 parts every computing node is alone; the If reads e, made
	// by the part before, from its branches only: e must still be an
	// input of the If's part.
	dir := filepath.Join(t.TempDir(), "parts")
	man, err := Split(model, 7, dir)
	if err != nil {
		t.Fatal(err)
	}
	ifPart := man.Parts[5]
	if ifPart.FirstNode != "if" {
		t.Fatalf("part 6 starts with %s, want the If", ifPart.FirstNode)
	}
	var srcs []string
	for _, in := range ifPart.Inputs {
		srcs = append(srcs, in.Source)
	}
	if want := []string{"model input cond", "part 5 output e"}; !reflect.DeepEqual(srcs, want) {
		t.Errorf("If part inputs %v, want %v", srcs, want)
	}
	// c is made by part 3 and read by parts 4 and 7: it crosses cuts 3 to 6.
	for _, c := range man.Cuts {
		has := false
		for _, x := range c.Tensors {
			if x.Name == "c" {
				has = true
				if x.From != 3 || !reflect.DeepEqual(x.To, []int{4, 7}) {
					t.Errorf("c: from %d to %v", x.From, x.To)
				}
			}
		}
		if has != (c.After >= 3 && c.After <= 6) {
			t.Errorf("cut after part %d: c crossing = %v", c.After, has)
		}
	}
	var md strings.Builder
	if err := man.WriteMarkdown(&md, func(f string) string { return "small." + strings.TrimSuffix(f, ".onnx") + ".engine" }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 6 | small.part6.engine | 1 | 0 B | `cond` (model input cond), `e` (part 5 output e) | `f` |",
		"| after part 4 | `c`, `d` | at least 32 B (dynamic dims counted as 1) |",
		"`Y` from part 7;",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	// W2 reaches part 4 through the tied-weight Identity, recomputed there.
	if man.Parts[3].FirstNode != "mm2" || man.Parts[3].Initializers != 1 || man.Parts[3].WeightBytes != 64 {
		t.Errorf("part 4: %+v", man.Parts[3])
	}
	checkWithPython(t, dir)
}

func TestSplitRefuses(t *testing.T) {
	X := valuePB("X", tensorTypePB(Float, shapePB(1, 4)))
	Y := valuePB("Y", tensorTypePB(Float, shapePB(1, 4)))
	model := func(g pb) []byte { return pb{}.varint(1, 8).msg(7, g).msg(8, opsetPB("", 13)) }
	tests := []struct {
		name  string
		model []byte
		k     int
		want  string
	}{
		{"k=0", splitTestModel(), 0, "K must be at least 1"},
		{"too few nodes", splitTestModel(), 8, "has 7 nodes that compute on its inputs (9 nodes in all), too few for 8 parts"},
		{"untyped crossing value", model(pb{}.
			msg(1, pb(nodePB("Foo", []string{"X"}, []string{"u"})).str(7, "com.acme")).
			msg(1, nodePB("Relu", []string{"u"}, []string{"Y"})).msg(11, X).msg(12, Y)),
			2, `value "u" (made by Foo node Foo#0 in part 1, used by part 2) must cross a cut, but the model has no value_info for it and its tensor type cannot be derived`},
		{"output is an input", model(pb{}.
			msg(1, nodePB("Relu", []string{"X"}, []string{"Y"})).msg(11, X).msg(12, Y).msg(12, X)),
			1, `model output "X" is not made by a node`},
		{"cycle", model(pb{}.
			msg(1, nodePB("Relu", []string{"b"}, []string{"a"})).
			msg(1, nodePB("Relu", []string{"a"}, []string{"b"})).
			msg(1, nodePB("Add", []string{"X", "a"}, []string{"Y"})).msg(11, X).msg(12, Y)),
			2, "cycle"},
		{"undefined value", model(pb{}.
			msg(1, nodePB("Add", []string{"X", "zz"}, []string{"Y"})).msg(11, X).msg(12, Y)),
			1, `reads "zz", which no node, input or initializer defines`},
		{"external data in a node", model(pb{}.
			msg(1, nodePB("Constant", nil, []string{"c"}, pb{}.str(1, "value").varint(20, uint64(AttrTensor)).
				msg(5, pb{}.bytes(1, packed(1, 4)).varint(2, uint64(Float)).str(8, "c").varint(14, 1).
					msg(13, entryPB("location", "w.bin")).msg(13, entryPB("length", "16"))))).
			msg(1, nodePB("Add", []string{"X", "c"}, []string{"Y"})).msg(11, X).msg(12, Y)),
			1, "a node attribute or sub-graph holds a tensor with external data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.onnx")
			if err := os.WriteFile(path, tt.model, 0o644); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
			out := filepath.Join(dir, "out")
			_, err := Split(path, tt.k, out)
			if !errors.Is(err, ErrSplit) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Split = %v, want ErrSplit naming %s and saying %q", err, path, tt.want)
			}
			if _, err := os.Stat(filepath.Join(out, ManifestFile)); err == nil {
				t.Error("a refused split left a manifest")
			}
		})
	}
}

func TestDeriveShapes(t *testing.T) {
	ty := func(e DataType, dims ...any) *Type {
		t := &Type{Kind: TypeTensor, Elem: e, HasShape: true, Shape: []Dim{}}
		for _, d := range dims {
			switch d := d.(type) {
			case int:
				t.Shape = append(t.Shape, Dim{Kind: DimValue, Value: int64(d)})
			case string:
				t.Shape = append(t.Shape, Dim{Kind: DimParam, Param: d})
			default:
				t.Shape = append(t.Shape, Dim{})
			}
		}
		return t
	}
	ints := func(name string, v ...int64) *Attribute {
		return &Attribute{Name: name, Type: AttrInts, Ints: v, NInts: len(v)}
	}
	tests := []struct {
		name   string
		node   *Node
		in     []*Type
		consts map[int][]int64
		want   string
	}{
		{"conv stride 2 pad 3", &Node{OpType: "Conv", Attributes: []*Attribute{ints("kernel_shape", 7, 7), ints("strides", 2, 2), ints("pads", 3, 3, 3, 3)}},
			[]*Type{ty(Float, "N", 3, 224, 224), ty(Float, 64, 3, 7, 7)}, nil, "FLOAT[N 64 112 112]"},
		{"maxpool ceil", &Node{OpType: "MaxPool", Attributes: []*Attribute{ints("kernel_shape", 3, 3), ints("strides", 2, 2), {Name: "ceil_mode", I: 1}}},
			[]*Type{ty(Float, 1, 64, 112, 112)}, nil, "FLOAT[1 64 56 56]"},
		{"broadcast", &Node{OpType: "Add", Inputs: []string{"a", "b"}}, []*Type{ty(Float, "N", 1, 4), ty(Float, 3, 1)}, nil, "FLOAT[N 3 4]"},
		{"gemm transB", &Node{OpType: "Gemm", Attributes: []*Attribute{{Name: "transB", I: 1}}},
			[]*Type{ty(Float, 1, 25088), ty(Float, 4096, 25088)}, nil, "FLOAT[1 4096]"},
		{"matmul batch", &Node{OpType: "MatMul"}, []*Type{ty(Float, "B", 8, 5, 64), ty(Float, 64, 16)}, nil, "FLOAT[B 8 5 16]"},
		{"flatten", &Node{OpType: "Flatten"}, []*Type{ty(Float, 1, 512, 7, 7)}, nil, "FLOAT[1 25088]"},
		{"reshape const", &Node{OpType: "Reshape"}, []*Type{ty(Float, 2, 3, 4), ty(Int64, 2)}, map[int][]int64{1: {0, -1}}, "FLOAT[2 12]"},
		{"unsqueeze const axes", &Node{OpType: "Unsqueeze"}, []*Type{ty(Int64), ty(Int64, 1)}, map[int][]int64{1: {0}}, "INT64[1]"},
		{"shape", &Node{OpType: "Shape"}, []*Type{ty(Float, "N", 3, 8)}, nil, "INT64[3]"},
		{"gather scalar", &Node{OpType: "Gather"}, []*Type{ty(Int64, 3), ty(Int64)}, nil, "INT64[]"},
		{"cast", &Node{OpType: "Cast", Attributes: []*Attribute{{Name: "to", I: int64(Float16)}}}, []*Type{ty(Float, 2, 2)}, nil, "FLOAT16[2 2]"},
		{"equal", &Node{OpType: "Equal"}, []*Type{ty(Int64, 4), ty(Int64)}, nil, "BOOL[4]"},
		{"transpose", &Node{OpType: "Transpose", Attributes: []*Attribute{ints("perm", 1, 0, 2)}}, []*Type{ty(Float, "B", "S", 64)}, nil, "FLOAT[S B 64]"},
		{"concat", &Node{OpType: "Concat", Inputs: []string{"a", "b"}, Attributes: []*Attribute{{Name: "axis", I: 1}}},
			[]*Type{ty(Float, 1, 16, 7), ty(Float, 1, 32, 7)}, nil, "FLOAT[1 48 7]"},
		{"lstm", &Node{OpType: "LSTM", Attributes: []*Attribute{{Name: "hidden_size", I: 64}}}, []*Type{ty(Float, "seq", "batch", 32)}, nil, "FLOAT[seq 1 batch 64]"},
		{"slice keeps rank", &Node{OpType: "Slice"}, []*Type{ty(Float, 4, 5)}, nil, "FLOAT[? ?]"},
		{"unknown op", &Node{OpType: "Foo", Domain: "com.acme"}, []*Type{ty(Float, 4)}, nil, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := func(j int) *Type {
				if j < len(tt.in) {
					return tt.in[j]
				}
				return nil
			}
			cv := func(j int) ([]int64, bool) { v, ok := tt.consts[j]; return v, ok }
			outs := deriveNode(tt.node, in, cv)
			got := "<nil>"
			if len(outs) > 0 && outs[0] != nil {
				got = outs[0].String()
				if outs[0].HasShape {
					var ds []string
					for _, d := range outs[0].Shape {
						ds = append(ds, d.String())
					}
					got += "[" + strings.Join(ds, " ") + "]"
				}
			}
			if got != tt.want {
				t.Errorf("%s -> %s, want %s", tt.node.OpType, got, tt.want)
			}
		})
	}
}

// checkWithPython runs check_parts.py (onnx.checker with full_check, and
// the parts' inputs and outputs against the manifest) when python3-onnx is
// installed.
func checkWithPython(t *testing.T, dir string) {
	t.Helper()
	if testing.Short() {
		t.Log("-short: parts not checked with python3-onnx (no external tools)")
		return
	}
	if err := pythonONNX(); err != nil {
		t.Logf("python3-onnx unavailable (%s -c 'import onnx': %v), parts not checked with onnx.checker: apt-get install python3-onnx", refPython, err)
		return
	}
	out, err := exec.Command(refPython, "testdata/split/check_parts.py", dir).CombinedOutput()
	if err != nil {
		t.Errorf("check_parts.py %s: %v\n%s", dir, err, out)
	}
}

// ortDir is where onnxruntime-node is installed for the tests (never in the
// repository): $TRTD_ORT_DIR, default /var/cache/trtd-ort.
func ortDir() string {
	if d := os.Getenv("TRTD_ORT_DIR"); d != "" {
		return d
	}
	return "/var/cache/trtd-ort"
}

// ortVersion is the ONNX Runtime used as reference numerics.
const ortVersion = "1.30.0"

// needORT returns NODE_PATH for onnxruntime-node, installing it into
// ortDir with npm when missing; it skips the test when node, npm or the
// registry are unavailable.
func needORT(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs no external tools (node, ONNX Runtime)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed (apt-get install nodejs npm): split chains not run in ONNX Runtime")
	}
	dir := ortDir()
	mods := filepath.Join(dir, "node_modules")
	check := func() error {
		cmd := exec.Command("node", "-e", "require('onnxruntime-node')")
		cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
		return cmd.Run()
	}
	if check() == nil {
		return mods
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed (apt-get install npm): cannot install onnxruntime-node")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("cannot create %s for onnxruntime-node: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--ignore-scripts", "--no-audit", "--no-fund",
		"onnxruntime-node@"+ortVersion).CombinedOutput()
	if err != nil || check() != nil {
		t.Skipf("cannot install onnxruntime-node@%s into %s (no registry?): %v\n%s", ortVersion, dir, err, out)
	}
	return mods
}

type chainResult struct {
	K          int     `json:"k"`
	MaxAbsDiff float64 `json:"max_abs_diff"`
	Outputs    []struct {
		Name       string  `json:"name"`
		Shape      []int   `json:"shape"`
		MaxAbsDiff float64 `json:"max_abs_diff"`
	} `json:"outputs"`
}

// runChain runs the parts in dir in sequence in ONNX Runtime and compares
// them with the whole model (run_chain.js).
func runChain(t *testing.T, nodePath, dir, model string, args ...string) chainResult {
	t.Helper()
	cmd := exec.Command("node", append([]string{"testdata/split/run_chain.js", dir, model}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run_chain.js %s %s: %v\n%s", dir, model, err, stderr.String())
	}
	var r chainResult
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("run_chain.js: %v: %s", err, out)
	}
	return r
}

// splitFixture returns the path of a fixture model, exporting it when
// missing, or skips.
func splitFixture(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(fixturesDir(), name+".onnx")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if testing.Short() {
		t.Skipf("fixture %s missing and -short runs no external tools (PyTorch)", p)
	}
	if err := exec.Command(refPython, "-c", "import torch, torchvision, onnx").Run(); err != nil {
		t.Skipf("fixture %s missing and cannot be exported (%s -c 'import torch, torchvision, onnx': %v): apt-get install python3-torch python3-torchvision python3-onnx", p, refPython, err)
	}
	if out, err := exec.Command(refPython, "testdata/make_fixtures.py", fixturesDir(), "--only", name).CombinedOutput(); err != nil {
		t.Fatalf("make_fixtures.py --only %s: %v\n%s", name, err, out)
	}
	return p
}

// TestSplitFixtures splits real torch exports in 2 and 4, checks the parts
// with the reader and python3-onnx, and runs each chain in ONNX Runtime
// against the whole model on random inputs: the outputs must agree within
// 1e-5.
func TestSplitFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real models not split")
	}
	models := []string{"resnet18", "mobilenet_v2", "lstm", "transformer", "resnet18_external"}
	var nodePath string
	var ortErr string
	rows := []string{}
	for _, name := range models {
		for _, k := range []int{2, 4} {
			t.Run(fmt.Sprintf("%s/K=%d", name, k), func(t *testing.T) {
				model := splitFixture(t, name)
				dir := filepath.Join(t.TempDir(), "parts")
				man, err := Split(model, k, dir)
				if err != nil {
					t.Fatal(err)
				}
				checkSplit(t, model, dir, man)
				checkWithPython(t, dir)
				if nodePath == "" && ortErr == "" {
					ok := t.Run("ort", func(t *testing.T) { nodePath = needORT(t) })
					if !ok || nodePath == "" {
						ortErr = "onnxruntime-node unavailable"
					}
				}
				if nodePath == "" {
					t.Skip(ortErr)
				}
				r := runChain(t, nodePath, dir, model, "--dims", "batch=3,seq=5")
				if r.K != k || len(r.Outputs) != len(man.Outputs) {
					t.Fatalf("run_chain.js: %+v", r)
				}
				if !(r.MaxAbsDiff <= 1e-5) {
					t.Errorf("chain of %d parts differs from the whole model by %g", k, r.MaxAbsDiff)
				}
				var cut []string
				for _, c := range man.Cuts {
					cut = append(cut, bytesize.Format(c.Bytes))
				}
				rows = append(rows, fmt.Sprintf("| %s | %d | %g | %s |", name, k, r.MaxAbsDiff, strings.Join(cut, ", ")))
			})
		}
	}
	sort.Strings(rows)
	t.Logf("ONNX Runtime %s, chain vs whole model:\n| model | K | max abs diff | bytes crossing the cuts |\n|---|---|---|---|\n%s", ortVersion, strings.Join(rows, "\n"))
}

// TestSplitONNXTestdata splits every model of libonnx-testdata (1,072 real
// models, mostly one operator each) that has enough nodes into 2 and 3:
// each split must succeed or be refused with ErrSplit, each success must
// pass checkSplit and onnx.checker (where the model itself passes it), and
// each chain must match the whole model in ONNX Runtime (where the model
// itself runs there).
func TestSplitONNXTestdata(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: libonnx-testdata not split")
	}
	root := onnxTestdata()
	if _, err := os.Stat(root); err != nil {
		t.Skipf("libonnx-testdata not installed (%v): apt-get install libonnx-testdata", err)
	}
	var models []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && filepath.Ext(p) == ".onnx" {
			models = append(models, p)
		}
		return nil
	})
	type split struct{ dir, model string }
	var done []split
	refused := map[string]int{}
	unreadable := 0
	tmp := t.TempDir()
	for i, p := range models {
		if _, err := Open(p); err != nil {
			unreadable++ // the conformance test says whether that is right
			continue
		}
		for _, k := range []int{2, 3} {
			dir := filepath.Join(tmp, fmt.Sprintf("%d.%d", i, k))
			man, err := Split(p, k, dir)
			if err != nil {
				if !errors.Is(err, ErrSplit) {
					t.Errorf("%s: %v", p, err)
					continue
				}
				reason := err.Error()[strings.Index(err.Error(), ErrSplit.Error())+len(ErrSplit.Error())+2:]
				if strings.Contains(reason, "too few") {
					reason = "too few nodes"
				} else if j := strings.Index(reason, " must cross a cut"); j >= 0 {
					reason = "a crossing value without derivable type or rank"
				}
				refused[reason]++
				continue
			}
			checkSplit(t, p, dir, man)
			done = append(done, split{dir, p})
		}
	}
	var why []string
	for r, n := range refused {
		why = append(why, fmt.Sprintf("%d: %s", n, r))
	}
	sort.Strings(why)
	t.Logf("libonnx-testdata: %d models (%d unreadable); %d splits made, refused: %s", len(models), unreadable, len(done), strings.Join(why, "; "))
	if len(done) < 100 {
		t.Errorf("only %d splits made", len(done))
	}

	if err := exec.Command(refPython, "-c", "import onnx").Run(); err == nil {
		args := []string{"testdata/split/check_parts.py"}
		for _, s := range done {
			args = append(args, s.dir)
		}
		out, _ := exec.Command(refPython, args...).Output()
		badModels := map[string]bool{}
		checked, failed := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r struct {
				Dir   string `json:"dir"`
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}
			if json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			checked++
			if r.OK {
				continue
			}
			model := ""
			for _, s := range done {
				if s.dir == r.Dir {
					model = s.model
				}
			}
			if _, ok := badModels[model]; !ok {
				// A part may fail only where the model itself fails.
				cmd := exec.Command(refPython, "-c", "import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)", model)
				badModels[model] = cmd.Run() != nil
			}
			if !badModels[model] {
				failed++
				t.Errorf("%s (split of %s): onnx.checker: %s", r.Dir, model, r.Error)
			}
		}
		t.Logf("onnx.checker: %d parts checked, %d fail where the model passes", checked, failed)
	}

	nodePath := needORT(t)
	batch := filepath.Join(tmp, "batch.txt")
	var lines []string
	for _, s := range done {
		lines = append(lines, s.dir+"\t"+s.model)
	}
	if err := os.WriteFile(batch, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "testdata/split/run_chain.js", "--batch", batch)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run_chain.js --batch: %v\n%s", err, stderr.String())
	}
	ran, wholeFailed, other := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Dir        string  `json:"dir"`
			Model      string  `json:"model"`
			Error      string  `json:"error"`
			Whole      bool    `json:"whole_model_failed"`
			MaxAbsDiff float64 `json:"max_abs_diff"`
		}
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		switch {
		case r.Error != "" && r.Whole:
			wholeFailed++
		case r.Error != "" && strings.Contains(r.Error, "not supported here") || strings.Contains(r.Error, "unknown rank"):
			other++ // inputs run_chain.js cannot make (sequences, strings)
		case r.Error != "":
			t.Errorf("%s (split of %s): the whole model runs, the chain fails: %s", r.Dir, r.Model, r.Error)
		default:
			ran++
			if !(r.MaxAbsDiff <= 1e-5) {
				t.Errorf("%s (split of %s): chain differs from the whole model by %g", r.Dir, r.Model, r.MaxAbsDiff)
			}
		}
	}
	t.Logf("ONNX Runtime %s: %d chains match the whole model; %d models do not run in ONNX Runtime themselves; %d have inputs the runner cannot make", ortVersion, ran, wholeFailed, other)
	if ran < len(done)/2 {
		t.Errorf("only %d of %d chains ran", ran, len(done))
	}
}

func TestChooseCuts(t *testing.T) {
	ones := func(n int) []int64 {
		w := make([]int64, n)
		for i := range w {
			w[i] = 1
		}
		return w
	}
	cost := func(n int, cheap map[int]int64) []int64 {
		x := make([]int64, n)
		for i := range x {
			x[i] = 100
			if c, ok := cheap[i]; ok {
				x[i] = c
			}
		}
		return x
	}
	tests := []struct {
		name      string
		w, x      []int64
		k         int
		want      []int
		wantLimit int64
	}{
		{"the cheapest cut within the slack", ones(20), cost(20, map[int]int64{11: 1, 15: 0}), 2, []int{11}, 11},
		{"balance before narrowness", []int64{10, 10, 10, 10}, []int64{0, 1, 100, 1}, 2, []int{2}, 22},
		{"a heavy node alone", []int64{1, 1, 100, 1, 1}, cost(5, map[int]int64{2: 5, 3: 5}), 3, []int{2, 3}, 110},
		// Without the floor, {2,4,5} costs 1 but leaves a part of weight 0.
		{"no part under half the average when possible", []int64{5, 5, 5, 5, 0, 5}, cost(6, map[int]int64{2: 0, 3: 10, 4: 0, 5: 1}), 4, []int{2, 3, 4}, 11},
		{"the floor gives way when nothing else fits", []int64{1, 1, 100, 1, 1}, cost(5, map[int]int64{2: 5, 3: 5, 4: 5}), 4, []int{2, 3, 4}, 110},
		{"one part", ones(3), cost(3, nil), 1, nil, 3},
		{"as many parts as nodes", ones(4), cost(4, nil), 4, []int{1, 2, 3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, limit := chooseCuts(tt.w, tt.x, tt.k)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) || limit != tt.wantLimit {
				t.Errorf("chooseCuts = %v (limit %d), want %v (limit %d)", got, limit, tt.want, tt.wantLimit)
			}
		})
	}
}

// FuzzSplit: whatever the file, Split returns parts that read back, or a
// classified error; it never panics.
func FuzzSplit(f *testing.F) {
	f.Add(splitTestModel(), uint8(2))
	f.Add(splitTestModel(), uint8(7))
	f.Add(buildTestModel().file, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		dir := fastTempDir(t)
		path := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		parts := int(k%5) + 1
		man, err := Split(path, parts, filepath.Join(dir, "out"))
		if err != nil {
			if !errors.Is(err, ErrSplit) && !errors.Is(err, ErrNotONNX) && !errors.Is(err, ErrTruncated) &&
				!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrExternalData) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(man.Parts) != parts {
			t.Fatalf("%d parts, asked %d", len(man.Parts), parts)
		}
		for _, p := range man.Parts {
			if _, err := Open(filepath.Join(dir, "out", p.File)); err != nil {
				t.Fatalf("part %d does not read back: %v", p.Index, err)
			}
		}
	})
}

// fastTempDir is a temporary directory in memory (/dev/shm) where there is
// one, else t.TempDir(): Split writes each part durably, and on a disk
// those fsyncs held FuzzSplit to about 30 inputs a second.
func fastTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "trtd-fuzzsplit-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
