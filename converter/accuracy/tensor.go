package accuracy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/trtd/trtd/converter/onnx"
)

// ErrBadTensor marks a .pb file that is not a usable ONNX TensorProto.
var ErrBadTensor = errors.New("not a usable ONNX TensorProto")

// ErrMismatch marks samples that do not fit the engine (names, count,
// shapes or types).
var ErrMismatch = errors.New("accuracy samples do not fit the engine")

// MaxBytes bounds one tensor file (and the decoded data).
const MaxBytes = 1 << 30

// ONNX TensorProto.DataType values and the names trtd uses for them (the
// same names the TensorRT shim reports).
var dtypes = map[int32]string{
	1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
	8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
	14: "complex64", 15: "complex128", 16: "bfloat16",
}

// ElemSize is the size in bytes of one element of a supported dtype, 0 for
// others.
func ElemSize(dtype string) int {
	switch dtype {
	case "bool", "uint8", "int8":
		return 1
	case "float16", "bfloat16", "int16", "uint16":
		return 2
	case "float32", "int32", "uint32":
		return 4
	case "float64", "int64", "uint64":
		return 8
	}
	return 0
}

// Tensor is a decoded tensor: Data holds the elements packed little-endian
// in the layout of DType (what a TensorRT host buffer of that type holds).
type Tensor struct {
	Name  string
	DType string
	Dims  []int64
	Data  []byte
}

// Len is the number of elements the dims describe (1 for a scalar).
func (t Tensor) Len() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// ShapeString renders the dims as [1 3 224 224].
func (t Tensor) ShapeString() string { return fmt.Sprint(t.Dims) }

