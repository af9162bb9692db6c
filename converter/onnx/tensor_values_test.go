package onnx

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestParseTensorValues(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, tensorDims, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	b = protowire.AppendTag(b, tensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, tensorName, protowire.BytesType)
	b = protowire.AppendString(b, "x")
	b = protowire.AppendTag(b, tensorFloatData, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(1.5))
	b = protowire.AppendTag(b, tensorFloatData, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendFixed32(nil, math.Float32bits(-2)))
	b = protowire.AppendTag(b, tensorInt64Data, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendVarint(nil, 7), uint64(1<<64-3)))
	b = protowire.AppendTag(b, tensorInt32Data, protowire.Fixed32Type) // mistyped: unknown to protobuf
	b = protowire.AppendFixed32(b, 9)
	b = protowire.AppendTag(b, tensorSegment, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)
	tn, v, err := ParseTensor(b)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Name != "x" || tn.DataType != 1 || !reflect.DeepEqual(tn.Dims, []int64{2}) {
		t.Errorf("tensor %+v", tn)
	}
	if !reflect.DeepEqual(v.Floats, []float32{1.5, -2}) || !reflect.DeepEqual(v.Int64s, []int64{7, -3}) || len(v.Int32s) != 0 || v.Typed != 3 || !v.Segmented || v.HasRaw {
		t.Errorf("values %+v", v)
	}
	bad := protowire.AppendTag(nil, tensorInt64Data, protowire.BytesType)
	bad = protowire.AppendBytes(bad, bytes.Repeat([]byte{0xff}, 11))
	bad[len(bad)-1] = 0x01
	if _, _, err := ParseTensor(bad); !errors.Is(err, ErrNotONNX) || !strings.Contains(err.Error(), "bad varint") {
		t.Errorf("varint of 11 bytes: %v", err)
	}
}

// FuzzParseTensor checks that collecting values changes nothing the
// reader decides: ParseTensor accepts what the model reader's TensorProto
// decoder accepts, with the same Tensor, and fails as it does; the one
// error of its own is a malformed varint inside packed integer data, which
// only collecting reads (and may meet before the reader's error).
func FuzzParseTensor(f *testing.F) {
	raw := protowire.AppendTag(nil, tensorDataType, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 1)
	raw = protowire.AppendTag(raw, tensorRawData, protowire.BytesType)
	f.Add(protowire.AppendBytes(raw, make([]byte, 4)))
	f.Add([]byte{0x22, 0x04, 0, 0, 0x80, 0x3f})
	f.Add([]byte{0x3a, 0x02, 0x80, 0x01, 0x3a, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, v, err := ParseTensor(b)
		d := newDecoder(bytes.NewReader(b), int64(len(b)))
		d.budget = DefaultBudget
		want, werr := d.tensor(&Model{}, field{typ: protowire.BytesType, n: int64(len(b))})
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error is not a *FormatError: %v", err)
		}
		if err != nil && strings.Contains(err.Error(), "bad varint") {
			return
		}
		switch {
		case werr != nil:
			if err == nil || err.Error() != werr.Error() {
				t.Fatalf("reader: %v, ParseTensor: %v", werr, err)
			}
		case err != nil:
			t.Fatalf("reader accepts, ParseTensor: %v", err)
		case !reflect.DeepEqual(got, want):
			t.Fatalf("reader %+v, ParseTensor %+v", want, got)
		case v.HasRaw && got.DataField == tensorRawData && int64(len(v.Raw)) != got.Data.Len:
			t.Fatalf("raw_data of %d bytes, span %d", len(v.Raw), got.Data.Len)
		}
	})
}
