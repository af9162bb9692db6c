package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	tensorSegment      = 3
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
	defer func() { _ = f.Close() }() // read-only; ReadFile returns any read error
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
		if err := d.modelField(m, f, end); err != nil {
			return err
		}
		if err := d.keepField(&m.Fields, f); err != nil {
			return err
		}
	}
}

// modelField reads one field of ModelProto. Its message fields arrive with
// the bytes wire type: skipMistyped has taken the others.
func (d *decoder) modelField(m *Model, f field, end int64) error {
	switch f.num {
	case modelIRVersion:
		return d.setInt(f, end, &m.IRVersion, "ir_version")
	case modelProducerName:
		return d.setStr(f, end, &m.ProducerName, "producer_name")
	case modelProducerVersion:
		return d.setStr(f, end, &m.ProducerVersion, "producer_version")
	case modelDomain:
		return d.setStr(f, end, &m.Domain, "domain")
	case modelModelVersion:
		return d.setInt(f, end, &m.ModelVersion, "model_version")
	case modelGraph:
		if m.Graph == nil {
			m.Graph = &Graph{}
		}
		// A repeated message field merges (protobuf semantics).
		m.Graph.Span = Span{Off: f.data, Len: f.n}
		return d.graph(m, m.Graph, f.end(), 0)
	case modelOpsetImport:
		dom, ver, err := d.opset(f.end())
		if err != nil {
			return err
		}
		if dom == "ai.onnx" {
			dom = ""
		}
		m.Opsets[dom] = ver
		return nil
	case modelMetadataProps:
		k, v, err := d.entry(f.end(), "metadata_props")
		if err != nil {
			return err
		}
		m.Metadata[k] = v
		return nil
	case modelFunctions:
		fn, err := d.function(f)
		if err != nil {
			return err
		}
		m.Functions = append(m.Functions, fn)
		return nil
	}
	return d.skipChecked("ModelProto", f, end, 0)
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

// setInt reads a varint field into dst (a mistyped one is skipped).
func (d *decoder) setInt(f field, end int64, dst *int64, what string) error {
	v, ok, err := d.uint(f, end, what)
	if ok {
		*dst = int64(v)
	}
	return err
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
