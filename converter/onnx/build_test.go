package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// pb builds protobuf messages by hand for tests.
type pb []byte

func (m pb) varint(num int, v uint64) pb {
	b := protowire.AppendTag(m, protowire.Number(num), protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (m pb) bytes(num int, v []byte) pb {
	b := protowire.AppendTag(m, protowire.Number(num), protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (m pb) str(num int, s string) pb { return m.bytes(num, []byte(s)) }

func (m pb) msg(num int, v pb) pb { return m.bytes(num, v) }

func (m pb) fixed32(num int, v uint32) pb {
	b := protowire.AppendTag(m, protowire.Number(num), protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func packed(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

func opsetPB(domain string, v int64) pb { return pb{}.str(1, domain).varint(2, uint64(v)) }

func entryPB(k, v string) pb { return pb{}.str(1, k).str(2, v) }

// dimPB: int64 -> dim_value, string -> dim_param, nil -> neither.
func shapePB(dims ...any) pb {
	s := pb{}
	for _, d := range dims {
		var dm pb
		switch d := d.(type) {
		case int:
			dm = dm.varint(1, uint64(d))
		case string:
			dm = dm.str(2, d)
		}
		s = s.msg(1, dm)
	}
	return s
}

func tensorTypePB(elem DataType, shape pb) pb {
	tt := pb{}.varint(1, uint64(elem))
	if shape != nil {
		tt = tt.msg(2, shape)
	}
	return pb{}.msg(1, tt)
}

func valuePB(name string, typ pb) pb {
	v := pb{}.str(1, name)
	if typ != nil {
		v = v.msg(2, typ)
	}
	return v
}

func floatTensorPB(name string, dims []int64, raw []byte) pb {
	t := pb{}.bytes(1, packed(dims...)).varint(2, uint64(Float)).str(8, name)
	return t.bytes(9, raw)
}

func attrIntsPB(name string, vs ...int64) pb {
	return pb{}.str(1, name).varint(20, uint64(AttrInts)).bytes(8, packed(vs...))
}

func nodePB(op string, in, out []string, attrs ...pb) pb {
	var n pb
	for _, s := range in {
		n = n.str(1, s)
	}
	for _, s := range out {
		n = n.str(2, s)
	}
	n = n.str(4, op)
	for _, a := range attrs {
		n = n.msg(5, a)
	}
	return n
}

func f32(f float32) uint32 { return math.Float32bits(f) }

// testModel is a small model with most of what the reader records.
type testModel struct {
	file    []byte
	raw     []byte // raw_data of initializer "W"
	graph   pb
	wantOut string
}

func buildTestModel() testModel {
	raw := make([]byte, 2*3*3*3*4)
	for i := range raw {
		raw[i] = byte(i)
	}
	sub := pb{}.str(2, "then").
		msg(1, nodePB("Identity", []string{"c"}, []string{"t_out"})).
		msg(5, floatTensorPB("c", []int64{1}, []byte{0, 0, 128, 63})).
		msg(12, valuePB("t_out", tensorTypePB(Float, shapePB(1))))
	g := pb{}.str(2, "main").
		msg(1, nodePB("Conv", []string{"X", "W", "B"}, []string{"Y"},
			attrIntsPB("kernel_shape", 3, 3),
			pb{}.str(1, "pads").varint(20, uint64(AttrInts)).varint(8, 1).varint(8, 1).varint(8, 1).varint(8, 1),
			pb{}.str(1, "auto_pad").varint(20, uint64(AttrString)).str(4, "NOTSET"),
			pb{}.str(1, "alpha").varint(20, uint64(AttrFloat)).fixed32(2, f32(0.5)))).
		msg(1, nodePB("Relu", []string{"Y"}, []string{"Z"})).
		msg(1, pb(nodePB("If", []string{"cond"}, []string{"out"},
			pb{}.str(1, "then_branch").varint(20, uint64(AttrGraph)).msg(6, sub))).str(7, "ai.onnx")).
		msg(1, pb(nodePB("FusedGelu", []string{"Z"}, []string{"G"})).str(7, "com.microsoft")).
		msg(5, floatTensorPB("W", []int64{2, 3, 3, 3}, raw)).
		msg(5, pb{}.bytes(1, packed(2)).varint(2, uint64(Float)).str(8, "B").bytes(4, make([]byte, 8))).
		msg(5, pb{}.bytes(1, packed(4)).varint(2, uint64(Float16)).str(8, "E").varint(14, 1).
			msg(13, entryPB("location", "weights.bin")).msg(13, entryPB("offset", "4096")).msg(13, entryPB("length", "8"))).
		msg(11, valuePB("X", tensorTypePB(Float, shapePB("N", 3, 224, nil)))).
		msg(11, valuePB("W", tensorTypePB(Float, shapePB(2, 3, 3, 3)))).
		msg(11, valuePB("cond", tensorTypePB(Bool, shapePB()))).
		msg(12, valuePB("Z", tensorTypePB(Float, nil))).
		msg(12, valuePB("G", nil)).
		msg(12, valuePB("S", pb{}.msg(4, pb{}.msg(1, tensorTypePB(Int64, shapePB(1)))))).
		msg(13, valuePB("Y", tensorTypePB(Float, shapePB("N", 2, 222, 222))))
	m := pb{}.varint(1, 8).str(2, "pytorch").str(3, "2.1.0").str(4, "org.test").varint(5, 3).
		str(6, "doc").
		msg(7, g).
		msg(8, opsetPB("", 17)).msg(8, opsetPB("com.microsoft", 1)).
		msg(14, entryPB("author", "me"))
	return testModel{file: m, raw: raw, graph: g}
}
