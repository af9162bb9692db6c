package testmodels

import "google.golang.org/protobuf/encoding/protowire"

// External is a minimal model whose one initializer lives in another file:
// Y = X + W, X and W of 4 floats, W's 16 bytes in the file loc beside it.
func External(loc string) []byte {
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	msg := func(n protowire.Number, parts ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), cat(parts...))
	}
	str := func(n protowire.Number, s string) []byte { return msg(n, []byte(s)) }
	num := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	// ValueInfoProto: name, type { tensor_type { elem_type FLOAT, shape [4] } }.
	value := func(field protowire.Number, name string) []byte {
		return msg(field, str(1, name), msg(2, msg(1, num(1, 1), msg(2, msg(1, num(1, 4))))))
	}
	w := msg(5, num(1, 4), num(2, 1), str(8, "W"),
		msg(13, str(1, "location"), str(2, loc)), msg(13, str(1, "length"), str(2, "16")), num(14, 1))
	node := msg(1, str(1, "X"), str(1, "W"), str(2, "Y"), str(3, "add"), str(4, "Add"))
	graph := msg(7, node, str(2, "g"), w, value(11, "X"), value(12, "Y"))
	return cat(num(1, 8), graph, msg(8, str(1, ""), num(2, 17)))
}
