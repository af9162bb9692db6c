package accuracy

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func tensorSeed(dt int32, dims []int64, raw []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(dt))
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendString(b, "input")
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	return protowire.AppendBytes(b, raw)
}

// FuzzParseTensor feeds arbitrary bytes to the .pb tensor parser (accuracy
// samples and calibration data come from uploads): it never panics, every
// error wraps ErrBadTensor, and an accepted tensor's data is exactly its
// dims' element count times its element size.
func FuzzParseTensor(f *testing.F) {
	f.Add(tensorSeed(1, []int64{1, 2}, make([]byte, 8)))
	f.Add(tensorSeed(10, []int64{3}, make([]byte, 6)))
	f.Add(tensorSeed(7, nil, make([]byte, 8)))
	f.Add(tensorSeed(1, []int64{1 << 40, 1 << 40}, nil))
	f.Add(tensorSeed(1, []int64{-1}, nil))
	f.Add([]byte{0x22, 0x04, 0, 0, 0x80, 0x3f})
	f.Fuzz(func(t *testing.T, b []byte) {
		tn, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrBadTensor) {
				t.Fatalf("error not wrapping ErrBadTensor: %v", err)
			}
			return
		}
		size := ElemSize(tn.DType)
		if size == 0 {
			t.Fatalf("accepted unsupported dtype %q", tn.DType)
		}
		for _, d := range tn.Dims {
			if d < 0 {
				t.Fatalf("accepted negative dim %v", tn.Dims)
			}
		}
		if int64(len(tn.Data)) != tn.Len()*int64(size) {
			t.Fatalf("%d bytes of data for dims %v of %s", len(tn.Data), tn.Dims, tn.DType)
		}
		if vs := tn.Float64s(); int64(len(vs)) != tn.Len() {
			t.Fatalf("Float64s gave %d values for %d elements", len(vs), tn.Len())
		}
	})
}