// ReadFile reads one TensorProto .pb file.
func ReadFile(path string) (Tensor, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Tensor{}, err
	}
	if !fi.Mode().IsRegular() {
		return Tensor{}, fmt.Errorf("%s: %w: not a regular file", path, ErrBadTensor)
	}
	if fi.Size() > MaxBytes {
		return Tensor{}, fmt.Errorf("%s: %w: %d bytes (limit %d)", path, ErrBadTensor, fi.Size(), MaxBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Tensor{}, err
	}
	t, err := Parse(b)
	if err != nil {
		return Tensor{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a serialized ONNX TensorProto with the model reader's
// TensorProto decoder (onnx.ParseTensor). Data comes from raw_data or the
// typed repeated fields (float_data, int32_data, int64_data, double_data,
// uint64_data), packed or not. Strings, complex numbers, segments and
// external data are refused.
func Parse(b []byte) (Tensor, error) {
	pt, v, err := onnx.ParseTensor(b)
	if err != nil {
		return Tensor{}, fmt.Errorf("%w: %w", ErrBadTensor, err)
	}
	switch {
	case v.Segmented:
		return Tensor{}, fmt.Errorf("%w: segmented tensors are not supported", ErrBadTensor)
	case v.Strings:
		return Tensor{}, fmt.Errorf("%w: string tensors are not supported", ErrBadTensor)
	case v.ExternalData || pt.Location != onnx.Embedded:
		return Tensor{}, fmt.Errorf("%w: external data is not supported in sample tensors", ErrBadTensor)
	}
	f := tensorFields{t: Tensor{Name: pt.Name, Dims: pt.Dims}, dt: int32(pt.DataType), v: v}
	return f.tensor()
}

// tensorFields is a decoded TensorProto on its way to a Tensor.
type tensorFields struct {
	t  Tensor
	dt int32
	v  *onnx.TensorValues
}

// tensor checks the type and dims and assembles the data.
func (f *tensorFields) tensor() (Tensor, error) {
	t := f.t
	name, ok := dtypes[f.dt]
	if !ok {
		return t, fmt.Errorf("%w: data_type %d is not an ONNX type", ErrBadTensor, f.dt)
	}
	size := ElemSize(name)
	if size == 0 {
		return t, fmt.Errorf("%w: %s tensors are not supported", ErrBadTensor, name)
	}
	t.DType = name
	count, err := elemCount(t.Dims, size)
	if err != nil {
		return t, err
	}
	if f.v.HasRaw {
		if f.v.Typed > 0 {
			return t, fmt.Errorf("%w: both raw_data and typed data fields", ErrBadTensor)
		}
		if int64(len(f.v.Raw)) != count*int64(size) {
			return t, fmt.Errorf("%w: raw_data has %d bytes, dims %v of %s need %d", ErrBadTensor, len(f.v.Raw), t.Dims, name, count*int64(size))
		}
		t.Data = append([]byte(nil), f.v.Raw...)
		return t, nil
	}
	field, got, data := f.typedBytes(name, size, count)
	if int64(got) != count {
		return t, fmt.Errorf("%w: %s has %d values, dims %v need %d", ErrBadTensor, field, got, t.Dims, count)
	}
	t.Data = data
	return t, nil
}

// elemCount is the number of elements of dims, refusing negative dims and
// tensors over MaxBytes.
func elemCount(dims []int64, size int) (int64, error) {
	count := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in %v", ErrBadTensor, dims)
		}
		if d > 0 && count > MaxBytes/d {
			return 0, fmt.Errorf("%w: dims %v are too large", ErrBadTensor, dims)
		}
		count *= d
	}
	if count*int64(size) > MaxBytes {
		return 0, fmt.Errorf("%w: dims %v are too large", ErrBadTensor, dims)
	}
	return count, nil
}

// typedBytes encodes the typed field that carries dtype name as
// little-endian bytes; it returns the field's name and value count.
func (f *tensorFields) typedBytes(name string, size int, count int64) (field string, got int, data []byte) {
	// Room for the values there are, not for what the dims claim: a tiny
	// file claiming 2^28 floats must not cost a gigabyte before it fails.
	n := len(f.v.Floats) + len(f.v.Doubles) + len(f.v.Int64s) + len(f.v.Uint64s) + len(f.v.Int32s)
	data = make([]byte, 0, min(count, int64(n))*int64(size))
	switch name {
	case "float32":
		for _, v := range f.v.Floats {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		return "float_data", len(f.v.Floats), data
	case "float64":
		for _, v := range f.v.Doubles {
			data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
		}
		return "double_data", len(f.v.Doubles), data
	case "int64":
		for _, v := range f.v.Int64s {
			data = binary.LittleEndian.AppendUint64(data, uint64(v))
		}
		return "int64_data", len(f.v.Int64s), data
	case "uint32", "uint64":
		for _, v := range f.v.Uint64s {
			if size == 4 {
				data = binary.LittleEndian.AppendUint32(data, uint32(v))
			} else {
				data = binary.LittleEndian.AppendUint64(data, v)
			}
		}
		return "uint64_data", len(f.v.Uint64s), data
	}
	// int32_data carries int32, int16, uint16, int8, uint8, bool, float16
	// and bfloat16 (bits).
	for _, v := range f.v.Int32s {
		switch size {
		case 1:
			data = append(data, byte(v))
		case 2:
			data = binary.LittleEndian.AppendUint16(data, uint16(v))
		default:
			data = binary.LittleEndian.AppendUint32(data, uint32(v))
		}
	}
	return "int32_data", len(f.v.Int32s), data
}

// Float64s returns the elements as float64 (integers and booleans by value;
// float16 and bfloat16 widened).
func (t Tensor) Float64s() []float64 {
	size := ElemSize(t.DType)
	if size == 0 {
		return nil
	}
	n := len(t.Data) / size
	out := make([]float64, n)
	d := t.Data
	for i := 0; i < n; i++ {
		switch t.DType {
		case "float32":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:])))
		case "float64":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:]))
		case "float16":
			out[i] = float64(HalfToFloat32(binary.LittleEndian.Uint16(d[2*i:])))
		case "bfloat16":
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16))
		case "int8":
			out[i] = float64(int8(d[i]))
		case "uint8":
			out[i] = float64(d[i])
		case "bool":
			if d[i] != 0 {
				out[i] = 1
			}
		case "int16":
			out[i] = float64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		case "uint16":
			out[i] = float64(binary.LittleEndian.Uint16(d[2*i:]))
		case "int32":
			out[i] = float64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		case "uint32":
			out[i] = float64(binary.LittleEndian.Uint32(d[4*i:]))
		case "int64":
			out[i] = float64(int64(binary.LittleEndian.Uint64(d[8*i:])))
		case "uint64":
			out[i] = float64(binary.LittleEndian.Uint64(d[8*i:]))
		}
	}
	return out
}

