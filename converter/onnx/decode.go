package onnx

import (
	"errors"
	"fmt"
	"io"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// Buffer sizes of the streaming decoder. After a jump (a skipped tensor
// payload) the decoder reads a small window, and doubles it while reads stay
// sequential, so a model made mostly of weights costs a few small reads per
// tensor and a model made of structure is read in large chunks.
const (
	minWindow = 4 << 10
	maxWindow = 256 << 10
)

// Limits on what a model may make the reader keep. Every count is also bounded
// by the file size (each item costs at least two bytes of file), these caps
// keep a hostile file from turning that into gigabytes of structs.
const (
	// MaxFileSize is the largest model file accepted: protobuf messages
	// cannot exceed 2 GiB; larger models must use external data.
	MaxFileSize = 1<<31 - 1
	// maxItems caps the nodes, tensors, value infos and attributes kept
	// for one model.
	maxItems = 4 << 20
	// maxString caps one name, op type, dim param or metadata string.
	maxString = 1 << 20
	// maxInlineBytes is the largest bytes attribute value kept in memory.
	maxInlineBytes = 4 << 10
	// maxInlineList caps the ints/floats/strings of one attribute kept in memory.
	maxInlineList = 1 << 16
	// maxDepth caps the nesting of sub-graphs and types.
	maxDepth = 64
)

// decoder reads protobuf wire format sequentially from an io.ReaderAt,
// keeping only a small window of the file in memory.
type decoder struct {
	r    io.ReaderAt
	size int64

	buf    []byte // window: file bytes [bufOff, bufOff+len(buf))
	bufOff int64
	pos    int64 // absolute offset of the next byte to decode
	window int   // size of the next read

	items int // nodes, tensors, value infos, attributes kept so far

	// kept estimates the bytes of structure kept so far; budget caps it.
	kept, budget int64

	// names interns the strings that repeat across nodes (op types,
	// domains, attribute names) so each is kept once.
	names map[string]string

	// values, when set, collects the values of TensorProto data fields
	// (ParseTensor); the model reader leaves it nil and skips them.
	values *TensorValues
}

// internStr reads a short string field, sharing equal values.
func (d *decoder) internStr(f field, end int64, dst *string, what string) error {
	if f.typ != protowire.BytesType || f.n > 256 {
		return d.setStr(f, end, dst, what)
	}
	b, err := d.bytes(int(f.n))
	if err != nil {
		return err
	}
	s, ok := d.names[string(b)]
	if !ok {
		if d.names == nil {
			d.names = map[string]string{}
		}
		if len(d.names) >= 4096 {
			*dst = string(b)
			return nil
		}
		s = string(b)
		d.names[s] = s
	}
	*dst = s
	return nil
}

func newDecoder(r io.ReaderAt, size int64) *decoder {
	return &decoder{r: r, size: size, buf: make([]byte, 0, maxWindow), window: minWindow}
}

// FormatError describes where and why a file is not a valid ONNX model.
// It wraps one of the package's sentinels (ErrNotONNX, ErrTruncated,
// ErrTooLarge, ErrExternalData) for errors.Is.
type FormatError struct {
	Off  int64  // byte offset in the model file where the problem was found, -1 if none
	What string // what was being decoded or checked
	Err  error  // the sentinel, possibly wrapping an I/O error
}

func (e *FormatError) Error() string {
	if e.Off >= 0 {
		return fmt.Sprintf("%v at byte %d: %s", e.Err, e.Off, e.What)
	}
	return fmt.Sprintf("%v: %s", e.Err, e.What)
}

func (e *FormatError) Unwrap() error { return e.Err }

func (d *decoder) fail(off int64, kind error, format string, args ...any) error {
	return &FormatError{Off: off, What: fmt.Sprintf(format, args...), Err: kind}
}

// avail makes sure at least n bytes from d.pos are in the window (fewer at
// EOF) and returns them.
func (d *decoder) avail(n int) ([]byte, error) {
	if d.pos >= d.bufOff && d.pos+int64(n) <= d.bufOff+int64(len(d.buf)) {
		return d.buf[d.pos-d.bufOff:], nil
	}
	if d.pos >= d.size {
		return nil, nil
	}
	sequential := d.pos >= d.bufOff && d.pos <= d.bufOff+int64(len(d.buf)) && len(d.buf) > 0
	if sequential {
		if d.window < maxWindow {
			d.window *= 2
		}
	} else {
		d.window = minWindow
	}
	w := d.window
	if w < n {
		w = n
	}
	if int64(w) > d.size-d.pos {
		w = int(d.size - d.pos)
	}
	if cap(d.buf) < w {
		d.buf = make([]byte, 0, w)
	}
	b := d.buf[:w]
	got, err := d.r.ReadAt(b, d.pos)
	if got < w {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.buf = d.buf[:0]
		return nil, d.fail(d.pos+int64(got), ErrTruncated, "reading")
	}
	d.buf = b
	d.bufOff = d.pos
	return d.buf, nil
}

// varint decodes a varint that must end before end.
func (d *decoder) varint(end int64, what string) (uint64, error) {
	b, err := d.avail(binaryMaxVarint)
	if err != nil {
		return 0, err
	}
	if lim := end - d.pos; int64(len(b)) > lim {
		b = b[:lim]
	}
	v, n := consumeVarint(b)
	if n < 0 {
		if n == -1 && d.pos+int64(len(b)) >= d.size {
			return 0, d.fail(d.pos, ErrTruncated, "%s: varint", what)
		}
		return 0, d.fail(d.pos, ErrNotONNX, "%s: bad varint", what)
	}
	d.pos += int64(n)
	return v, nil
}

const binaryMaxVarint = 10

// field is one decoded field header.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	start int64 // offset of the tag
	data  int64 // offset of the payload (after the length prefix for bytes)
	n     int64 // payload length for bytes fields
}

