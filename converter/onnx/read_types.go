package onnx

import (
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

func (d *decoder) valueInfo(vi *ValueInfo, end int64, depth int) error {
	const what = "ValueInfoProto"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		switch f.num {
		case valueInfoName:
			err = d.setStr(f, end, &vi.Name, "value name")
		case valueInfoType:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			if vi.Type == nil {
				vi.Type = &Type{}
			}
			err = d.typeProto(vi.Type, f.end(), depth+1)
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

// typeProto reads a TypeProto into t (merging, as protobuf does when a
// field repeats; a different member of the value oneof replaces).
func (d *decoder) typeProto(t *Type, end int64, depth int) error {
	const what = "TypeProto"
	if depth > maxDepth {
		return d.fail(d.pos, ErrTooLarge, "types nested more than %d deep", maxDepth)
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
			d.after(f)
			continue
		}
		kind := TypeNone
		switch f.num {
		case typeTensor:
			kind = TypeTensor
		case typeSparseTensor:
			kind = TypeSparseTensor
		case typeSequence:
			kind = TypeSequence
		case typeMap:
			kind = TypeMap
		case typeOptional:
			kind = TypeOptional
		case typeOpaque:
			kind = TypeOpaque
		}
		if kind == TypeNone {
			d.after(f)
			continue
		}
		if t.Kind != kind {
			*t = Type{Kind: kind}
		}
		switch kind {
		case TypeTensor, TypeSparseTensor:
			err = d.tensorType(t, f.end())
		case TypeSequence, TypeOptional:
			err = d.innerType(t, f.end(), 1, depth)
		case TypeMap:
			err = d.mapType(t, f.end(), depth)
		case TypeOpaque:
			var dom, name string
			dom, name, err = d.entry(f.end(), "opaque_type")
			t.Opaque = dom + "." + name
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) innerType(t *Type, end int64, num protowire.Number, depth int) error {
	for {
		f, ok, err := d.next(end, "TypeProto")
		if err != nil || !ok {
			return err
		}
		if f.num == num && f.typ == protowire.BytesType {
			if t.Inner == nil {
				t.Inner = &Type{}
			}
			if err := d.typeProto(t.Inner, f.end(), depth+1); err != nil {
				return err
			}
		} else if err := d.skipChecked("TypeProto", f, end, 0); err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) mapType(t *Type, end int64, depth int) error {
	for {
		f, ok, err := d.next(end, "TypeProto.Map")
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1:
			var v uint64
			if v, ok, err = d.uint(f, end, "map key_type"); ok {
				t.Elem = DataType(int32(v))
			}
		case f.num == 2 && f.typ == protowire.BytesType:
			if t.Inner == nil {
				t.Inner = &Type{}
			}
			err = d.typeProto(t.Inner, f.end(), depth+1)
		default:
			err = d.skipChecked("TypeProto.Map", f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) tensorType(t *Type, end int64) error {
	const what = "TypeProto.Tensor"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1:
			var v uint64
			if v, ok, err = d.uint(f, end, "elem_type"); ok {
				t.Elem = DataType(int32(v))
			}
		case f.num == 2 && f.typ == protowire.BytesType:
			t.HasShape = true
			err = d.shape(t, f.end())
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) shape(t *Type, end int64) error {
	const what = "TensorShapeProto"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			if len(t.Shape) >= maxRank {
				return d.fail(f.start, ErrTooLarge, "shape with more than %d dims", maxRank)
			}
			if err := d.keep(f.start, int64(unsafe.Sizeof(Dim{})), "shape"); err != nil {
				return err
			}
			var dim Dim
			if err := d.dim(&dim, f.end()); err != nil {
				return err
			}
			t.Shape = append(t.Shape, dim)
		} else if err := d.skipChecked(what, f, end, 0); err != nil {
			return err
		}
		d.after(f)
	}
}

func (d *decoder) dim(dim *Dim, end int64) error {
	const what = "TensorShapeProto.Dimension"
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		switch f.num {
		case 1:
			var v uint64
			if v, ok, err = d.uint(f, end, "dim_value"); ok {
				*dim = Dim{Kind: DimValue, Value: int64(v)}
			}
		case 2:
			var s string
			if s, ok, err = d.str(f, end, maxString, "dim_param"); ok {
				*dim = Dim{Kind: DimParam, Param: s}
			}
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return err
		}
		d.after(f)
	}
}
