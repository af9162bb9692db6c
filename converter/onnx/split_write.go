package onnx

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trtd/trtd/internal/atomicfile"
)

// A sub-model is written as a sequence of pieces: small literal bytes the
// splitter encodes (field headers, the graph name, derived value infos)
// and byte ranges copied from the model file or its external-data files
// (nodes, initializers, value infos). Lengths are all known up front, so
// the graph's length prefix is written before its contents and nothing
// large is ever held in memory.
type piece struct {
	lit []byte
	src *os.File // copy [off, off+n) of src after lit
	off int64
	n   int64
}

func (pc piece) size() int64 { return int64(len(pc.lit)) + pc.n }

// copyThreshold: ranges at least this long are copied file to file
// (copy_file_range where the kernel has it); shorter ones go through the
// write buffer.
const copyThreshold = 64 << 10

const writeBuffer = 256 << 10

// partPieces returns the pieces of part i's file and its size; ext
// caches the external-data files opened (the caller closes them).
func (p *splitPlan) partPieces(src *os.File, i int, ext map[string]*os.File) ([]piece, int64, error) {
	graph, err := p.graphPieces(src, i, ext)
	if err != nil {
		return nil, 0, err
	}
	var glen int64
	for _, pc := range graph {
		glen += pc.size()
	}
	var pieces []piece
	wroteGraph := false
	for _, f := range p.m.Fields {
		if f.Num != modelGraph {
			pieces = append(pieces, piece{src: src, off: f.Span.Off, n: f.Span.Len})
			continue
		}
		if wroteGraph {
			continue // a repeated graph field was merged into the one written
		}
		wroteGraph = true
		hdr := protowire.AppendTag(nil, modelGraph, protowire.BytesType)
		hdr = protowire.AppendVarint(hdr, uint64(glen))
		pieces = append(pieces, piece{lit: hdr})
		pieces = append(pieces, graph...)
	}
	var total int64
	for _, pc := range pieces {
		total += pc.size()
	}
	if total > MaxFileSize {
		return nil, 0, fmt.Errorf("%w: part %d would be %d bytes, over the 2 GiB protobuf limit; split into more parts", ErrSplit, i+1, total)
	}
	return pieces, total, nil
}

