package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

func (d *decoder) graph(m *Model, g *Graph, end int64, depth int) error {
	const what = "GraphProto"
	if depth > maxDepth {
		return d.fail(d.pos, ErrTooLarge, "sub-graphs nested more than %d deep", maxDepth)
	}
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		if f.typ != protowire.BytesType {
			if err := d.skipChecked(what, f, end, 0); err != nil {
				return err
			}
			if err := d.keepField(&g.Fields, f); err != nil {
				return err
			}
			continue
		}
		span := Span{Off: f.start, Len: f.end() - f.start}
		switch f.num {
		case graphNode:
			if err := d.count(f.start, "node"); err != nil {
				return err
			}
			n := &Node{Span: span}
			if err := d.node(m, n, f.end(), depth); err != nil {
				return err
			}
			g.Nodes = append(g.Nodes, n)
		case graphName:
			if err := d.setStr(f, end, &g.Name, "graph name"); err != nil {
				return err
			}
		case graphInitializer:
			t, err := d.tensor(m, f)
			if err != nil {
				return err
			}
			g.Initializers = append(g.Initializers, t)
		case graphSparseInitializer:
			s, err := d.sparse(m, f)
			if err != nil {
				return err
			}
			g.SparseInitializers = append(g.SparseInitializers, s)
		case graphInput, graphOutput, graphValueInfo:
			if err := d.count(f.start, "value_info"); err != nil {
				return err
			}
			vi := &ValueInfo{Span: span}
			if err := d.valueInfo(vi, f.end(), depth); err != nil {
				return err
			}
			switch f.num {
			case graphInput:
				g.Inputs = append(g.Inputs, vi)
			case graphOutput:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfo = append(g.ValueInfo, vi)
			}
		default:
			if err := d.skipChecked(what, f, end, 0); err != nil {
				return err
			}
		}
		if err := d.keepField(&g.Fields, f); err != nil {
			return err
		}
	}
}

func (d *decoder) node(m *Model, n *Node, end int64, depth int) error {
	const what = "NodeProto"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		switch f.num {
		case nodeInput, nodeOutput:
			if err := d.count(f.start, "node input/output"); err != nil {
				return err
			}
			var s string
			if s, ok, err = d.str(f, end, maxString, "node input/output"); err != nil {
				return err
			}
			if ok {
				if f.num == nodeInput {
					n.Inputs = append(n.Inputs, s)
				} else {
					n.Outputs = append(n.Outputs, s)
				}
			}
		case nodeName:
			err = d.setStr(f, end, &n.Name, "node name")
		case nodeOpType:
			err = d.internStr(f, end, &n.OpType, "op_type")
		case nodeDomain:
			err = d.internStr(f, end, &n.Domain, "node domain")
		case nodeAttribute:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			if err := d.count(f.start, "attribute"); err != nil {
				return err
			}
			a := &Attribute{Span: Span{Off: f.start, Len: f.end() - f.start}}
			err = d.attribute(m, a, f.end(), depth)
			n.Attributes = append(n.Attributes, a)
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) attribute(m *Model, a *Attribute, end int64, depth int) error {
	const what = "AttributeProto"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		switch f.num {
		case attrName:
			err = d.internStr(f, end, &a.Name, "attribute name")
		case attrRefAttrName:
			err = d.setStr(f, end, &a.RefAttrName, "ref_attr_name")
		case attrType:
			var v uint64
			if v, ok, err = d.uint(f, end, "attribute type"); ok {
				a.Type = AttrType(int32(v))
			}
		case attrF:
			var v uint32
			if v, ok, err = d.fixed32(f, end, "attribute f"); ok {
				a.F = math.Float32frombits(v)
			}
		case attrI:
			var v uint64
			if v, ok, err = d.uint(f, end, "attribute i"); ok {
				a.I = int64(v)
			}
		case attrS:
			err = d.attrBytes(a, f, end)
		case attrT:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			a.T, err = d.tensor(m, f)
		case attrG, attrGraphs:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			g := &Graph{Span: Span{Off: f.data, Len: f.n}}
			err = d.graph(m, g, f.end(), depth+1)
			if f.num == attrG {
				a.G = g
			} else {
				a.Graphs = append(a.Graphs, g)
			}
		case attrTensors:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			var t *Tensor
			if t, err = d.tensor(m, f); err == nil {
				a.Tensors = append(a.Tensors, t)
			}
		case attrInts:
			err = d.int64s(f, end, "attribute ints", func(v int64) error {
				a.NInts++
				if len(a.Ints) < maxInlineList {
					a.Ints = append(a.Ints, v)
					return d.keep(f.start, 8, "attribute ints")
				}
				return nil
			})
		case attrFloats:
			if err = d.floats(f, end, a); err == nil {
				err = d.keep(f.start, 0, "attribute floats")
			}
		case attrStrings:
			err = d.attrString(a, f, end)
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

// attrBytes reads AttributeProto.s: its span always, its bytes when small.
func (d *decoder) attrBytes(a *Attribute, f field, end int64) error {
	if f.typ != protowire.BytesType {
		return d.skipChecked("AttributeProto", f, end, 0)
	}
	a.SSpan = Span{Off: f.data, Len: f.n}
	a.S = nil
	if f.n > maxInlineBytes {
		return nil
	}
	if err := d.keep(f.start, f.n, "attribute s"); err != nil {
		return err
	}
	b, err := d.bytes(int(f.n))
	if err == nil {
		a.S = append([]byte{}, b...)
	}
	return err
}

// attrString reads one of AttributeProto.strings: counted always, kept
// when small and within the list cap.
func (d *decoder) attrString(a *Attribute, f field, end int64) error {
	if f.typ != protowire.BytesType {
		return d.skipChecked("AttributeProto", f, end, 0)
	}
	a.NStrings++
	if len(a.Strings) >= maxInlineList || f.n > maxInlineBytes {
		return nil
	}
	if err := d.keep(f.start, 16+f.n, "attribute strings"); err != nil {
		return err
	}
	b, err := d.bytes(int(f.n))
	if err == nil {
		a.Strings = append(a.Strings, string(b))
	}
	return err
}

func (d *decoder) floats(f field, end int64, a *Attribute) error {
	add := func(v uint32) {
		a.NFloats++
		if len(a.Floats) < maxInlineList {
			a.Floats = append(a.Floats, math.Float32frombits(v))
			d.kept += 4
		}
	}
	switch f.typ {
	case protowire.Fixed32Type:
		v, _, err := d.fixed32(f, end, "attribute floats")
		if err == nil {
			add(v)
		}
		return err
	case protowire.BytesType:
		if f.n%4 != 0 {
			return d.fail(f.start, ErrNotONNX, "attribute floats: packed length %d is not a multiple of 4", f.n)
		}
		for d.pos < f.end() {
			b, err := d.avail(4)
			if err != nil {
				return err
			}
			if len(b) < 4 {
				return d.fail(d.pos, ErrTruncated, "attribute floats")
			}
			v, _ := protowire.ConsumeFixed32(b)
			d.pos += 4
			add(v)
		}
		return nil
	}
	return d.skip(f, end, "attribute floats")
}