// HalfToFloat32 widens an IEEE 754 binary16 value.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalize
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// Float32ToHalf narrows to binary16, rounding to nearest even.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	switch {
	case b>>23&0xff == 0xff: // Inf, NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - exp)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is right (up to Inf)
	}
	return sign | uint16(h)
}

// As converts t to dtype for an engine input of that type: the same type is
// returned as is; int64 narrows to int32 (TensorRT 8.x turns int64 inputs
// into int32) when every value fits; float32/float64 convert to float32 or
// float16; integers convert among themselves when every value fits.
func (t Tensor) As(dtype string) (Tensor, error) {
	if t.DType == dtype {
		return t, nil
	}
	size := ElemSize(dtype)
	if size == 0 {
		return t, fmt.Errorf("%w: input %s: the engine wants %s, which the accuracy gate cannot feed", ErrMismatch, t.Name, dtype)
	}
	isFloat := func(s string) bool { return s == "float32" || s == "float64" || s == "float16" || s == "bfloat16" }
	if isFloat(t.DType) != isFloat(dtype) || dtype == "bfloat16" {
		return t, fmt.Errorf("%w: input %s is %s, the engine wants %s", ErrMismatch, t.Name, t.DType, dtype)
	}
	vals := t.Float64s()
	out := Tensor{Name: t.Name, DType: dtype, Dims: t.Dims, Data: make([]byte, 0, len(vals)*size)}
	lo, hi := intRange(dtype)
	for i, v := range vals {
		switch dtype {
		case "float32":
			out.Data = binary.LittleEndian.AppendUint32(out.Data, math.Float32bits(float32(v)))
		case "float64":
			out.Data = binary.LittleEndian.AppendUint64(out.Data, math.Float64bits(v))
		case "float16":
			out.Data = binary.LittleEndian.AppendUint16(out.Data, Float32ToHalf(float32(v)))
		default:
			if v < lo || v > hi {
				return t, fmt.Errorf("%w: input %s: element %d (%v) does not fit the engine's %s", ErrMismatch, t.Name, i, v, dtype)
			}
			switch size {
			case 1:
				out.Data = append(out.Data, byte(int64(v)))
			case 2:
				out.Data = binary.LittleEndian.AppendUint16(out.Data, uint16(int64(v)))
			case 4:
				out.Data = binary.LittleEndian.AppendUint32(out.Data, uint32(int64(v)))
			default:
				out.Data = binary.LittleEndian.AppendUint64(out.Data, uint64(int64(v)))
			}
		}
	}
	return out, nil
}

func intRange(dtype string) (float64, float64) {
	switch dtype {
	case "bool":
		return 0, 1
	case "uint8":
		return 0, math.MaxUint8
	case "int8":
		return math.MinInt8, math.MaxInt8
	case "int16":
		return math.MinInt16, math.MaxInt16
	case "uint16":
		return 0, math.MaxUint16
	case "int32":
		return math.MinInt32, math.MaxInt32
	case "uint32":
		return 0, math.MaxUint32
	case "uint64":
		return 0, math.MaxUint64
	}
	return math.MinInt64, math.MaxInt64
}