// writePart writes part i to path (through a temporary file and a rename)
// and returns its size.
func (p *splitPlan) writePart(src *os.File, i int, path string) (int64, error) {
	ext := map[string]*os.File{}
	defer closeAll(ext)
	pieces, total, err := p.partPieces(src, i, ext)
	if err != nil {
		return 0, err
	}
	// The fsync, when asked for, follows for all parts at once (Sync).
	err = atomicfile.WriteWith(path, 0o644, func(wr io.Writer) error {
		// Write hands over the temporary *os.File: its ReadFrom copies
		// weights file to file in the kernel.
		w := &pieceWriter{f: wr.(*os.File), buf: make([]byte, 0, writeBuffer)}
		for _, pc := range pieces {
			if err := w.write(pc); err != nil {
				return err
			}
		}
		if err := w.flush(); err != nil {
			return err
		}
		if w.off != total {
			return fmt.Errorf("wrote %d bytes, planned %d", w.off, total)
		}
		return nil
	}, atomicfile.Options{NoSync: true})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// graphPieces returns the pieces of part i's GraphProto payload.
func (p *splitPlan) graphPieces(src *os.File, i int, ext map[string]*os.File) ([]piece, error) {
	pp := p.parts[i]
	g := p.g
	var out []piece
	lit := func(b []byte) { out = append(out, piece{lit: b}) }
	span := func(s Span) { out = append(out, piece{src: src, off: s.Off, n: s.Len}) }

	name := g.Name
	if name == "" {
		name = "graph"
	}
	lit(appendString(nil, graphName, name+"_part"+strconv.Itoa(i+1)))
	for _, c := range pp.consts {
		span(g.Nodes[c].Span)
	}
	for pos := pp.start; pos < pp.end; pos++ {
		span(g.Nodes[p.order[pos]].Span)
	}
	for _, t := range pp.inits {
		if t.External == nil {
			span(t.Span)
			continue
		}
		pc, err := externalPiece(src, t, ext)
		if err != nil {
			return nil, err
		}
		out = append(out, pc...)
	}
	for _, s := range pp.sparse {
		span(s.Span)
	}
	for _, f := range g.Fields {
		if f.Num == 10 { // doc_string
			span(f.Span)
		}
	}
	inPart := map[string]bool{}
	for _, t := range pp.inits {
		inPart[t.Name] = true
	}
	for _, s := range pp.sparse {
		inPart[s.Name()] = true
	}
	// Inputs: the model's own input entries (and, as in the model,
	// those naming initializers of this part), then the crossing values.
	for _, v := range g.Inputs {
		if inPart[v.Name] {
			span(v.Span)
		}
	}
	for _, v := range pp.inputs {
		pcs, err := p.valuePieces(src, v, graphInput)
		if err != nil {
			return nil, err
		}
		out = append(out, pcs...)
	}
	isOut := map[string]bool{}
	for _, v := range pp.outputs {
		isOut[v] = true
		pcs, err := p.valuePieces(src, v, graphOutput)
		if err != nil {
			return nil, err
		}
		out = append(out, pcs...)
	}
	for _, v := range g.ValueInfo {
		if pp.values[v.Name] && !isOut[v.Name] {
			span(v.Span)
		}
	}
	return out, nil
}

// valuePieces encodes value v as GraphProto field num: the model's own
// entry when it has one (re-tagged if it is of another field), else a
// ValueInfoProto built from the derived type.
func (p *splitPlan) valuePieces(src *os.File, v string, num protowire.Number) ([]piece, error) {
	var vi *ValueInfo
	var viNum protowire.Number
	switch {
	case num == graphInput && p.inputs[v] != nil:
		vi, viNum = p.inputs[v], graphInput
	case num == graphOutput && p.outputs[v] != nil:
		vi, viNum = p.outputs[v], graphOutput
	default:
		if ti := p.types[v]; ti != nil && ti.vi != nil {
			vi = ti.vi
			viNum = -1
		}
	}
	if vi != nil && viNum == num {
		return []piece{{src: src, off: vi.Span.Off, n: vi.Span.Len}}, nil
	}
	if vi != nil {
		payload, err := payloadOf(src, vi.Span)
		if err != nil {
			return nil, err
		}
		hdr := protowire.AppendTag(nil, num, protowire.BytesType)
		hdr = protowire.AppendVarint(hdr, uint64(payload.Len))
		return []piece{{lit: hdr, src: src, off: payload.Off, n: payload.Len}}, nil
	}
	ti := p.types[v]
	if ti == nil || ti.t == nil {
		return nil, fmt.Errorf("%w: value %q crosses a cut but has no known type", ErrSplit, v)
	}
	msg := appendString(nil, valueInfoName, v)
	msg = protowire.AppendTag(msg, valueInfoType, protowire.BytesType)
	msg = protowire.AppendBytes(msg, appendType(nil, ti.t))
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return []piece{{lit: protowire.AppendBytes(b, msg)}}, nil
}

// payloadOf returns the payload of the length-delimited field at s.
func payloadOf(src *os.File, s Span) (Span, error) {
	hdr := make([]byte, min(s.Len, 2*binaryMaxVarint))
	if _, err := src.ReadAt(hdr, s.Off); err != nil {
		return Span{}, err
	}
	_, typ, n := protowire.ConsumeTag(hdr)
	if n < 0 || typ != protowire.BytesType {
		return Span{}, fmt.Errorf("field at byte %d: bad tag", s.Off)
	}
	l, m := protowire.ConsumeVarint(hdr[n:])
	if m < 0 || int64(n+m)+int64(l) != s.Len {
		return Span{}, fmt.Errorf("field at byte %d: bad length", s.Off)
	}
	return Span{Off: s.Off + int64(n+m), Len: int64(l)}, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendType encodes a tensor TypeProto.
func appendType(b []byte, t *Type) []byte {
	var tt []byte
	tt = protowire.AppendTag(tt, 1, protowire.VarintType)
	tt = protowire.AppendVarint(tt, uint64(t.Elem))
	if t.HasShape {
		var sh []byte
		for _, d := range t.Shape {
			var db []byte
			switch d.Kind {
			case DimValue:
				db = protowire.AppendTag(db, 1, protowire.VarintType)
				db = protowire.AppendVarint(db, uint64(d.Value))
			case DimParam:
				db = appendString(db, 2, d.Param)
			}
			sh = protowire.AppendTag(sh, 1, protowire.BytesType)
			sh = protowire.AppendBytes(sh, db)
		}
		tt = protowire.AppendTag(tt, 2, protowire.BytesType)
		tt = protowire.AppendBytes(tt, sh)
	}
	b = protowire.AppendTag(b, typeTensor, protowire.BytesType)
	return protowire.AppendBytes(b, tt)
}

// maxTensorHeader caps the TensorProto (without data) of an external
// initializer that the splitter re-encodes in memory.
const maxTensorHeader = 1 << 20

// externalPiece re-encodes an initializer whose data is in an external
// file as one with embedded raw_data, copied from that file.
func externalPiece(src *os.File, t *Tensor, ext map[string]*os.File) ([]piece, error) {
	ref := t.External
	if ref.Path == "" {
		return nil, fmt.Errorf("%w: initializer %q: external data %q was not checked", ErrSplit, t.Name, ref.Location)
	}
	if t.DataType == String {
		return nil, fmt.Errorf("%w: initializer %q: external STRING data cannot be embedded", ErrSplit, t.Name)
	}
	n := t.Bytes()
	if ref.Length >= 0 && ref.Length != n {
		return nil, fmt.Errorf("%w: initializer %q: external data length %d, tensor needs %d", ErrSplit, t.Name, ref.Length, n)
	}
	if t.Span.Len > maxTensorHeader {
		return nil, fmt.Errorf("%w: initializer %q: TensorProto of %d bytes without its data", ErrSplit, t.Name, t.Span.Len)
	}
	raw := make([]byte, t.Span.Len)
	if _, err := src.ReadAt(raw, t.Span.Off); err != nil {
		return nil, err
	}
	_, _, hn := protowire.ConsumeTag(raw)
	if hn < 0 {
		return nil, fmt.Errorf("initializer %q: bad tag", t.Name)
	}
	_, ln := protowire.ConsumeVarint(raw[hn:])
	if ln < 0 {
		return nil, fmt.Errorf("initializer %q: bad length", t.Name)
	}
	msg := raw[hn+ln:]
	var kept []byte
	for len(msg) > 0 {
		num, typ, tn := protowire.ConsumeTag(msg)
		if tn < 0 {
			return nil, fmt.Errorf("initializer %q: bad field", t.Name)
		}
		vn := protowire.ConsumeFieldValue(num, typ, msg[tn:])
		if vn < 0 {
			return nil, fmt.Errorf("initializer %q: bad field %d", t.Name, num)
		}
		if num != tensorExternalData && num != tensorDataLocation && num != tensorRawData {
			kept = append(kept, msg[:tn+vn]...)
		}
		msg = msg[tn+vn:]
	}
	kept = protowire.AppendTag(kept, tensorRawData, protowire.BytesType)
	kept = protowire.AppendVarint(kept, uint64(n))
	hdr := protowire.AppendTag(nil, graphInitializer, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(int64(len(kept))+n))
	f := ext[ref.Path]
	if f == nil {
		var err error
		if f, err = os.Open(ref.Path); err != nil {
			return nil, err
		}
		ext[ref.Path] = f
	}
	return []piece{{lit: append(hdr, kept...), src: f, off: ref.Offset, n: n}}, nil
}

// pieceWriter writes pieces through a fixed buffer, copying long ranges
// file to file.
type pieceWriter struct {
	f   *os.File
	buf []byte
	off int64
}

func (w *pieceWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *pieceWriter) bytes(b []byte) error {
	for len(b) > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return err
			}
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], b)
		w.buf = w.buf[:len(w.buf)+n]
		b = b[n:]
		w.off += int64(n)
	}
	return nil
}

