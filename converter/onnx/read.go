package onnx

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto (onnx/onnx, IR version 10).
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDomain          = 4
	modelModelVersion    = 5
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14
	modelFunctions       = 25

	graphNode              = 1
	graphName              = 2
	graphInitializer       = 5
	graphInput             = 11
	graphOutput            = 12
	graphValueInfo         = 13
	graphSparseInitializer = 15

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName        = 1
	attrF           = 2
	attrI           = 3
	attrS           = 4
	attrT           = 5
	attrG           = 6
	attrFloats      = 7
	attrInts        = 8
	attrStrings     = 9
	attrTensors     = 10
	attrGraphs      = 11
	attrType        = 20
	attrRefAttrName = 21

	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorStringData   = 6
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorUint64Data   = 11
	tensorExternalData = 13
	tensorDataLocation = 14

	sparseValues  = 1
	sparseIndices = 2
	sparseDims    = 3

	valueInfoName = 1
	valueInfoType = 2

	typeTensor       = 1
	typeSequence     = 4
	typeMap          = 5
	typeOpaque       = 7
	typeSparseTensor = 8
	typeOptional     = 9

	funcName   = 1
	funcDomain = 10
)

// maxRank caps the dims of one tensor or shape.
const maxRank = 1024

// Open reads the model at path (a regular file) without loading its
// weights, and checks its external data against the files in its
// directory. Errors name the file and the problem.
func Open(path string) (*Model, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	defer f.Close()
	return ReadFile(f, filepath.Dir(path))
}

// ReadFile reads the model from f, which must be a regular file (it may
// have been opened with O_NOFOLLOW by the caller); dir is the directory
// external data must stay in ("" = don't check files). Errors name f.
func ReadFile(f *os.File, dir string) (*Model, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("onnx: %s: %w: not a regular file (%s)", f.Name(), ErrNotONNX, st.Mode().Type())
	}
	m, err := Read(f, st.Size(), dir)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", f.Name(), err)
	}
	return m, nil
}

// DefaultBudget is the memory the reader may spend on a model's structure
// (nodes, names, shapes, spans) unless Options say otherwise. It holds the
// graphs of models that fit a Jetson many times over, and keeps a small
// hostile file (millions of empty nodes) from costing gigabytes: the
// reader refuses such a model with ErrTooLarge instead.
const DefaultBudget = 16 << 20

// Options tune Read.
type Options struct {
	// Dir is the model's directory for external-data checks ("" = check
	// locations lexically only, don't look at files).
	Dir string
	// Budget caps the bytes of structure kept (0 = DefaultBudget).
	Budget int64
}

// Read parses a model of size bytes from r. Only the structure is read:
// tensor data is skipped and recorded as offsets. dir is the model's
// directory for external-data checks ("" = check locations lexically
// only, don't look at files).
func Read(r io.ReaderAt, size int64, dir string) (*Model, error) {
	return ReadWith(r, size, Options{Dir: dir})
}

