package onnx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestReadHandBuiltModel(t *testing.T) {
	tm := buildTestModel()
	m, err := Read(bytes.NewReader(tm.file), int64(len(tm.file)), "")
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 8 || m.ProducerName != "pytorch" || m.ProducerVersion != "2.1.0" || m.Domain != "org.test" || m.ModelVersion != 3 {
		t.Errorf("header = %d %q %q %q %d", m.IRVersion, m.ProducerName, m.ProducerVersion, m.Domain, m.ModelVersion)
	}
	if want := map[string]int64{"": 17, "com.microsoft": 1}; !reflect.DeepEqual(m.Opsets, want) {
		t.Errorf("opsets = %v, want %v", m.Opsets, want)
	}
	if m.Metadata["author"] != "me" {
		t.Errorf("metadata = %v", m.Metadata)
	}
	g := m.Graph
	if g.Name != "main" || len(g.Nodes) != 4 || len(g.Initializers) != 3 || len(g.Inputs) != 3 || len(g.Outputs) != 3 || len(g.ValueInfo) != 1 {
		t.Fatalf("graph %q: %d nodes, %d inits, %d in, %d out, %d vi", g.Name, len(g.Nodes), len(g.Initializers), len(g.Inputs), len(g.Outputs), len(g.ValueInfo))
	}
	conv := g.Nodes[0]
	if conv.OpType != "Conv" || !reflect.DeepEqual(conv.Inputs, []string{"X", "W", "B"}) || !reflect.DeepEqual(conv.Outputs, []string{"Y"}) {
		t.Errorf("conv = %+v", conv)
	}
	if a := conv.Attr("kernel_shape"); a == nil || !reflect.DeepEqual(a.Ints, []int64{3, 3}) || a.Type != AttrInts {
		t.Errorf("kernel_shape = %+v", a)
	}
	if a := conv.Attr("pads"); a == nil || !reflect.DeepEqual(a.Ints, []int64{1, 1, 1, 1}) || a.NInts != 4 {
		t.Errorf("unpacked pads = %+v", a)
	}
	if a := conv.Attr("auto_pad"); a == nil || string(a.S) != "NOTSET" || string(tm.file[a.SSpan.Off:a.SSpan.End()]) != "NOTSET" {
		t.Errorf("auto_pad = %+v", a)
	}
	if a := conv.Attr("alpha"); a == nil || a.F != 0.5 {
		t.Errorf("alpha = %+v", a)
	}
	ifn := g.Nodes[2]
	subs := ifn.Subgraphs()
	if len(subs) != 1 || subs[0].Name != "then" || len(subs[0].Nodes) != 1 || subs[0].Nodes[0].OpType != "Identity" || len(subs[0].Initializers) != 1 {
		t.Fatalf("If sub-graph = %+v", subs)
	}

	// Tensors: data spans point at the data; nothing of it was kept.
	w := g.Initializers[0]
	if w.Name != "W" || w.DataType != Float || !reflect.DeepEqual(w.Dims, []int64{2, 3, 3, 3}) || w.DataField != tensorRawData {
		t.Errorf("W = %+v", w)
	}
	if got := tm.file[w.Data.Off:w.Data.End()]; !bytes.Equal(got, tm.raw) {
		t.Errorf("W data span [%d,%d) does not hold the raw data", w.Data.Off, w.Data.End())
	}
	if w.Bytes() != int64(len(tm.raw)) || w.Elements() != 54 {
		t.Errorf("W: %d bytes, %d elements", w.Bytes(), w.Elements())
	}
	b := g.Initializers[1]
	if b.DataField != tensorFloatData || b.Data.Len != 8 || b.Bytes() != 8 {
		t.Errorf("B = %+v", b)
	}
	e := g.Initializers[2]
	if e.Location != External || e.External == nil || *e.External != (ExternalRef{Tensor: "E", Location: "weights.bin", Offset: 4096, Length: 8, Need: 8, At: e.Span.Off}) || e.Bytes() != 8 {
		t.Errorf("E = %+v ext %+v", e, e.External)
	}

	// Spans: the fields of the model and of the graph, copied in order,
	// give back the bytes.
	var whole []byte
	for _, f := range m.Fields {
		whole = append(whole, tm.file[f.Span.Off:f.Span.End()]...)
	}
	if !bytes.Equal(whole, tm.file) {
		t.Error("model field spans do not cover the file")
	}
	if got := tm.file[g.Span.Off:g.Span.End()]; !bytes.Equal(got, tm.graph) {
		t.Error("graph span is not the graph message")
	}
	var gbytes []byte
	for _, f := range g.Fields {
		gbytes = append(gbytes, tm.file[f.Span.Off:f.Span.End()]...)
	}
	if !bytes.Equal(gbytes, tm.graph) {
		t.Error("graph field spans do not cover the graph")
	}
	// A node's span is a GraphProto.node field that parses back to the node.
	n2 := pb{}.msg(1, nodePB("Relu", []string{"Y"}, []string{"Z"}))
	if got := tm.file[g.Nodes[1].Span.Off:g.Nodes[1].Span.End()]; !bytes.Equal(got, n2) {
		t.Errorf("Relu span = %x, want %x", got, n2)
	}

	// Summary.
	s := m.Summary()
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ir_version":     `8`,
		"opset":          `{"":17,"com.microsoft":1}`,
		"producer":       `{"name":"pytorch","version":"2.1.0"}`,
		"inputs":         `[{"name":"X","dtype":"FLOAT","shape":["N",3,224,null]},{"name":"cond","dtype":"BOOL","shape":[]}]`,
		"outputs":        `[{"name":"Z","dtype":"FLOAT","shape":null},{"name":"G","dtype":"","shape":null},{"name":"S","dtype":"seq(INT64)","shape":null}]`,
		"node_count":     `4`,
		"op_counts":      `{"Conv":1,"FusedGelu":1,"If":1,"Relu":1}`,
		"initializers":   `{"count":3,"bytes":232}`,
		"weight_bytes":   `236`,
		"parameters":     `60`,
		"dynamic_inputs": `["X"]`,
		"subgraphs":      `1`,
		"ops":            `[{"domain":"","op_type":"Conv","count":1},{"domain":"","op_type":"Identity","count":1},{"domain":"","op_type":"If","count":1},{"domain":"","op_type":"Relu","count":1},{"domain":"com.microsoft","op_type":"FusedGelu","count":1}]`,
	}
	for k, w := range want {
		var wv any
		if err := json.Unmarshal([]byte(w), &wv); err != nil {
			t.Fatal(k, err)
		}
		if !reflect.DeepEqual(got[k], wv) {
			g, _ := json.Marshal(got[k])
			t.Errorf("summary %s = %s, want %s", k, g, w)
		}
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{"pytorch 2.1.0", "ai.onnx 17, com.microsoft 1", "[N*, 3, 224, ?*]  (dynamic)", "com.microsoft::FusedGelu", "weights.bin (1 tensors)"} {
		if !strings.Contains(text.String(), frag) {
			t.Errorf("text summary lacks %q:\n%s", frag, text.String())
		}
	}
}

