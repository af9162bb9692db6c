// Package onnx reads ONNX models without loading their weights.
//
// The reader walks the protobuf wire format of a ModelProto straight from an
// io.ReaderAt, through a small window (a few KiB to 256 KiB), and keeps only
// structure: nodes, attributes, graph inputs and outputs with their types and
// shapes, initializers as (name, type, dims, byte range of their data),
// opset imports, metadata, external-data references and the sub-graphs of
// If/Loop/Scan. Tensor payloads are skipped by offset, so reading a 500 MB
// model costs a few MiB of memory.
//
// Every length in the file is checked against the enclosing message and the
// file size before anything is allocated or read; counts, string sizes and
// nesting depth are capped (ErrTooLarge). A file that ends inside a field,
// or lacks the graph or the opset imports, is refused with ErrTruncated, so
// the reader doubles as the "is this upload complete" check.
//
// For tools that rewrite models by copying bytes (the graph splitter), the
// reader records the byte range of every top-level ModelProto field
// (Model.Fields), of every GraphProto field (Graph.Fields), and of each
// node, initializer and value info (Span).
package onnx
