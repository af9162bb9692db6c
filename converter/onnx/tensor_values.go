package onnx

import (
	"bytes"
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorValues are the values of a TensorProto's data fields. The model
// reader leaves them in the file (Tensor.Data is their span); ParseTensor
// collects them for a tensor read on its own, such as a .pb sample.
type TensorValues struct {
	Raw     []byte    // raw_data (the last one if repeated), sharing ParseTensor's input
	HasRaw  bool      // raw_data was present
	Floats  []float32 // float_data
	Int32s  []int64   // int32_data, each sign-extended from int32
	Int64s  []int64   // int64_data
	Doubles []float64 // double_data
	Uint64s []uint64  // uint64_data
	// Typed counts the typed data fields (float_data … uint64_data) read.
	Typed int
	// Strings, Segmented and ExternalData report string_data, segment and
	// external_data fields, whose contents are not collected.
	Strings, Segmented, ExternalData bool

	src []byte // the serialized TensorProto
}

// ParseTensor decodes the serialized TensorProto b with the model reader's
// checks and limits, and collects its data values. Errors are
// *FormatError with offsets into b.
func ParseTensor(b []byte) (*Tensor, *TensorValues, error) {
	d := newDecoder(bytes.NewReader(b), int64(len(b)))
	d.budget = DefaultBudget
	d.values = &TensorValues{src: b}
	t, err := d.tensor(&Model{}, field{typ: protowire.BytesType, n: int64(len(b))})
	if err != nil {
		return nil, nil, err
	}
	return t, d.values, nil
}

// collect appends the values of data field f, whose payload (or, unpacked,
// value) is at p, without copying raw_data. The reader passes only fields
// whose wire type protobuf accepts for them (dataWireOK).
func (v *TensorValues) collect(d *decoder, f field, p Span) error {
	b := v.src[p.Off:p.End()]
	var err error
	switch f.num {
	case tensorRawData:
		v.Raw, v.HasRaw = b, true
		return nil
	case tensorStringData:
		v.Strings = true
		return nil
	case tensorFloatData:
		for ; len(b) >= 4; b = b[4:] {
			v.Floats = append(v.Floats, math.Float32frombits(binary.LittleEndian.Uint32(b)))
		}
	case tensorDoubleData:
		for ; len(b) >= 8; b = b[8:] {
			v.Doubles = append(v.Doubles, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
	case tensorInt32Data:
		err = d.varints(f, b, func(x uint64) { v.Int32s = append(v.Int32s, int64(int32(x))) })
	case tensorInt64Data:
		err = d.varints(f, b, func(x uint64) { v.Int64s = append(v.Int64s, int64(x)) })
	case tensorUint64Data:
		err = d.varints(f, b, func(x uint64) { v.Uint64s = append(v.Uint64s, x) })
	default:
		return nil
	}
	v.Typed++
	return err
}

// varints decodes the varints of b (the payload of field f) in order.
func (d *decoder) varints(f field, b []byte, add func(uint64)) error {
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return d.fail(f.start, ErrNotONNX, "TensorProto %s: bad varint: %v", fieldName("TensorProto", f.num), protowire.ParseError(n))
		}
		add(x)
		b = b[n:]
	}
	return nil
}
