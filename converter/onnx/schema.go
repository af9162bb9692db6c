package onnx

import "google.golang.org/protobuf/encoding/protowire"

// The reader keeps only part of a model, but it must refuse what
// python-onnx (onnx 1.12, C++ protobuf) refuses, so the fields it does not
// keep are still walked with this schema: sub-messages are checked
// recursively and packed numbers are checked for framing, without keeping
// anything. Fields newer than onnx 1.12 (metadata_props of graphs and
// nodes, function attributes, ...) are unknown fields to that parser and
// are skipped the same way here.

type wireKind uint8

const (
	kVarint wireKind = iota
	kFixed32
	kFixed64
	kBytes
	kMsg
)

type schemaField struct {
	kind     wireKind
	msg      string // for kMsg
	repeated bool
}

func msgF(name string) schemaField  { return schemaField{kind: kMsg, msg: name} }
func msgsF(name string) schemaField { return schemaField{kind: kMsg, msg: name, repeated: true} }

var (
	varintF   = schemaField{kind: kVarint}
	varintsF  = schemaField{kind: kVarint, repeated: true}
	fixed32sF = schemaField{kind: kFixed32, repeated: true}
	fixed64sF = schemaField{kind: kFixed64, repeated: true}
	bytesF    = schemaField{kind: kBytes}
)

// schema lists onnx.proto (onnx 1.12) field kinds by message.
var schema = map[string]map[protowire.Number]schemaField{
	"ModelProto": {1: varintF, 2: bytesF, 3: bytesF, 4: bytesF, 5: varintF, 6: bytesF, 7: msgF("GraphProto"),
		8: msgsF("OperatorSetIdProto"), 14: msgsF("StringStringEntryProto"), 20: msgsF("TrainingInfoProto"), 25: msgsF("FunctionProto")},
	"OperatorSetIdProto":     {1: bytesF, 2: varintF},
	"StringStringEntryProto": {1: bytesF, 2: bytesF},
	"TrainingInfoProto": {1: msgF("GraphProto"), 2: msgF("GraphProto"), 3: msgsF("StringStringEntryProto"),
		4: msgsF("StringStringEntryProto")},
	"FunctionProto": {1: bytesF, 4: bytesF, 5: bytesF, 6: bytesF, 7: msgsF("NodeProto"), 8: bytesF,
		9: msgsF("OperatorSetIdProto"), 10: bytesF},
	"GraphProto": {1: msgsF("NodeProto"), 2: bytesF, 5: msgsF("TensorProto"), 15: msgsF("SparseTensorProto"),
		10: bytesF, 11: msgsF("ValueInfoProto"), 12: msgsF("ValueInfoProto"), 13: msgsF("ValueInfoProto"),
		14: msgsF("TensorAnnotation")},
	"TensorAnnotation": {1: bytesF, 2: msgsF("StringStringEntryProto")},
	"NodeProto":        {1: bytesF, 2: bytesF, 3: bytesF, 4: bytesF, 5: msgsF("AttributeProto"), 6: bytesF, 7: bytesF},
	"AttributeProto": {1: bytesF, 21: bytesF, 13: bytesF, 20: varintF, 2: {kind: kFixed32}, 3: varintF, 4: bytesF,
		5: msgF("TensorProto"), 6: msgF("GraphProto"), 22: msgF("SparseTensorProto"), 14: msgF("TypeProto"),
		7: fixed32sF, 8: varintsF, 9: bytesF, 10: msgsF("TensorProto"), 11: msgsF("GraphProto"),
		23: msgsF("SparseTensorProto"), 15: msgsF("TypeProto")},
	"TensorProto": {1: varintsF, 2: varintF, 3: msgF("TensorProto.Segment"), 4: fixed32sF, 5: varintsF, 6: bytesF,
		7: varintsF, 8: bytesF, 12: bytesF, 9: bytesF, 13: msgsF("StringStringEntryProto"), 14: varintF,
		10: fixed64sF, 11: varintsF},
	"TensorProto.Segment": {1: varintF, 2: varintF},
	"SparseTensorProto":   {1: msgF("TensorProto"), 2: msgF("TensorProto"), 3: varintsF},
	"ValueInfoProto":      {1: bytesF, 2: msgF("TypeProto"), 3: bytesF},
	"TypeProto": {1: msgF("TypeProto.Tensor"), 4: msgF("TypeProto.Sequence"), 5: msgF("TypeProto.Map"),
		9: msgF("TypeProto.Optional"), 8: msgF("TypeProto.SparseTensor"), 7: msgF("TypeProto.Opaque"), 6: bytesF},
	"TypeProto.Tensor":           {1: varintF, 2: msgF("TensorShapeProto")},
	"TypeProto.SparseTensor":     {1: varintF, 2: msgF("TensorShapeProto")},
	"TypeProto.Sequence":         {1: msgF("TypeProto")},
	"TypeProto.Optional":         {1: msgF("TypeProto")},
	"TypeProto.Map":              {1: varintF, 2: msgF("TypeProto")},
	"TypeProto.Opaque":           {1: bytesF, 2: bytesF},
	"TensorShapeProto":           {1: msgsF("TensorShapeProto.Dimension")},
	"TensorShapeProto.Dimension": {1: varintF, 2: bytesF, 3: bytesF},
}

// skipChecked skips field f of message msg, checking its content the way
// the reference parser would: a sub-message recursively, a packed
// repeated number for framing.
func (d *decoder) skipChecked(msg string, f field, end int64, depth int) error {
	sf, known := schema[msg][f.num]
	if !known || f.typ != protowire.BytesType {
		return d.skip(f, end, msg)
	}
	switch {
	case sf.kind == kMsg:
		if err := d.validate(sf.msg, f.end(), depth+1); err != nil {
			return err
		}
		d.pos = f.end()
		return nil
	case sf.repeated && sf.kind == kFixed32 && f.n%4 != 0,
		sf.repeated && sf.kind == kFixed64 && f.n%8 != 0:
		return d.fail(f.start, ErrNotONNX, "%s %s: packed length %d does not fit its elements", msg, fieldName(msg, f.num), f.n)
	case sf.repeated && sf.kind == kVarint:
		for d.pos < f.end() {
			if _, err := d.varint(f.end(), msg); err != nil {
				return err
			}
		}
		return nil
	}
	return d.skip(f, end, msg)
}

// validate walks a message that the reader does not keep.
func (d *decoder) validate(msg string, end int64, depth int) error {
	if depth > maxDepth {
		return d.fail(d.pos, ErrTooLarge, "%s nested more than %d deep", msg, maxDepth)
	}
	for {
		f, ok, err := d.next(end, msg)
		if err != nil || !ok {
			return err
		}
		if err := d.skipChecked(msg, f, end, depth); err != nil {
			return err
		}
		d.after(f)
	}
}
