package accuracy

import (
	"encoding/binary"
	"math"
)

// FromFloat64s builds a tensor of dtype from values (rounded and clamped to
// the range of integer types).
func FromFloat64s(name, dtype string, dims []int64, vals []float64) Tensor {
	size := ElemSize(dtype)
	t := Tensor{Name: name, DType: dtype, Dims: append([]int64(nil), dims...), Data: make([]byte, 0, len(vals)*size)}
	lo, hi := intRange(dtype)
	for _, v := range vals {
		switch dtype {
		case "float32":
			t.Data = binary.LittleEndian.AppendUint32(t.Data, math.Float32bits(float32(v)))
		case "float64":
			t.Data = binary.LittleEndian.AppendUint64(t.Data, math.Float64bits(v))
		case "float16":
			t.Data = binary.LittleEndian.AppendUint16(t.Data, Float32ToHalf(float32(v)))
		case "bfloat16":
			t.Data = binary.LittleEndian.AppendUint16(t.Data, uint16(math.Float32bits(float32(v))>>16))
		default:
			v = math.Max(lo, math.Min(hi, math.Round(v)))
			switch size {
			case 1:
				t.Data = append(t.Data, byte(int64(v)))
			case 2:
				t.Data = binary.LittleEndian.AppendUint16(t.Data, uint16(int64(v)))
			case 4:
				t.Data = binary.LittleEndian.AppendUint32(t.Data, uint32(int64(v)))
			default:
				if dtype == "uint64" && v >= math.MaxInt64 {
					t.Data = binary.LittleEndian.AppendUint64(t.Data, math.MaxUint64)
				} else {
					t.Data = binary.LittleEndian.AppendUint64(t.Data, uint64(int64(v)))
				}
			}
		}
	}
	return t
}

// Perturb returns a copy of t with delta added to every element (rounded
// for integer types). The worker's test double uses it to stand in for an
// engine whose outputs are off by delta.
func Perturb(t Tensor, delta float64) Tensor {
	if delta == 0 {
		return t
	}
	vals := t.Float64s()
	for i := range vals {
		vals[i] += delta
	}
	return FromFloat64s(t.Name, t.DType, t.Dims, vals)
}
