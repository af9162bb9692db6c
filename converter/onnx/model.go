package onnx

import (
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"strconv"
)

// Sentinels classifying why a file was refused; use errors.Is.
var (
	// ErrNotONNX: the bytes are not a well-formed ONNX ModelProto.
	ErrNotONNX = errors.New("not an ONNX model")
	// ErrTruncated: the file ends inside a field, or a part every complete
	// model has (graph, opset imports) is missing: typically an upload in
	// progress.
	ErrTruncated = errors.New("truncated ONNX model")
	// ErrExternalData: an external-data reference is unsafe (absolute,
	// "..", symlink leaving the model's directory) or does not match the
	// files next to the model.
	ErrExternalData = errors.New("bad external data")
	// ErrTooLarge: the model exceeds a limit of the reader (2 GiB protobuf
	// limit, item counts, string sizes, nesting depth).
	ErrTooLarge = errors.New("model exceeds reader limits")
)

// Span is a byte range [Off, Off+Len) of the model file.
type Span struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// End returns Off+Len.
func (s Span) End() int64 { return s.Off + s.Len }

// FieldSpan is one field of a message as encoded in the file: Span covers
// the tag, the length prefix (if any) and the payload, so copying the
// FieldSpans of a message in order reproduces it.
type FieldSpan struct {
	Num  int  // protobuf field number
	Span Span // tag through end of payload
}

// Model is what the reader keeps of a ModelProto: structure, names, types,
// shapes and where each tensor's data lives, never the data itself.
type Model struct {
	IRVersion       int64
	Opsets          map[string]int64 // domain ("" = ai.onnx) -> version
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Graph           *Graph
	Metadata        map[string]string
	// Functions lists the model-local functions (domain, name).
	Functions []Function

	// Size is the model file's size in bytes.
	Size int64
	// Fields lists the top-level ModelProto fields in file order.
	Fields []FieldSpan
	// Dir is the directory external data was checked against ("" = not checked).
	Dir string

	tensors []*Tensor // every TensorProto kept, in all graphs and attributes
}

// Function is a model-local function (ModelProto.functions).
type Function struct {
	Domain, Name string
	Span         Span
}

// Graph is a GraphProto: the main graph or a sub-graph of If/Loop/Scan.
type Graph struct {
	Name               string
	Nodes              []*Node
	Initializers       []*Tensor
	SparseInitializers []*SparseTensor
	Inputs             []*ValueInfo
	Outputs            []*ValueInfo
	ValueInfo          []*ValueInfo

	// Span is the GraphProto's payload (the message itself, without the
	// tag and length that introduce it).
	Span Span
	// Fields lists the GraphProto's fields in file order.
	Fields []FieldSpan
}

// Node is a NodeProto.
type Node struct {
	Name       string
	OpType     string
	Domain     string
	Inputs     []string
	Outputs    []string
	Attributes []*Attribute
	// Span covers the whole GraphProto.node field (tag, length, message).
	Span Span
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Subgraphs returns the graphs held by the node's attributes (If branches,
// Loop and Scan bodies).
func (n *Node) Subgraphs() []*Graph {
	var gs []*Graph
	for _, a := range n.Attributes {
		if a.G != nil {
			gs = append(gs, a.G)
		}
		gs = append(gs, a.Graphs...)
	}
	return gs
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute types.
const (
	AttrUndefined    AttrType = 0
	AttrFloat        AttrType = 1
	AttrInt          AttrType = 2
	AttrString       AttrType = 3
	AttrTensor       AttrType = 4
	AttrGraph        AttrType = 5
	AttrFloats       AttrType = 6
	AttrInts         AttrType = 7
	AttrStrings      AttrType = 8
	AttrTensors      AttrType = 9
	AttrGraphs       AttrType = 10
	AttrSparseTensor AttrType = 11
	AttrTypeProto    AttrType = 13
)

// Attribute is an AttributeProto. Scalars are kept; a string value is kept
// when it is at most 4 KiB (SSpan always says where it is); lists are kept
// up to 65,536 items (NInts/NFloats/NStrings count them all); tensors keep
// no data.
type Attribute struct {
	Name        string
	RefAttrName string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	SSpan       Span
	Ints        []int64
	Floats      []float32
	Strings     []string
	NInts       int
	NFloats     int
	NStrings    int
	T           *Tensor
	Tensors     []*Tensor
	G           *Graph
	Graphs      []*Graph
	Span        Span // the whole NodeProto.attribute field
}

// DataLocation tells where a tensor's data lives.
type DataLocation int32

// Data locations.
const (
	Embedded DataLocation = 0 // in the model file
	External DataLocation = 1 // in another file (Tensor.External)
)

// Tensor is a TensorProto without its data.
type Tensor struct {
	Name     string
	DataType DataType
	Dims     []int64
	Location DataLocation
	// Data is where the embedded data lives in the model file: the
	// payload of raw_data, or of the typed repeated field (from the first
	// to the last occurrence). Zero for external data and empty tensors.
	Data Span
	// DataField is the TensorProto field number holding the data (9 for
	// raw_data, 4 for float_data, ...), 0 if none.
	DataField int
	// StringBytes sums the lengths of string_data entries.
	StringBytes int64
	// External is set when Location is External.
	External *ExternalRef
	// Span covers the whole field that holds the TensorProto (tag,
	// length, message) in its parent.
	Span Span
}

// Elements returns the product of the dims (1 for a scalar), 0 if a dim is
// negative, and math.MaxInt64 on overflow.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return 0
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return math.MaxInt64
		}
		n = int64(lo)
	}
	return n
}

