package selftest

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// ModelInputs is the selftest model's input and output length.
const ModelInputs = 64

// Model returns the selftest's ONNX model: y = Relu(x + c) on float
// [1, 64], c an initializer (-1.0, -0.9, ...), opset 13, no external data.
// Built here, not read from a file, so trtd carries it and nothing of the
// user's is touched; Add and Relu build in well under a second on any
// TensorRT and on the test double. The bytes are the same on every call.
func Model() []byte {
	var c []float32
	for i := 0; i < ModelInputs; i++ {
		c = append(c, float32(i-10)/10)
	}
	var g []byte
	g = msg(g, 1, node("add", "Add", []string{"x", "c"}, "s"))
	g = msg(g, 1, node("relu", "Relu", []string{"s"}, "y"))
	g = protowire.AppendTag(g, 2, protowire.BytesType)
	g = protowire.AppendString(g, "trtd_selftest")
	g = msg(g, 5, tensor("c", c))
	g = msg(g, 11, valueInfo("x"))
	g = msg(g, 12, valueInfo("y"))

	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType) // ir_version
	m = protowire.AppendVarint(m, 8)
	m = protowire.AppendTag(m, 2, protowire.BytesType) // producer_name
	m = protowire.AppendString(m, "trtd selftest")
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // version (domain "" = ai.onnx)
	opset = protowire.AppendVarint(opset, 13)
	m = msg(m, 7, g)     // graph
	m = msg(m, 8, opset) // opset_import
	return m
}

func msg(b []byte, field protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

// node is a NodeProto: input 1, output 2, name 3, op_type 4.
func node(name, op string, in []string, out string) []byte {
	var n []byte
	for _, s := range in {
		n = protowire.AppendTag(n, 1, protowire.BytesType)
		n = protowire.AppendString(n, s)
	}
	n = protowire.AppendTag(n, 2, protowire.BytesType)
	n = protowire.AppendString(n, out)
	n = protowire.AppendTag(n, 3, protowire.BytesType)
	n = protowire.AppendString(n, name)
	n = protowire.AppendTag(n, 4, protowire.BytesType)
	return protowire.AppendString(n, op)
}

// tensor is a TensorProto of FLOAT [1, len(v)]: dims 1, data_type 2,
// name 8, raw_data 9 (little-endian).
func tensor(name string, v []float32) []byte {
	var t []byte
	for _, d := range []uint64{1, uint64(len(v))} {
		t = protowire.AppendTag(t, 1, protowire.VarintType)
		t = protowire.AppendVarint(t, d)
	}
	t = protowire.AppendTag(t, 2, protowire.VarintType)
	t = protowire.AppendVarint(t, 1) // FLOAT
	t = protowire.AppendTag(t, 8, protowire.BytesType)
	t = protowire.AppendString(t, name)
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// valueInfo is a ValueInfoProto (name 1, type 2) of FLOAT [1, 64]:
// TypeProto.tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1 } } }.
func valueInfo(name string) []byte {
	var shape []byte
	for _, d := range []uint64{1, ModelInputs} {
		var dim []byte
		dim = protowire.AppendTag(dim, 1, protowire.VarintType)
		dim = protowire.AppendVarint(dim, d)
		shape = msg(shape, 1, dim)
	}
	var tt []byte
	tt = protowire.AppendTag(tt, 1, protowire.VarintType)
	tt = protowire.AppendVarint(tt, 1) // FLOAT
	tt = msg(tt, 2, shape)
	var v []byte
	v = protowire.AppendTag(v, 1, protowire.BytesType)
	v = protowire.AppendString(v, name)
	return msg(v, 2, msg(nil, 1, tt))
}