// next reads the next field header of a message that ends at end. It
// returns ok=false at the end of the message. For length-delimited fields
// the length is checked against end, so a payload never runs past the
// message, and never past the file.
func (d *decoder) next(end int64, what string) (f field, ok bool, err error) {
	if d.pos >= end {
		return f, false, nil
	}
	f.start = d.pos
	tag, err := d.varint(end, what)
	if err != nil {
		return f, false, err
	}
	num, typ := protowire.DecodeTag(tag)
	if num < protowire.MinValidNumber || num > protowire.MaxValidNumber {
		return f, false, d.fail(f.start, ErrNotONNX, "%s: invalid field number %d", what, num)
	}
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.data = d.pos
	case protowire.Fixed32Type:
		f.data, f.n = d.pos, 4
	case protowire.Fixed64Type:
		f.data, f.n = d.pos, 8
	case protowire.BytesType:
		l, err := d.varint(end, what)
		if err != nil {
			return f, false, err
		}
		f.data, f.n = d.pos, int64(l)
		if l > uint64(end-d.pos) {
			if end == d.size || l > uint64(d.size-d.pos) {
				return f, false, d.fail(f.start, ErrTruncated, "%s %s of %d bytes runs past the end of the file (%d bytes left)", what, fieldName(what, num), l, d.size-d.pos)
			}
			return f, false, d.fail(f.start, ErrNotONNX, "%s %s of %d bytes runs past the end of its message (%d bytes left)", what, fieldName(what, num), l, end-d.pos)
		}
	default:
		return f, false, d.fail(f.start, ErrNotONNX, "%s: unsupported wire type %d in field %d", what, typ, num)
	}
	if f.n > end-f.data {
		if end == d.size {
			return f, false, d.fail(f.start, ErrTruncated, "%s: field %d", what, num)
		}
		return f, false, d.fail(f.start, ErrNotONNX, "%s: field %d runs past the end of its message", what, num)
	}
	return f, true, nil
}

// skip moves past the payload of f (varints are decoded to find their end).
func (d *decoder) skip(f field, end int64, what string) error {
	if f.typ == protowire.VarintType {
		_, err := d.varint(end, what)
		return err
	}
	d.pos = f.data + f.n
	return nil
}

// end returns the absolute offset just after f's payload.
func (f field) end() int64 { return f.data + f.n }

// uint reads the value of a varint field, or, for a field of another wire
// type, skips it and reports ok=false (protobuf treats a known field with
// an unexpected wire type as unknown).
func (d *decoder) uint(f field, end int64, what string) (v uint64, ok bool, err error) {
	switch f.typ {
	case protowire.VarintType:
		v, err = d.varint(end, what)
		return v, err == nil, err
	default:
		return 0, false, d.skip(f, end, what)
	}
}

// float reads a fixed32 float field.
func (d *decoder) fixed32(f field, end int64, what string) (uint32, bool, error) {
	if f.typ != protowire.Fixed32Type {
		return 0, false, d.skip(f, end, what)
	}
	b, err := d.avail(4)
	if err != nil {
		return 0, false, err
	}
	if len(b) < 4 {
		return 0, false, d.fail(d.pos, ErrTruncated, "%s", what)
	}
	v, _ := protowire.ConsumeFixed32(b)
	d.pos += 4
	return v, true, nil
}

