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

// TestReadInts: the splitter's integer constants come through the one
// TensorProto decoder, in each encoding ONNX allows.
func TestReadInts(t *testing.T) {
	head := func(dt DataType, dims ...int64) []byte {
		b := protowire.AppendTag(nil, tensorDataType, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(dt))
		for _, d := range dims {
			b = protowire.AppendTag(b, tensorDims, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(d))
		}
		return b
	}
	packed := func(num protowire.Number, vs ...int64) []byte {
		var p []byte
		for _, v := range vs {
			p = protowire.AppendVarint(p, uint64(v))
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), p)
	}
	var unpacked []byte
	for _, v := range []int64{4, -1} {
		unpacked = protowire.AppendVarint(protowire.AppendTag(unpacked, tensorInt64Data, protowire.VarintType), uint64(v))
	}
	raw32 := protowire.AppendBytes(protowire.AppendTag(nil, tensorRawData, protowire.BytesType), []byte{0xfe, 0xff, 0xff, 0xff, 3, 0, 0, 0})
	for _, tc := range []struct {
		name string
		msg  []byte
		want []int64
		ok   bool
	}{
		{"packed int64_data", append(head(Int64, 3), packed(tensorInt64Data, 1, -2, 3)...), []int64{1, -2, 3}, true},
		{"unpacked int64_data", append(head(Int64, 2), unpacked...), []int64{4, -1}, true},
		{"int32 raw_data", append(head(Int32, 2), raw32...), []int64{-2, 3}, true},
		{"packed int32_data", append(head(Int32, 2), packed(tensorInt32Data, -7, 8)...), []int64{-7, 8}, true},
		{"empty", head(Int64, 0), nil, true},
		// Non-empty raw_data wins over typed data, in either order, as in
		// TensorRT's parser; an empty raw_data does not.
		{"raw_data then int64_data", append(append(head(Int64, 1), protowire.AppendBytes(protowire.AppendTag(nil, tensorRawData, protowire.BytesType), []byte{3, 0, 0, 0, 0, 0, 0, 0})...), packed(tensorInt64Data, 9)...), []int64{3}, true},
		{"int64_data then raw_data", append(append(head(Int64, 1), packed(tensorInt64Data, 9)...), protowire.AppendBytes(protowire.AppendTag(nil, tensorRawData, protowire.BytesType), []byte{3, 0, 0, 0, 0, 0, 0, 0})...), []int64{3}, true},
		{"empty raw_data, int64_data", append(append(head(Int64, 1), protowire.AppendBytes(protowire.AppendTag(nil, tensorRawData, protowire.BytesType), nil)...), packed(tensorInt64Data, 9)...), []int64{9}, true},
		{"int64 in int32_data", append(head(Int64, 1), packed(tensorInt32Data, 9)...), nil, false},
		{"count differs", append(head(Int64, 3), packed(tensorInt64Data, 1)...), nil, false},
		{"float", append(head(Float, 2), raw32...), nil, false},
		{"too many", append(head(Int64, maxConstInts+1), packed(tensorInt64Data, make([]int64, maxConstInts+1)...)...), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := protowire.AppendBytes(protowire.AppendTag([]byte{1, 2, 3}, graphInitializer, protowire.BytesType), tc.msg)
			d := newDecoder(bytes.NewReader(file), int64(len(file)))
			d.pos = 3
			f, _, err := d.next(d.size, "GraphProto")
			if err != nil {
				t.Fatal(err)
			}
			tn, err := d.tensor(&Model{}, f)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := readInts(bytes.NewReader(file), tn)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readInts = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
