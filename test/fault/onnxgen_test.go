package fault

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-built ONNX protobufs for hostile cases (field numbers from onnx.proto).

func pbVarint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func pbBytes(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbStr(num protowire.Number, s string) []byte { return pbBytes(num, []byte(s)) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// dim is a TensorShapeProto.Dimension with a value.
func dimV(v uint64) []byte { return pbBytes(1, pbVarint(1, v)) }

func valueInfo(name string, dims ...[]byte) []byte {
	shape := cat(dims...)
	tensorType := cat(pbVarint(1, 1), pbBytes(2, shape))
	return cat(pbStr(1, name), pbBytes(2, pbBytes(1, tensorType)))
}

func node(op string, in []string, out []string) []byte {
	var b []byte
	for _, i := range in {
		b = append(b, pbStr(1, i)...)
	}
	for _, o := range out {
		b = append(b, pbStr(2, o)...)
	}
	return cat(b, pbStr(3, op+"_0"), pbStr(4, op))
}

// onnxModel wraps graph fields in a ModelProto with IR 8 and opset 17.
func onnxModel(graphFields ...[]byte) []byte {
	opset := cat(pbStr(1, ""), pbVarint(2, 17))
	return cat(pbVarint(1, 8), pbStr(2, "trtd-fault"), pbBytes(7, cat(graphFields...)), pbBytes(8, opset))
}

// identityModel is a minimal valid model: Y = Identity(X), X of dims.
func identityModel(dims ...[]byte) []byte {
	return onnxModel(pbBytes(1, node("Identity", []string{"X"}, []string{"Y"})), pbStr(2, "g"),
		pbBytes(11, valueInfo("X", dims...)), pbBytes(12, valueInfo("Y", dims...)))
}

// externalModel has an initializer W whose data lives in the file loc.
func externalModel(loc string) []byte {
	ext := cat(pbBytes(13, cat(pbStr(1, "location"), pbStr(2, loc))), pbBytes(13, cat(pbStr(1, "length"), pbStr(2, "16"))))
	w := cat(pbVarint(1, 4), pbVarint(2, 1), pbStr(8, "W"), ext, pbVarint(14, 1))
	return onnxModel(pbBytes(1, node("Add", []string{"X", "W"}, []string{"Y"})), pbStr(2, "g"), pbBytes(5, w),
		pbBytes(11, valueInfo("X", dimV(4))), pbBytes(12, valueInfo("Y", dimV(4))))
}

// paddedModel is a valid model of about n bytes: an identity graph with an
// unused initializer of n bytes of raw data.
func paddedModel(n int) []byte {
	pad := cat(pbVarint(1, uint64(n/4)), pbVarint(2, 1), pbStr(8, "pad"), pbBytes(9, make([]byte, n/4*4)))
	return onnxModel(pbBytes(1, node("Identity", []string{"X"}, []string{"Y"})), pbStr(2, "g"), pbBytes(5, pad),
		pbBytes(11, valueInfo("X", dimV(4))), pbBytes(12, valueInfo("Y", dimV(4))))
}