// str reads a length-delimited field as a string of at most limit bytes.
func (d *decoder) str(f field, end int64, limit int, what string) (string, bool, error) {
	if f.typ != protowire.BytesType {
		return "", false, d.skip(f, end, what)
	}
	if f.n > int64(limit) {
		return "", false, d.fail(f.start, ErrTooLarge, "%s: string of %d bytes (limit %d)", what, f.n, limit)
	}
	if err := d.keep(f.start, f.n, what); err != nil {
		return "", false, err
	}
	b, err := d.bytes(int(f.n))
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// bytes returns the next n bytes (n already checked against the message
// end, hence against the file). The slice is valid until the next read.
func (d *decoder) bytes(n int) ([]byte, error) {
	if n > maxWindow {
		out := make([]byte, n)
		if _, err := d.r.ReadAt(out, d.pos); err != nil {
			return nil, d.fail(d.pos, ErrTruncated, "reading %d bytes", n)
		}
		d.pos += int64(n)
		return out, nil
	}
	b, err := d.avail(n)
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, d.fail(d.pos, ErrTruncated, "reading %d bytes", n)
	}
	d.pos += int64(n)
	return b[:n], nil
}

// count charges one kept item against maxItems.
func (d *decoder) count(off int64, what string) error {
	d.items++
	if d.items > maxItems {
		return d.fail(off, ErrTooLarge, "%s: more than %d nodes, tensors and values", what, maxItems)
	}
	return d.keep(off, itemCost[what], what)
}

// itemCost is what one kept item costs: its struct, the pointer or slot
// that holds it, and room for the slice growth that appends it.
var itemCost = map[string]int64{
	"node":              int64(unsafe.Sizeof(Node{})) + 24,
	"attribute":         int64(unsafe.Sizeof(Attribute{})) + 24,
	"tensor":            int64(unsafe.Sizeof(Tensor{})) + 32,
	"value_info":        int64(unsafe.Sizeof(ValueInfo{})+unsafe.Sizeof(Type{})) + 24,
	"node input/output": 2 * int64(unsafe.Sizeof("")),
}

// keep charges n bytes of kept structure against the budget. The reader
// counts what it does not keep (field counts, skipped payloads) and keeps
// what it does within the budget, so no file makes it grow past it.
func (d *decoder) keep(off, n int64, what string) error {
	d.kept += n
	if d.budget > 0 && d.kept > d.budget {
		return d.fail(off, ErrTooLarge, "%s: the model's structure needs more than the reader's %d MiB memory budget", what, d.budget>>20)
	}
	return nil
}

// keepField records the span of a top-level or graph field.
func (d *decoder) keepField(dst *[]FieldSpan, f field) error {
	*dst = append(*dst, d.after(f))
	return d.keep(f.start, 2*int64(unsafe.Sizeof(FieldSpan{})), "field")
}

// packedOrVarints reads a repeated int64 field in either encoding, calling
// add for each value. At most limit values are delivered; the rest are
// counted and skipped. It returns the number of values.
func (d *decoder) int64s(f field, end int64, what string, add func(int64) error) error {
	switch f.typ {
	case protowire.VarintType:
		v, err := d.varint(end, what)
		if err != nil {
			return err
		}
		return add(int64(v))
	case protowire.BytesType:
		pend := f.end()
		for d.pos < pend {
			v, err := d.varint(pend, what)
			if err != nil {
				return err
			}
			if err := add(int64(v)); err != nil {
				return err
			}
		}
		return nil
	default:
		return d.skip(f, end, what)
	}
}

// fieldNames names the fields that error messages mention most.
var fieldNames = map[string]map[protowire.Number]string{
	"ModelProto": {1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain", 5: "model_version",
		6: "doc_string", 7: "graph", 8: "opset_import", 14: "metadata_props", 20: "training_info", 25: "functions"},
	"GraphProto": {1: "node", 2: "name", 5: "initializer", 10: "doc_string", 11: "input", 12: "output",
		13: "value_info", 14: "quantization_annotation", 15: "sparse_initializer"},
	"NodeProto": {1: "input", 2: "output", 3: "name", 4: "op_type", 5: "attribute", 6: "doc_string", 7: "domain"},
	"TensorProto": {1: "dims", 2: "data_type", 4: "float_data", 5: "int32_data", 6: "string_data", 7: "int64_data",
		8: "name", 9: "raw_data", 10: "double_data", 11: "uint64_data", 13: "external_data", 14: "data_location"},
}

func fieldName(msg string, num protowire.Number) string {
	if n, ok := fieldNames[msg][num]; ok {
		return fmt.Sprintf("field %d (%s)", num, n)
	}
	return fmt.Sprintf("field %d", num)
}

// consumeVarint decodes a varint like the C++ protobuf parser behind
// python-onnx: at most 10 bytes, bits beyond 64 dropped (protowire
// refuses a 10th byte above 1). It returns n = -1 when b ends inside the
// varint and -2 when the varint is longer than 10 bytes.
func consumeVarint(b []byte) (v uint64, n int) {
	for i := 0; i < binaryMaxVarint; i++ {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -2
}