// Bytes returns the size of the tensor's data: elements × element size
// (sub-byte types rounded up to a whole byte), the sum of string lengths
// for STRING tensors, 0 for unknown types. It does not depend on where the
// data lives.
func (t *Tensor) Bytes() int64 {
	if t.DataType == String {
		return t.StringBytes
	}
	return t.DataType.bytesFor(t.Elements())
}

// SparseTensor is a SparseTensorProto (GraphProto.sparse_initializer).
type SparseTensor struct {
	Values  *Tensor
	Indices *Tensor
	Dims    []int64
	Span    Span
}

// Name returns the name of the sparse tensor (its values' name).
func (s *SparseTensor) Name() string {
	if s.Values == nil {
		return ""
	}
	return s.Values.Name
}

// ExternalRef is a tensor's external_data reference.
type ExternalRef struct {
	Tensor   string `json:"tensor"`
	Location string `json:"location"`
	Offset   int64  `json:"offset"`
	Length   int64  `json:"length"` // -1: to the end of the file
	Checksum string `json:"checksum,omitempty"`
	// Path is the checked path of the file (empty when not checked).
	Path string `json:"-"`
	// Need is the tensor's data size (Tensor.Bytes), what the file must
	// hold from Offset; At is where the tensor is in the model file. With
	// them a reader of the model's Summary checks its external data
	// against a directory (CheckExternalData) without parsing it again.
	Need int64 `json:"-"`
	At   int64 `json:"-"`
}

// ValueInfo is a ValueInfoProto: a graph input, output or intermediate
// value. As JSON it is {"name", "dtype", "shape"} (see MarshalJSON).
type ValueInfo struct {
	Name string
	Type *Type // nil when the value has no type
	Span Span  // the whole GraphProto field holding it
}

// DType returns the type as `trtd inspect` prints it (Type.String).
func (v *ValueInfo) DType() string { return v.Type.String() }

// Shape returns the dims of a tensor or sparse tensor value, and false when
// the rank is unknown or the value is not a tensor.
func (v *ValueInfo) Shape() ([]Dim, bool) {
	if v.Type == nil || (v.Type.Kind != TypeTensor && v.Type.Kind != TypeSparseTensor) || !v.Type.HasShape {
		return nil, false
	}
	return v.Type.Shape, true
}

// Dynamic reports whether the value is a tensor whose shape is not fully
// fixed: unknown rank, a symbolic or unknown dim, or a negative size.
func (v *ValueInfo) Dynamic() bool {
	if v.Type == nil || (v.Type.Kind != TypeTensor && v.Type.Kind != TypeSparseTensor) {
		return false
	}
	shape, ok := v.Shape()
	if !ok {
		return true
	}
	for _, d := range shape {
		if d.Kind != DimValue || d.Value < 0 {
			return true
		}
	}
	return false
}

// MarshalJSON encodes {"name", "dtype", "shape"}: shape is null when the
// rank is unknown, else a list of integers (fixed dims), strings (symbolic
// dims) and nulls (unknown dims).
func (v ValueInfo) MarshalJSON() ([]byte, error) {
	type out struct {
		Name  string `json:"name"`
		DType string `json:"dtype"`
		Shape []any  `json:"shape"`
	}
	return json.Marshal(out{Name: v.Name, DType: v.DType(), Shape: v.ShapeValues()})
}

// ShapeValues is the shape as JSON and the reports show it: an int64 per
// fixed dim, the name of a symbolic one, nil for an unknown one; nil for an
// unknown rank.
func (v ValueInfo) ShapeValues() []any {
	shape, ok := v.Shape()
	if !ok {
		return nil
	}
	out := make([]any, len(shape))
	for i, d := range shape {
		switch d.Kind {
		case DimValue:
			out[i] = d.Value
		case DimParam:
			out[i] = d.Param
		}
	}
	return out
}