func (w *pieceWriter) write(pc piece) error {
	if err := w.bytes(pc.lit); err != nil {
		return err
	}
	if pc.n == 0 {
		return nil
	}
	if pc.n < copyThreshold {
		if int64(cap(w.buf)-len(w.buf)) < pc.n {
			if err := w.flush(); err != nil {
				return err
			}
		}
		b := w.buf[len(w.buf) : len(w.buf)+int(pc.n)]
		if _, err := pc.src.ReadAt(b, pc.off); err != nil {
			return fmt.Errorf("reading %s at %d: %w", pc.src.Name(), pc.off, err)
		}
		w.buf = w.buf[:len(w.buf)+int(pc.n)]
		w.off += pc.n
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	// os.File.ReadFrom uses copy_file_range(2) for a LimitedReader over a
	// file, and falls back to a buffered copy.
	if _, err := pc.src.Seek(pc.off, io.SeekStart); err != nil {
		return err
	}
	got, err := w.f.ReadFrom(&io.LimitedReader{R: pc.src, N: pc.n})
	w.off += got
	if err == nil && got != pc.n {
		err = fmt.Errorf("reading %s at %d: %w", pc.src.Name(), pc.off, io.ErrUnexpectedEOF)
	}
	return err
}

// closeAll closes the source model's external data files, opened
// read-only: read errors came from the reads.
func closeAll(files map[string]*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