// topLevelBoundaries returns the offsets where a top-level field of file
// ends, and whether graph and opset_import are complete there.
func topLevelBoundaries(t *testing.T, file []byte) map[int]bool {
	m, err := Read(bytes.NewReader(file), int64(len(file)), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	graph, opset := false, false
	for _, f := range m.Fields {
		switch f.Num {
		case modelGraph:
			graph = true
		case modelOpsetImport:
			opset = true
		}
		out[int(f.Span.End())] = graph && opset
	}
	return out
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	files := map[string][]byte{"hand-built": buildTestModel().file}
	for _, p := range []string{
		"/usr/share/libonnx-testdata/data/node/test_loop11/model.onnx",
		"/usr/share/libonnx-testdata/data/pytorch-operator/test_operator_conv/model.onnx",
	} {
		if b, err := os.ReadFile(p); err == nil {
			files[p] = b
		}
	}
	for name, file := range files {
		valid := topLevelBoundaries(t, file)
		for n := 0; n < len(file); n++ {
			_, err := Read(bytes.NewReader(file[:n]), int64(n), "")
			if valid[n] {
				if err != nil {
					t.Errorf("%s: prefix of %d bytes ends after a complete top-level field, got %v", name, n, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: prefix of %d of %d bytes accepted", name, n, len(file))
				continue
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotONNX) {
				t.Errorf("%s: prefix of %d bytes: unclassified error %v", name, n, err)
			}
		}
	}
}

func TestCorruptEveryByteDoesNotPanic(t *testing.T) {
	file := buildTestModel().file
	buf := make([]byte, len(file))
	for i := range file {
		for _, v := range []byte{0x00, 0xff, 0x80, file[i] ^ 0x08} {
			copy(buf, file)
			buf[i] = v
			_, err := Read(bytes.NewReader(buf), int64(len(buf)), "")
			if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotONNX) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrExternalData) {
				t.Fatalf("byte %d = %#x: unclassified error %v", i, v, err)
			}
		}
	}
}

// sparseFile is a ReaderAt of a given size whose bytes are head, then
// zeros; it counts the bytes read.
type sparseFile struct {
	head []byte
	size int64
	read atomic.Int64
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	for i := 0; i < n; i++ {
		p[i] = 0
		if o := off + int64(i); o < int64(len(s.head)) {
			p[i] = s.head[o]
		}
	}
	s.read.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// A 1.9 GB model whose weights are one raw_data field: the reader reads a
// few KiB and allocates little, wherever the lengths point.
func TestHugeFieldsAreNeitherReadNorAllocated(t *testing.T) {
	const size = 1900 << 20
	tests := []struct {
		name string
		head func(rest int) pb // rest = bytes left after the head for the big payload
		want error
	}{
		{"raw_data skipped", func(rest int) pb {
			return nil
		}, nil},
		{"huge producer_name", func(int) pb { return pb{}.varint(1, 7) }, ErrTooLarge},
		{"length past EOF", func(int) pb { return pb{}.varint(1, 7) }, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var head []byte
			switch tt.name {
			case "raw_data skipped":
				// ModelProto{ir_version, opset, graph{initializer{dims, type, name, raw_data: size-… bytes}}}
				pre := pb{}.varint(1, 8).msg(8, opsetPB("", 13))
				// Sizes: compute payload so that the whole file is exactly size.
				tensorHead := pb{}.bytes(1, packed(1<<28)).varint(2, uint64(Uint8)).str(8, "w")
				// raw_data length L, tensor = tensorHead + tag + varint(L) + L,
				// graph = tag + varint(len(tensor)) + tensor, model = pre + tag + varint(len(graph)) + graph.
				L := uint64(size) - uint64(len(pre)) - 64
				for {
					tensorLen := uint64(len(tensorHead)) + 1 + uint64(protowire.SizeVarint(L)) + L
					graphLen := 1 + uint64(protowire.SizeVarint(tensorLen)) + tensorLen
					total := uint64(len(pre)) + 1 + uint64(protowire.SizeVarint(graphLen)) + graphLen
					if total == size {
						h := append(pb{}, pre...)
						h = protowire.AppendTag(h, 7, protowire.BytesType)
						h = protowire.AppendVarint(h, graphLen)
						h = protowire.AppendTag(h, 5, protowire.BytesType)
						h = protowire.AppendVarint(h, tensorLen)
						h = append(h, tensorHead...)
						h = protowire.AppendTag(h, 9, protowire.BytesType)
						h = protowire.AppendVarint(h, L)
						head = h
						break
					}
					L += uint64(size) - total
				}
			case "huge producer_name":
				head = protowire.AppendTag(pb{}.varint(1, 8), 2, protowire.BytesType)
				head = protowire.AppendVarint(head, size-32)
			case "length past EOF":
				head = protowire.AppendTag(pb{}.varint(1, 8), 7, protowire.BytesType)
				head = protowire.AppendVarint(head, 1<<40)
			}
			f := &sparseFile{head: head, size: size}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m, err := Read(f, size, "")
			runtime.ReadMemStats(&after)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Graph.Initializers[0].Data.Len; got < size-1024 {
					t.Errorf("raw_data span %d bytes", got)
				}
				if got := m.Summary().WeightBytes; got != 1<<28 {
					t.Errorf("weight bytes %d", got)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := f.read.Load(); n > 1<<20 {
				t.Errorf("read %d bytes of a %d-byte file", n, int64(size))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	good := buildTestModel().file
	tests := []struct {
		name string
		file []byte
		size int64
		want error
	}{
		{"empty", nil, 0, ErrTruncated},
		{"text", []byte("hello, this is not a model\n"), -1, ErrNotONNX},
		{"no graph", pb{}.varint(1, 8).msg(8, opsetPB("", 13)), -1, ErrTruncated},
		{"no opset", pb{}.varint(1, 8).msg(7, pb{}.str(2, "g")), -1, ErrTruncated},
		{"no ir_version", pb{}.msg(7, pb{}.str(2, "g")).msg(8, opsetPB("", 13)), -1, ErrNotONNX},
		{"group wire type", append(pb{}.varint(1, 8), 0x0b), -1, ErrNotONNX},
		{"field number 0", append(pb{}.varint(1, 8), 0x02, 0x00), -1, ErrNotONNX},
		{"over 2 GiB", good, 3 << 30, ErrTooLarge},
		{"nested past message", pb{}.varint(1, 8).
			msg(7, append(protowire.AppendTag(nil, 2, protowire.BytesType), 0x03)).msg(8, opsetPB("", 13)), -1, ErrNotONNX},
		{"absolute external", pb{}.varint(1, 8).msg(8, opsetPB("", 13)).
			msg(7, pb{}.msg(5, pb{}.str(8, "w").varint(14, 1).msg(13, entryPB("location", "/etc/shadow")))), -1, ErrExternalData},
		{"dotdot external", pb{}.varint(1, 8).msg(8, opsetPB("", 13)).
			msg(7, pb{}.msg(5, pb{}.str(8, "w").varint(14, 1).msg(13, entryPB("location", "a/../../b")))), -1, ErrExternalData},
		{"bad offset", pb{}.varint(1, 8).msg(8, opsetPB("", 13)).
			msg(7, pb{}.msg(5, pb{}.str(8, "w").varint(14, 1).msg(13, entryPB("location", "x")).msg(13, entryPB("offset", "-5")))), -1, ErrExternalData},
		{"deep sub-graphs", deepModel(maxDepth + 2), -1, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size < 0 {
				size = int64(len(tt.file))
			}
			_, err := Read(bytes.NewReader(tt.file), size, "")
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Read(bytes.NewReader(deepModel(10)), int64(len(deepModel(10))), ""); err != nil {
		t.Errorf("10 nested sub-graphs: %v", err)
	}
}

func deepModel(depth int) []byte {
	g := pb{}.str(2, "leaf")
	for i := 0; i < depth; i++ {
		g = pb{}.msg(1, nodePB("If", []string{"c"}, []string{"o"}, pb{}.str(1, "then_branch").varint(20, uint64(AttrGraph)).msg(6, g)))
	}
	return pb{}.varint(1, 8).msg(8, opsetPB("", 13)).msg(7, g)
}

// Protobuf semantics the reader follows like python-onnx does: a known
// field with an unexpected wire type is an unknown field, scalars repeat
// as last-wins, messages repeat as merge.
func TestProtobufSemantics(t *testing.T) {
	f := pb{}.str(1, "not a varint").varint(1, 5).varint(1, 9).varint(7, 1<<20).varint(8, 0x0a).
		str(2, "a").str(2, "b").
		msg(7, pb{}.str(2, "g").msg(1, nodePB("Relu", nil, nil))).
		msg(7, pb{}.msg(1, nodePB("Abs", nil, nil))).
		msg(8, opsetPB("ai.onnx", 11)).msg(8, opsetPB("", 13))
	m, err := Read(bytes.NewReader(f), int64(len(f)), "")
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 9 || m.ProducerName != "b" || m.Graph.Name != "g" || len(m.Graph.Nodes) != 2 || m.Opsets[""] != 13 || len(m.Opsets) != 1 {
		t.Errorf("ir %d producer %q graph %q nodes %d opsets %v", m.IRVersion, m.ProducerName, m.Graph.Name, len(m.Graph.Nodes), m.Opsets)
	}
}

func externalModel(location string, length int64) []byte {
	t := pb{}.bytes(1, packed(4)).varint(2, uint64(Float)).str(8, "w").varint(14, 1).
		msg(13, entryPB("location", location)).msg(13, entryPB("offset", "16"))
	if length >= 0 {
		t = t.msg(13, entryPB("length", itoa(length)))
	}
	return pb{}.varint(1, 8).msg(8, opsetPB("", 13)).msg(7, pb{}.msg(5, t))
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestExternalDataChecks(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "inbox")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p string, n int) {
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "w.bin"), 32)
	write(filepath.Join(dir, "sub", "w.bin"), 32)
	write(filepath.Join(root, "secret"), 64)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("../secret", filepath.Join(dir, "escape.bin")))
	must(os.Symlink("w.bin", filepath.Join(dir, "inside.bin")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo.bin"), 0o644))
	tests := []struct {
		location string
		length   int64
		want     error
	}{
		{"w.bin", 16, nil},
		{"w.bin", -1, nil},
		{"sub/w.bin", 16, nil},
		{"./w.bin", 16, nil},
		{"inside.bin", 16, nil},
		{"w.bin", 17, ErrExternalData}, // past the end of the file
		{"w.bin", 8, ErrExternalData},  // shorter than the tensor
		{"missing.bin", 16, ErrExternalData},
		{"escape.bin", 16, ErrExternalData},
		{"fifo.bin", 16, ErrExternalData},
		{"sub", 16, ErrExternalData},
		{"/etc/passwd", 16, ErrExternalData},
		{"../secret", 16, ErrExternalData},
	}
	for _, tt := range tests {
		file := externalModel(tt.location, tt.length)
		p := filepath.Join(dir, "model.onnx")
		must(os.WriteFile(p, file, 0o644))
		m, err := Open(p)
		if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("%s length %d: err = %v, want %v", tt.location, tt.length, err, tt.want)
			continue
		}
		// A model read once without its directory, checked against it
		// later from its summary, gets the same verdict and message.
		if lex, lerr := Read(bytes.NewReader(file), int64(len(file)), ""); lerr == nil {
			cerr := CheckExternalData(lex.Summary().ExternalData, dir)
			if (cerr == nil) != (err == nil) || (err != nil && !strings.HasSuffix(err.Error(), cerr.Error())) {
				t.Errorf("%s length %d: CheckExternalData = %v, reading with the directory: %v", tt.location, tt.length, cerr, err)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.location) {
				t.Errorf("error %q does not name the model and the location", err)
			}
			continue
		}
		if refs := m.ExternalRefs(); len(refs) != 1 || refs[0].Path == "" {
			t.Errorf("refs = %+v", refs)
		}
		// Without a directory, only the lexical checks run.
		if _, err := Read(bytes.NewReader(file), int64(len(file)), ""); err != nil {
			t.Errorf("%s without dir: %v", tt.location, err)
		}
	}
}

func TestOpenAndReadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(dir) = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nope.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
	p := filepath.Join(dir, "m.onnx")
	file := buildTestModel().file
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadFile(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(file)) || m.Dir != dir {
		t.Errorf("size %d dir %q", m.Size, m.Dir)
	}
	// A truncated upload fails and the error names the file.
	if err := os.WriteFile(p, file[:len(file)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), p) {
		t.Errorf("Open(truncated) = %v", err)
	}
}