// TypeKind is the kind of a TypeProto.
type TypeKind int

// Type kinds.
const (
	TypeNone TypeKind = iota
	TypeTensor
	TypeSparseTensor
	TypeSequence
	TypeMap
	TypeOptional
	TypeOpaque
)

// Type is a TypeProto.
type Type struct {
	Kind     TypeKind
	Elem     DataType // tensor, sparse tensor; map key
	HasShape bool     // false: rank unknown
	Shape    []Dim
	Inner    *Type // sequence, optional element; map value
	Opaque   string
}

// String renders the type the way `trtd inspect` prints dtypes: the ONNX
// element type name for tensors ("FLOAT"), seq(T), map(K,V), optional(T),
// sparse(T), opaque(domain.name); "" when absent.
func (t *Type) String() string {
	if t == nil {
		return ""
	}
	switch t.Kind {
	case TypeTensor:
		return t.Elem.String()
	case TypeSparseTensor:
		return "sparse(" + t.Elem.String() + ")"
	case TypeSequence:
		return "seq(" + t.Inner.String() + ")"
	case TypeOptional:
		return "optional(" + t.Inner.String() + ")"
	case TypeMap:
		return "map(" + t.Elem.String() + "," + t.Inner.String() + ")"
	case TypeOpaque:
		return "opaque(" + t.Opaque + ")"
	}
	return ""
}

// DimKind tells what a dimension holds.
type DimKind uint8

// Dimension kinds.
const (
	DimUnknown DimKind = iota // neither value nor parameter
	DimValue                  // fixed size
	DimParam                  // symbolic name
)

// Dim is one TensorShapeProto.Dimension.
type Dim struct {
	Kind  DimKind
	Value int64
	Param string
}

// Fixed reports whether the dimension has a fixed size.
func (d Dim) Fixed() bool { return d.Kind == DimValue }

// String renders the dim: the number, the symbolic name, or "?".
func (d Dim) String() string {
	switch d.Kind {
	case DimValue:
		return strconv.FormatInt(d.Value, 10)
	case DimParam:
		return d.Param
	}
	return "?"
}

// DataType is TensorProto.DataType.
type DataType int32

// Data types (TensorProto.DataType).
const (
	Undefined  DataType = 0
	Float      DataType = 1
	Uint8      DataType = 2
	Int8       DataType = 3
	Uint16     DataType = 4
	Int16      DataType = 5
	Int32      DataType = 6
	Int64      DataType = 7
	String     DataType = 8
	Bool       DataType = 9
	Float16    DataType = 10
	Double     DataType = 11
	Uint32     DataType = 12
	Uint64     DataType = 13
	Complex64  DataType = 14
	Complex128 DataType = 15
	BFloat16   DataType = 16
)

// dataTypes: name and size in bits of each known type.
var dataTypes = map[DataType]struct {
	name string
	bits int64
}{
	0:  {"UNDEFINED", 0},
	1:  {"FLOAT", 32},
	2:  {"UINT8", 8},
	3:  {"INT8", 8},
	4:  {"UINT16", 16},
	5:  {"INT16", 16},
	6:  {"INT32", 32},
	7:  {"INT64", 64},
	8:  {"STRING", 0},
	9:  {"BOOL", 8},
	10: {"FLOAT16", 16},
	11: {"DOUBLE", 64},
	12: {"UINT32", 32},
	13: {"UINT64", 64},
	14: {"COMPLEX64", 64},
	15: {"COMPLEX128", 128},
	16: {"BFLOAT16", 16},
	17: {"FLOAT8E4M3FN", 8},
	18: {"FLOAT8E4M3FNUZ", 8},
	19: {"FLOAT8E5M2", 8},
	20: {"FLOAT8E5M2FNUZ", 8},
	21: {"UINT4", 4},
	22: {"INT4", 4},
	23: {"FLOAT4E2M1", 4},
	24: {"FLOAT8E8M0", 8},
	25: {"UINT2", 2},
	26: {"INT2", 2},
}

// String returns the ONNX name of the type ("FLOAT"), or the number for a
// type this reader does not know.
func (t DataType) String() string {
	if d, ok := dataTypes[t]; ok {
		return d.name
	}
	return strconv.FormatInt(int64(t), 10)
}

// Bits returns the element size in bits, 0 for STRING and unknown types.
func (t DataType) Bits() int64 { return dataTypes[t].bits }

func (t DataType) bytesFor(n int64) int64 {
	b := t.Bits()
	if b == 0 || n <= 0 {
		return 0
	}
	if n > math.MaxInt64/b {
		return math.MaxInt64
	}
	return (n*b + 7) / 8
}
