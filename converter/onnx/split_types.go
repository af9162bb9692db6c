package onnx

import (
	"encoding/binary"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Type derivation for the values a split cut crosses. A part's inputs
// and outputs need a tensor type; most exported models declare types only
// for the graph's inputs and outputs (torch writes no value_info), so the
// splitter derives the others from their producers, in Go, without running
// a shape-inference library: the element type by op rules that cover the
// ONNX operator set, and the shape (or at least the rank) for the common
// ops whose output shape follows from their inputs' shapes and attributes
// alone. What cannot be derived stays unknown (a dim with neither value nor
// name, or an unknown rank); a crossing value with no derivable element type
// makes Split refuse.

// Ops whose output 0 has the element type and shape of input 0.
var sameAsInput0 = setOf("Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BatchNormalization",
	"Ceil", "Celu", "Clip", "Cos", "Cosh", "CumSum", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu",
	"HardSigmoid", "HardSwish", "Hardmax", "Identity", "InstanceNormalization", "LayerNormalization",
	"GroupNormalization", "LeakyRelu", "Log", "LogSoftmax", "LpNormalization", "LRN", "Mish", "Neg",
	"Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax",
	"Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Trilu", "ReverseSequence",
	"MeanVarianceNormalization", "ScatterND", "ScatterElements", "Scatter", "Swish", "BitwiseNot")

// Broadcasting ops: element type of input 0, shape broadcast over all inputs.
var broadcastOps = setOf("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean",
	"PRelu", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor")

// Broadcasting ops with a BOOL result.
var boolOps = setOf("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor")

// Ops whose outputs have input 0's element type, shape not derived here.
var elemOfInput0 = setOf("AveragePool", "Compress", "ConvTranspose", "DepthToSpace", "Einsum",
	"Expand", "GatherElements", "GatherND", "GlobalLpPool", "LpPool", "MaxRoiPool", "MaxUnpool",
	"Pad", "Range", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
	"ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Resize", "RoiAlign", "Slice",
	"SpaceToDepth", "Split", "Tile", "Upsample", "Det", "GRU", "LSTM", "RNN", "TopK", "Unique",
	"CenterCropPad", "Col2Im", "GridSample", "AffineGrid", "DFT", "STFT", "Flatten", "Reshape",
	"Squeeze", "Unsqueeze", "Gather", "Transpose", "Concat", "Gemm", "MatMul", "Conv", "MaxPool",
	"GlobalAveragePool", "GlobalMaxPool", "RandomNormalLike", "RandomUniformLike", "EyeLike")

// Ops with INT64 results.
var int64Ops = setOf("Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression")

func setOf(names ...string) map[string]bool {
	s := make(map[string]bool, len(names))
	for _, n := range names {
		s[n] = true
	}
	return s
}

// inferTypes returns the type of every value of the main graph: declared
// ones as the model declares them, the others derived.
func inferTypes(p *splitPlan) map[string]*typeInfo {
	g := p.g
	types := map[string]*typeInfo{}
	declare := func(vs []*ValueInfo) {
		for _, v := range vs {
			if v.Type != nil && v.Type.Kind != TypeNone {
				types[v.Name] = &typeInfo{t: v.Type, vi: v}
			}
		}
	}
	// Small integer constants (shapes, axes) are read from the file:
	// Reshape, Squeeze and Unsqueeze need them to know their results' rank.
	consts := map[string][]int64{}
	for _, t := range g.Initializers {
		types[t.Name] = &typeInfo{t: tensorType(t), from: "initializer"}
		if v, ok := readInts(p.r, t); ok {
			consts[t.Name] = v
		}
	}
	declare(g.ValueInfo)
	declare(g.Outputs)
	declare(g.Inputs)
	for _, i := range p.all {
		nd := g.Nodes[i]
		recordConstant(p, nd, consts)
		if !needsTypes(nd, types) {
			continue
		}
		in := func(j int) *Type {
			if j >= len(nd.Inputs) || nd.Inputs[j] == "" {
				return nil
			}
			if ti := types[nd.Inputs[j]]; ti != nil {
				return ti.t
			}
			return nil
		}
		cv := func(j int) ([]int64, bool) {
			if j >= len(nd.Inputs) || nd.Inputs[j] == "" {
				return nil, false
			}
			v, ok := consts[nd.Inputs[j]]
			return v, ok
		}
		applyDerived(nd, deriveNode(nd, in, cv), types)
	}
	return types
}

// weakType: a declared type that a derived one may improve on (a tensor of
// unknown rank, which cannot be a part's input).
func weakType(ti *typeInfo) bool {
	return ti == nil || (ti.t.Kind == TypeTensor && (!ti.t.HasShape || ti.t.Elem == Undefined))
}

// recordConstant remembers the small integer value of a Constant node.
func recordConstant(p *splitPlan, nd *Node, consts map[string][]int64) {
	if nd.OpType != "Constant" || len(nd.Outputs) != 1 || (nd.Domain != "" && nd.Domain != "ai.onnx") {
		return
	}
	if a := nd.Attr("value"); a != nil && a.T != nil {
		if v, ok := readInts(p.r, a.T); ok {
			consts[nd.Outputs[0]] = v
		}
	} else if a := nd.Attr("value_ints"); a != nil && a.NInts == len(a.Ints) {
		consts[nd.Outputs[0]] = a.Ints
	}
}

// needsTypes reports whether an output of nd lacks a good type.
func needsTypes(nd *Node, types map[string]*typeInfo) bool {
	for _, o := range nd.Outputs {
		if o != "" && weakType(types[o]) {
			return true
		}
	}
	return false
}

// applyDerived records the derived output types that improve on what the
// model declares.
func applyDerived(nd *Node, outs []*Type, types map[string]*typeInfo) {
	from := "inferred from " + nd.OpType
	if nd.OpType == "Constant" {
		from = "Constant"
	}
	for j, o := range nd.Outputs {
		if o == "" || !weakType(types[o]) || j >= len(outs) || outs[j] == nil {
			continue
		}
		if old := types[o]; old != nil && (!outs[j].HasShape || outs[j].Kind != TypeTensor ||
			(old.t.Elem != Undefined && old.t.Elem != outs[j].Elem)) {
			continue // no better than what the model declares
		}
		types[o] = &typeInfo{t: outs[j], from: from}
	}
}

func tensorType(t *Tensor) *Type {
	ty := &Type{Kind: TypeTensor, Elem: t.DataType, HasShape: true, Shape: make([]Dim, len(t.Dims))}
	for i, d := range t.Dims {
		ty.Shape[i] = Dim{Kind: DimValue, Value: d}
	}
	return ty
}

func elemOnly(e DataType) *Type { return &Type{Kind: TypeTensor, Elem: e} }

func withShape(e DataType, dims []Dim) *Type {
	return &Type{Kind: TypeTensor, Elem: e, HasShape: true, Shape: dims}
}

func unknownDims(r int) []Dim { return make([]Dim, r) }

func isTensor(t *Type) bool { return t != nil && t.Kind == TypeTensor && t.Elem != Undefined }

func nodeInt(nd *Node, name string, def int64) int64 {
	if a := nd.Attr(name); a != nil {
		return a.I
	}
	return def
}

func nodeInts(nd *Node, name string) ([]int64, bool) {
	if a := nd.Attr(name); a != nil && a.NInts == len(a.Ints) {
		return a.Ints, true
	}
	return nil, false
}

// typeRules give the output types of ops whose outputs do not simply
// follow input 0.
var typeRules = map[string]func(nd *Node, x *Type, in func(int) *Type) []*Type{
	"Constant":              typesConstant,
	"Cast":                  typesCast,
	"CastLike":              typesCastLike,
	"ConstantOfShape":       typesConstantOfShape,
	"RandomNormal":          typesRandomNormal,
	"RandomUniform":         typesRandomNormal,
	"QuantizeLinear":        typesQuantizeLinear,
	"DequantizeLinear":      typesDequantizeLinear,
	"DynamicQuantizeLinear": typesDynamicQuantizeLinear,
	"RandomNormalLike":      typesRandomNormalLike,
	"RandomUniformLike":     typesRandomNormalLike,
	"EyeLike":               typesRandomNormalLike,
	"SequenceLength":        typesSequenceLength,
	"MatMulInteger":         typesMatMulInteger,
	"ConvInteger":           typesMatMulInteger,
	"IsNaN":                 typesIsNaN,
	"IsInf":                 typesIsNaN,
	"Not":                   typesIsNaN,
	"OneHot":                typesOneHot,
	"Where":                 typesWhere,
	"If":                    typesIf,
	"Loop":                  typesLoop,
	"Scan":                  typesLoop,
}

// deriveNode returns the types of nd's outputs (nil where unknown).
func deriveNode(nd *Node, in func(int) *Type, cv func(int) ([]int64, bool)) []*Type {
	if nd.Domain != "" && nd.Domain != "ai.onnx" {
		return nil
	}
	x := in(0)
	op := nd.OpType
	if rule := typeRules[op]; rule != nil {
		return rule(nd, x, in)
	}
	switch {
	case int64Ops[op]:
		return []*Type{int64Shape(nd, x)}
	case boolOps[op]:
		return []*Type{broadcast(Bool, in(0), in(1))}
	}
	if !isTensor(x) {
		return nil
	}
	e := x.Elem
	switch {
	case sameAsInput0[op]:
		outs := []*Type{x}
		switch op {
		case "Dropout":
			outs = append(outs, shaped(Bool, x))
		case "LayerNormalization":
			outs = append(outs, elemOnly(Float), elemOnly(Float))
		case "BatchNormalization":
			for range 4 {
				outs = append(outs, elemOnly(e))
			}
		}
		return outs
	case broadcastOps[op]:
		var ins []*Type
		for j := range nd.Inputs {
			ins = append(ins, in(j))
		}
		return []*Type{broadcast(e, ins...)}
	case op == "LSTM" || op == "GRU" || op == "RNN":
		return rnnTypes(nd, e, x)
	case elemOfInput0[op]:
		t := shapeOf(nd, e, x, in, cv)
		outs := []*Type{t}
		for j := 1; j < len(nd.Outputs); j++ {
			switch op {
			case "TopK", "MaxPool": // indices, shaped like the values
				outs = append(outs, shaped(Int64, t))
			case "Unique": // indices, inverse_indices, counts
				outs = append(outs, withShape(Int64, unknownDims(1)))
			case "Split":
				outs = append(outs, t)
			default:
				outs = append(outs, elemOnly(e))
			}
		}
		return outs
	}
	return nil
}

func typesConstant(nd *Node, x *Type, in func(int) *Type) []*Type {
	return []*Type{constantType(nd)}
}

func typesCast(nd *Node, x *Type, in func(int) *Type) []*Type {
	to := DataType(nodeInt(nd, "to", 0))
	if to == Undefined {
		return nil
	}
	if x != nil && x.Kind == TypeTensor && x.HasShape {
		return []*Type{withShape(to, x.Shape)}
	}
	return []*Type{elemOnly(to)}
}

func typesCastLike(nd *Node, x *Type, in func(int) *Type) []*Type {
	if t := in(1); isTensor(t) {
		if x != nil && x.HasShape {
			return []*Type{withShape(t.Elem, x.Shape)}
		}
		return []*Type{elemOnly(t.Elem)}
	}
	return nil
}

func typesConstantOfShape(nd *Node, x *Type, in func(int) *Type) []*Type {
	e := Float
	if a := nd.Attr("value"); a != nil && a.T != nil {
		e = a.T.DataType
	}
	if s := in(0); s != nil && s.HasShape && len(s.Shape) == 1 && s.Shape[0].Fixed() {
		return []*Type{withShape(e, unknownDims(int(s.Shape[0].Value)))}
	}
	return []*Type{elemOnly(e)}
}

func typesRandomNormal(nd *Node, x *Type, in func(int) *Type) []*Type {
	e := DataType(nodeInt(nd, "dtype", int64(Float)))
	if s, ok := nodeInts(nd, "shape"); ok {
		return []*Type{withShape(e, fixedDims(s))}
	}
	return []*Type{elemOnly(e)}
}

func typesQuantizeLinear(nd *Node, x *Type, in func(int) *Type) []*Type {
	if z := in(2); isTensor(z) {
		return []*Type{shaped(z.Elem, x)}
	}
	return []*Type{shaped(Uint8, x)}
}

func typesDequantizeLinear(nd *Node, x *Type, in func(int) *Type) []*Type {
	if s := in(1); isTensor(s) {
		return []*Type{shaped(s.Elem, x)}
	}
	return []*Type{shaped(Float, x)}
}

func typesDynamicQuantizeLinear(nd *Node, x *Type, in func(int) *Type) []*Type {
	return []*Type{shaped(Uint8, x), withShape(Float, nil), withShape(Uint8, nil)}
}

func typesRandomNormalLike(nd *Node, x *Type, in func(int) *Type) []*Type {
	if !isTensor(x) {
		return nil
	}
	return []*Type{shaped(DataType(nodeInt(nd, "dtype", int64(x.Elem))), x)}
}

func typesSequenceLength(nd *Node, x *Type, in func(int) *Type) []*Type {
	return []*Type{withShape(Int64, []Dim{})}
}

func typesMatMulInteger(nd *Node, x *Type, in func(int) *Type) []*Type {
	return []*Type{elemOnly(Int32)}
}

func typesIsNaN(nd *Node, x *Type, in func(int) *Type) []*Type {
	return []*Type{shaped(Bool, x)}
}

func typesOneHot(nd *Node, x *Type, in func(int) *Type) []*Type {
	if v := in(2); isTensor(v) {
		return []*Type{elemOnly(v.Elem)}
	}
	return nil
}

func typesWhere(nd *Node, x *Type, in func(int) *Type) []*Type {
	t := in(1)
	if !isTensor(t) {
		return nil
	}
	return []*Type{broadcast(t.Elem, in(0), in(1), in(2))}
}

func typesIf(nd *Node, x *Type, in func(int) *Type) []*Type {
	var outs []*Type
	if a := nd.Attr("then_branch"); a != nil && a.G != nil {
		for _, o := range a.G.Outputs {
			outs = append(outs, o.Type)
		}
	}
	return outs
}

func typesLoop(nd *Node, x *Type, in func(int) *Type) []*Type {
	// Outputs follow the body's outputs (Loop: after the condition);
	// scan outputs gain a dim, so keep the element type only.
	a := nd.Attr("body")
	if a == nil || a.G == nil {
		return nil
	}
	bo := a.G.Outputs
	if nd.OpType == "Loop" && len(bo) > 0 {
		bo = bo[1:]
	}
	var outs []*Type
	for _, o := range bo {
		if isTensor(o.Type) {
			outs = append(outs, elemOnly(o.Type.Elem))
		} else {
			outs = append(outs, nil)
		}
	}
	return outs
}

func fixedDims(v []int64) []Dim {
	d := make([]Dim, len(v))
	for i, x := range v {
		d[i] = Dim{Kind: DimValue, Value: x}
	}
	return d
}

// shaped returns element type e with x's shape (when x has one).
func shaped(e DataType, x *Type) *Type {
	if x != nil && x.Kind == TypeTensor && x.HasShape {
		return withShape(e, x.Shape)
	}
	return elemOnly(e)
}

func constantType(nd *Node) *Type {
	for _, a := range nd.Attributes {
		switch a.Name {
		case "value":
			if a.T != nil {
				return tensorType(a.T)
			}
		case "value_float":
			return withShape(Float, []Dim{})
		case "value_int":
			return withShape(Int64, []Dim{})
		case "value_floats":
			return withShape(Float, fixedDims([]int64{int64(a.NFloats)}))
		case "value_ints":
			return withShape(Int64, fixedDims([]int64{int64(a.NInts)}))
		case "value_string":
			return withShape(String, []Dim{})
		case "value_strings":
			return withShape(String, fixedDims([]int64{int64(a.NStrings)}))
		}
	}
	return nil
}

func int64Shape(nd *Node, x *Type) *Type {
	switch nd.OpType {
	case "Shape":
		if x != nil && x.HasShape {
			r := int64(len(x.Shape))
			start, end := nodeInt(nd, "start", 0), nodeInt(nd, "end", r)
			if start < 0 {
				start += r
			}
			if end < 0 {
				end += r
			}
			start, end = max(0, min(start, r)), max(0, min(end, r))
			return withShape(Int64, fixedDims([]int64{max(0, end-start)}))
		}
		return withShape(Int64, unknownDims(1))
	case "Size":
		return withShape(Int64, []Dim{})
	case "NonZero":
		if x != nil && x.HasShape {
			return withShape(Int64, []Dim{{Kind: DimValue, Value: int64(len(x.Shape))}, {}})
		}
		return withShape(Int64, unknownDims(2))
	case "NonMaxSuppression":
		return withShape(Int64, []Dim{{}, {Kind: DimValue, Value: 3}})
	case "ArgMax", "ArgMin":
		if x != nil && x.HasShape {
			r := len(x.Shape)
			axis := int(nodeInt(nd, "axis", 0))
			if axis < 0 {
				axis += r
			}
			if axis < 0 || axis >= r {
				return elemOnly(Int64)
			}
			var d []Dim
			for i, v := range x.Shape {
				if i == axis {
					if nodeInt(nd, "keepdims", 1) != 0 {
						d = append(d, Dim{Kind: DimValue, Value: 1})
					}
					continue
				}
				d = append(d, v)
			}
			return withShape(Int64, d)
		}
	}
	return elemOnly(Int64)
}

// rnnTypes derives LSTM, GRU and RNN outputs: Y [seq, dirs, batch, hidden]
// and Y_h (Y_c) [dirs, batch, hidden], for layout 0 (1: batch first).
func rnnTypes(nd *Node, e DataType, x *Type) []*Type {
	hidden := nodeInt(nd, "hidden_size", 0)
	dirs := int64(1)
	if a := nd.Attr("direction"); a != nil && string(a.S) == "bidirectional" {
		dirs = 2
	}
	outs := []*Type{elemOnly(e), elemOnly(e), elemOnly(e)}
	if x == nil || !x.HasShape || len(x.Shape) != 3 || hidden <= 0 {
		return outs
	}
	seq, batch := x.Shape[0], x.Shape[1]
	h, d := Dim{Kind: DimValue, Value: hidden}, Dim{Kind: DimValue, Value: dirs}
	if nodeInt(nd, "layout", 0) == 0 {
		outs[0] = withShape(e, []Dim{seq, d, batch, h})
		outs[1] = withShape(e, []Dim{d, batch, h})
	} else {
		batch, seq = x.Shape[0], x.Shape[1]
		outs[0] = withShape(e, []Dim{batch, seq, d, h})
		outs[1] = withShape(e, []Dim{batch, d, h})
	}
	outs[2] = outs[1]
	return outs
}

// maxConstInts caps the integer constants read for shape derivation.
const maxConstInts = 64

// maxConstTensor caps the bytes of a TensorProto read for its integer
// constants.
const maxConstTensor = 64 << 10

// readInts reads a small embedded INT64 or INT32 tensor's values with the
// one TensorProto decoder (ParseTensor).
func readInts(r io.ReaderAt, t *Tensor) ([]int64, bool) {
	if r == nil || t == nil || t.Location != Embedded || (t.DataType != Int64 && t.DataType != Int32) {
		return nil, false
	}
	n := t.Elements()
	if n > maxConstInts || len(t.Dims) > 1 || t.Data.Len > 16*maxConstInts || t.Span.Len > maxConstTensor {
		return nil, false
	}
	vals, ok := tensorValues(r, t)
	if !ok {
		return nil, false
	}
	// Non-empty raw_data wins over the typed field, as in TensorRT's ONNX
	// parser (onnx-tensorrt WeightsContext.cpp convertOnnxWeights:
	// "if (onnxTensor.raw_data().size() > 0)", 10.0-GA :361); else the
	// type's own field: int64_data for INT64, int32_data for INT32.
	var v []int64
	switch {
	case vals.HasRaw && len(vals.Raw) > 0:
		size := int64(8)
		if t.DataType == Int32 {
			size = 4
		}
		b := vals.Raw
		if int64(len(b)) != n*size {
			return nil, false
		}
		for i := int64(0); i < n; i++ {
			if size == 8 {
				v = append(v, int64(binary.LittleEndian.Uint64(b[i*8:])))
			} else {
				v = append(v, int64(int32(binary.LittleEndian.Uint32(b[i*4:]))))
			}
		}
	default:
		v = vals.Int64s
		if t.DataType == Int32 {
			v = vals.Int32s
		}
		if int64(len(v)) != n {
			return nil, false
		}
	}
	return v, true
}

// tensorValues decodes the TensorProto field that t was read from (Span:
// tag, length, message) and collects its values.
func tensorValues(r io.ReaderAt, t *Tensor) (*TensorValues, bool) {
	b := make([]byte, t.Span.Len)
	if _, err := r.ReadAt(b, t.Span.Off); err != nil {
		return nil, false
	}
	_, _, k := protowire.ConsumeTag(b)
	if k < 0 {
		return nil, false
	}
	msg, m := protowire.ConsumeBytes(b[k:])
	if m < 0 {
		return nil, false
	}
	_, vals, err := ParseTensor(msg)
	return vals, err == nil
}