// ReadWith is Read with options.
func ReadWith(r io.ReaderAt, size int64, o Options) (*Model, error) {
	dir := o.Dir
	if size < 0 {
		return nil, &FormatError{Off: -1, What: "model", Err: ErrNotONNX}
	}
	if size > MaxFileSize {
		return nil, &FormatError{Off: -1, What: fmt.Sprintf("model of %d bytes (protobuf limit is 2 GiB; use external data)", size), Err: ErrTooLarge}
	}
	if size == 0 {
		return nil, &FormatError{Off: -1, What: "empty file", Err: ErrTruncated}
	}
	d := newDecoder(r, size)
	d.budget = o.Budget
	if d.budget <= 0 {
		d.budget = DefaultBudget
	}
	m := &Model{Size: size, Opsets: map[string]int64{}, Metadata: map[string]string{}}
	if err := d.model(m); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := m.checkExternal(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// check refuses prefixes of a model: every complete model has a graph and
// (IR version 3 and later) opset imports.
func (m *Model) check() error {
	if m.IRVersion <= 0 {
		return &FormatError{Off: -1, What: "model has no ir_version", Err: ErrNotONNX}
	}
	if m.Graph == nil {
		return &FormatError{Off: -1, What: "model has no graph", Err: ErrTruncated}
	}
	if len(m.Opsets) == 0 && m.IRVersion >= 3 {
		return &FormatError{Off: -1, What: "model has no opset_import", Err: ErrTruncated}
	}
	return nil
}

// after finishes a field: length-delimited and fixed payloads end where the
// header said, whatever the sub-parser consumed; it returns the field's
// span.
func (d *decoder) after(f field) FieldSpan {
	if f.typ != protowire.VarintType {
		d.pos = f.end()
	}
	return FieldSpan{Num: int(f.num), Span: Span{Off: f.start, Len: d.pos - f.start}}
}

func (d *decoder) model(m *Model) error {
	const what = "ModelProto"
	end := d.size
	for {
		f, ok, err := d.next(end, what)
		if err != nil || !ok {
			return err
		}
		if skipped, err := d.skipMistyped(m, f, end); err != nil || skipped {
			if err != nil {
				return err
			}
			continue
		}
		switch f.num {
		case modelIRVersion:
			v, ok, err := d.uint(f, end, "ir_version")
			if err != nil {
				return err
			}
			if ok {
				m.IRVersion = int64(v)
			}
		case modelProducerName:
			if err := d.setStr(f, end, &m.ProducerName, "producer_name"); err != nil {
				return err
			}
		case modelProducerVersion:
			if err := d.setStr(f, end, &m.ProducerVersion, "producer_version"); err != nil {
				return err
			}
		case modelDomain:
			if err := d.setStr(f, end, &m.Domain, "domain"); err != nil {
				return err
			}
		case modelModelVersion:
			v, ok, err := d.uint(f, end, "model_version")
			if err != nil {
				return err
			}
			if ok {
				m.ModelVersion = int64(v)
			}
		case modelGraph:
			if f.typ == protowire.BytesType {
				if m.Graph == nil {
					m.Graph = &Graph{}
				}
				// A repeated message field merges (protobuf semantics).
				m.Graph.Span = Span{Off: f.data, Len: f.n}
				if err := d.graph(m, m.Graph, f.end(), 0); err != nil {
					return err
				}
			}
		case modelOpsetImport:
			if f.typ == protowire.BytesType {
				dom, ver, err := d.opset(f.end())
				if err != nil {
					return err
				}
				if dom == "ai.onnx" {
					dom = ""
				}
				m.Opsets[dom] = ver
			}
		case modelMetadataProps:
			if f.typ == protowire.BytesType {
				k, v, err := d.entry(f.end(), "metadata_props")
				if err != nil {
					return err
				}
				m.Metadata[k] = v
			}
		case modelFunctions:
			if f.typ == protowire.BytesType {
				fn, err := d.function(f)
				if err != nil {
					return err
				}
				m.Functions = append(m.Functions, fn)
			}
		default:
			if err := d.skipChecked(what, f, end, 0); err != nil {
				return err
			}
		}
		if err := d.keepField(&m.Fields, f); err != nil {
			return err
		}
	}
}

// skipMistyped skips a message field of ModelProto sent with another wire
// type (an unknown field to protobuf) and reports whether it did.
func (d *decoder) skipMistyped(m *Model, f field, end int64) (bool, error) {
	switch f.num {
	case modelGraph, modelOpsetImport, modelMetadataProps, modelFunctions:
	default:
		return false, nil
	}
	if f.typ == protowire.BytesType {
		return false, nil
	}
	if err := d.skipChecked("ModelProto", f, end, 0); err != nil {
		return true, err
	}
	return true, d.keepField(&m.Fields, f)
}

func (d *decoder) setStr(f field, end int64, dst *string, what string) error {
	s, ok, err := d.str(f, end, maxString, what)
	if ok {
		*dst = s
	}
	return err
}

func (d *decoder) opset(end int64) (string, int64, error) {
	var dom string
	var ver int64
	for {
		f, ok, err := d.next(end, "opset_import")
		if err != nil {
			return "", 0, err
		}
		if !ok {
			return dom, ver, nil
		}
		switch f.num {
		case 1:
			err = d.setStr(f, end, &dom, "opset_import.domain")
		case 2:
			var v uint64
			v, ok, err = d.uint(f, end, "opset_import.version")
			if ok {
				ver = int64(v)
			}
		default:
			err = d.skipChecked("OperatorSetIdProto", f, end, 0)
		}
		if err != nil {
			return "", 0, err
		}
		d.after(f)
	}
}

// entry reads a StringStringEntryProto.
func (d *decoder) entry(end int64, what string) (k, v string, err error) {
	for {
		f, ok, err := d.next(end, what)
		if err != nil {
			return "", "", err
		}
		if !ok {
			return k, v, nil
		}
		switch f.num {
		case 1:
			err = d.setStr(f, end, &k, what+".key")
		case 2:
			err = d.setStr(f, end, &v, what+".value")
		default:
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return "", "", err
		}
		d.after(f)
	}
}

func (d *decoder) function(outer field) (Function, error) {
	fn := Function{Span: Span{Off: outer.start, Len: outer.end() - outer.start}}
	end := outer.end()
	for {
		f, ok, err := d.next(end, "FunctionProto")
		if err != nil {
			return fn, err
		}
		if !ok {
			return fn, nil
		}
		switch f.num {
		case funcName:
			err = d.setStr(f, end, &fn.Name, "function name")
		case funcDomain:
			err = d.setStr(f, end, &fn.Domain, "function domain")
		default:
			err = d.skipChecked("FunctionProto", f, end, 0)
		}
		if err != nil {
			return fn, err
		}
		d.after(f)
	}
}

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
			payload := Span{Off: f.data, Len: f.n}
			if f.typ != protowire.BytesType {
				// An unpacked repeated number: the value itself.
				payload.Off = f.data
				if err = d.skipChecked(what, f, end, 0); err != nil {
					break
				}
				payload.Len = d.pos - f.data
			}
			if f.typ == protowire.BytesType {
				if err = d.checkPacked(f, t.Name); err != nil {
					break
				}
			}
			if f.num == tensorStringData && f.typ == protowire.BytesType {
				t.StringBytes += f.n
			}
			if t.DataField == int(f.num) && f.num != tensorRawData {
				// Another value of a repeated field: extend the span.
				t.Data.Len = payload.End() - t.Data.Off
			} else {
				t.DataField, t.Data = int(f.num), payload
			}
			if f.typ == protowire.BytesType {
				d.pos = f.end()
			}
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
			err = d.skipChecked(what, f, end, 0)
		}
		if err != nil {
			return nil, err
		}
		d.after(f)
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
