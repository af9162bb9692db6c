package onnx

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// tensor reads the TensorProto in the payload of outer.
func (d *decoder) tensor(m *Model, outer field) (*Tensor, error) {
	const what = "TensorProto"
	if err := d.count(outer.start, "tensor"); err != nil {
		return nil, err
	}
	t := &Tensor{Span: Span{Off: outer.start, Len: outer.end() - outer.start}}
	end := outer.end()
	var ext []extEntry
	for {
		f, ok, err := d.next(end, what)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch f.num {
		case tensorDims:
			err = d.int64s(f, end, "tensor dims", func(v int64) error {
				if len(t.Dims) >= maxRank {
					return d.fail(f.start, ErrTooLarge, "tensor %q has more than %d dims", t.Name, maxRank)
				}
				t.Dims = append(t.Dims, v)
				return d.keep(f.start, 8, "tensor dims")
			})
		case tensorDataType:
			var v uint64
			if v, ok, err = d.uint(f, end, "data_type"); ok {
				t.DataType = DataType(int32(v))
			}
		case tensorName:
			err = d.setStr(f, end, &t.Name, "tensor name")
		case tensorRawData, tensorFloatData, tensorInt32Data, tensorInt64Data, tensorDoubleData, tensorUint64Data, tensorStringData:
			err = d.tensorData(t, f, end)
		case tensorExternalData:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			var e extEntry
			e.off = f.start
			e.key, e.value, err = d.entry(f.end(), "external_data")
			ext = append(ext, e)
		case tensorDataLocation:
			var v uint64
			if v, ok, err = d.uint(f, end, "data_location"); ok {
				t.Location = DataLocation(int32(v))
			}
		default:
			if d.values != nil && f.num == tensorSegment && f.typ == protowire.BytesType {
				d.values.Segmented = true
			}
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return nil, err
		}
		d.after(f)
	}
	if d.values != nil && len(ext) > 0 {
		d.values.ExternalData = true
	}
	if t.Location == External {
		ref, err := externalRef(t, ext)
		if err != nil {
			return nil, err
		}
		t.External = ref
		t.Data, t.DataField = Span{}, 0
	}
	m.tensors = append(m.tensors, t)
	return t, nil
}

// tensorData reads one data field of a TensorProto (raw_data or a typed
// repeated field): it records the field's span in t and, when the decoder
// collects values, the values.
func (d *decoder) tensorData(t *Tensor, f field, end int64) error {
	if !dataWireOK(f) {
		// Sent with a wire type its type does not allow: unknown to
		// protobuf, so it neither holds nor replaces the tensor's data.
		return d.skipChecked("TensorProto", f, end, 0)
	}
	payload := Span{Off: f.data, Len: f.n}
	if f.typ == protowire.BytesType {
		if err := d.checkPacked(f, t.Name); err != nil {
			return err
		}
		if f.num == tensorStringData {
			t.StringBytes += f.n
		}
	} else {
		// An unpacked repeated number: the value itself.
		if err := d.skipChecked("TensorProto", f, end, 0); err != nil {
			return err
		}
		payload.Len = d.pos - f.data
	}
	if t.DataField == int(f.num) && f.num != tensorRawData {
		// Another value of a repeated field: extend the span.
		t.Data.Len = payload.End() - t.Data.Off
	} else {
		t.DataField, t.Data = int(f.num), payload
	}
	if d.values != nil {
		if err := d.values.collect(d, f, payload); err != nil {
			return err
		}
	}
	if f.typ == protowire.BytesType {
		d.pos = f.end()
	}
	return nil
}

type extEntry struct {
	off        int64
	key, value string
}

func externalRef(t *Tensor, entries []extEntry) (*ExternalRef, error) {
	ref := &ExternalRef{Tensor: t.Name, Length: -1}
	for _, e := range entries {
		var err error
		switch e.key {
		case "location":
			ref.Location = e.value
		case "offset":
			ref.Offset, err = strconv.ParseInt(e.value, 10, 64)
		case "length":
			ref.Length, err = strconv.ParseInt(e.value, 10, 64)
		case "checksum":
			ref.Checksum = e.value
		}
		if err != nil || ref.Offset < 0 || (e.key == "length" && ref.Length < 0) {
			return nil, &FormatError{Off: e.off, What: fmt.Sprintf("tensor %q: external_data %s=%q", t.Name, e.key, e.value), Err: ErrExternalData}
		}
	}
	if ref.Location == "" {
		return nil, &FormatError{Off: t.Span.Off, What: fmt.Sprintf("tensor %q: external data without a location", t.Name), Err: ErrExternalData}
	}
	return ref, nil
}

func (d *decoder) sparse(m *Model, outer field) (*SparseTensor, error) {
	const what = "SparseTensorProto"
	s := &SparseTensor{Span: Span{Off: outer.start, Len: outer.end() - outer.start}}
	end := outer.end()
	for {
		f, ok, err := d.next(end, what)
		if err != nil {
			return nil, err
		}
		if !ok {
			return s, nil
		}
		switch f.num {
		case sparseValues, sparseIndices:
			if f.typ != protowire.BytesType {
				err = d.skipChecked(what, f, end, 0)
				break
			}
			var t *Tensor
			if t, err = d.tensor(m, f); err == nil {
				if f.num == sparseValues {
					s.Values = t
				} else {
					s.Indices = t
				}
			}
		case sparseDims:
			err = d.int64s(f, end, "sparse dims", func(v int64) error {
				if len(s.Dims) >= maxRank {
					return d.fail(f.start, ErrTooLarge, "sparse tensor has more than %d dims", maxRank)
				}
				s.Dims = append(s.Dims, v)
				return d.keep(f.start, 8, "sparse dims")
			})
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return nil, err
		}
		d.after(f)
	}
}

// dataWireOK reports whether data field f came with a wire type protobuf
// accepts for it: length-delimited for raw_data and string_data (and any
// packed repeated number), or the element's own wire type for an
// unpacked number. Anything else is an unknown field to protobuf.
func dataWireOK(f field) bool {
	if f.typ == protowire.BytesType {
		return true
	}
	switch f.num {
	case tensorFloatData:
		return f.typ == protowire.Fixed32Type
	case tensorDoubleData:
		return f.typ == protowire.Fixed64Type
	case tensorInt32Data, tensorInt64Data, tensorUint64Data:
		return f.typ == protowire.VarintType
	}
	return false
}

// checkPacked checks the framing of a packed repeated number field of a
// tensor without reading its values: fixed-size elements must fill it
// exactly, and a run of varints must end on a final byte. (A varint
// longer than 10 bytes in the middle of int32/int64/uint64 data is not
// detected: that would mean reading the weights.)
func (d *decoder) checkPacked(f field, tensor string) error {
	switch f.num {
	case tensorFloatData:
		if f.n%4 != 0 {
			return d.fail(f.start, ErrNotONNX, "tensor %q: packed float_data of %d bytes is not a multiple of 4", tensor, f.n)
		}
	case tensorDoubleData:
		if f.n%8 != 0 {
			return d.fail(f.start, ErrNotONNX, "tensor %q: packed double_data of %d bytes is not a multiple of 8", tensor, f.n)
		}
	case tensorInt32Data, tensorInt64Data, tensorUint64Data:
		if f.n == 0 {
			return nil
		}
		d.pos = f.end() - 1
		b, err := d.bytes(1)
		if err != nil {
			return err
		}
		if b[0]&0x80 != 0 {
			return d.fail(f.start, ErrNotONNX, "tensor %q: packed %s ends inside a varint", tensor, fieldName("TensorProto", f.num))
		}
	}
	return nil
}
