package onnx

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
)

// Summary is what `trtd inspect --json` prints. The fields up to
// Initializers are checked against python3-onnx for every model of the
// conformance corpus; scripts may rely on them.
type Summary struct {
	IRVersion int64            `json:"ir_version"`
	Opset     map[string]int64 `json:"opset"` // domain -> version, "" = ai.onnx
	Producer  Producer         `json:"producer"`
	// Inputs are the main graph's inputs that are not initializers.
	Inputs  []ValueInfo `json:"inputs"`
	Outputs []ValueInfo `json:"outputs"`
	// NodeCount counts the main graph's nodes (not those of sub-graphs).
	NodeCount int `json:"node_count"`
	// OpCounts counts the main graph's nodes by op type.
	OpCounts map[string]int `json:"op_counts"`
	// Initializers counts the main graph's dense initializers and their
	// data size (elements × element size), wherever the data lives.
	Initializers InitStats `json:"initializers"`

	// Extras.
	Domain       string            `json:"domain"`
	ModelVersion int64             `json:"model_version"`
	GraphName    string            `json:"graph_name"`
	Metadata     map[string]string `json:"metadata"`
	FileBytes    int64             `json:"file_bytes"`
	// WeightBytes is the data size of every tensor of the model: all
	// initializers (dense and sparse) of all graphs, and tensor attributes
	// such as Constant values. The planner uses it.
	WeightBytes int64 `json:"weight_bytes"`
	// Parameters counts the elements of the main graph's dense initializers.
	Parameters int64 `json:"parameters"`
	// DynamicInputs names the inputs whose shape is not fully fixed.
	DynamicInputs []string `json:"dynamic_inputs"`
	// ExternalData lists the external-data references of all tensors.
	ExternalData       []ExternalRef `json:"external_data"`
	SparseInitializers int           `json:"sparse_initializers"`
	Functions          int           `json:"functions"`
	// Subgraphs counts the graphs held by node attributes (If/Loop/Scan),
	// at any depth; SubgraphNodes counts their nodes.
	Subgraphs     int `json:"subgraphs"`
	SubgraphNodes int `json:"subgraph_nodes"`
	// Ops counts the nodes of all graphs by domain and op type, sorted by
	// domain, then op type.
	Ops []OpCount `json:"ops"`
}

// Producer names the tool that wrote the model.
type Producer struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// InitStats counts initializers and the bytes of their data.
type InitStats struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// OpCount is the number of nodes of one op, in all graphs.
type OpCount struct {
	Domain string `json:"domain"` // "" = ai.onnx
	OpType string `json:"op_type"`
	Count  int    `json:"count"`
}

// Walk calls fn for the main graph and every sub-graph, parents first.
func (m *Model) Walk(fn func(g *Graph, depth int)) {
	var walk func(g *Graph, depth int)
	walk = func(g *Graph, depth int) {
		fn(g, depth)
		for _, n := range g.Nodes {
			for _, sg := range n.Subgraphs() {
				walk(sg, depth+1)
			}
		}
	}
	if m.Graph != nil {
		walk(m.Graph, 0)
	}
}

// HasQDQ reports whether the model (or any of its sub-graphs) has a
// QuantizeLinear or DequantizeLinear node of the default ONNX domain: its
// int8 scales are its own (TensorRT's explicit quantization).
func (m *Model) HasQDQ() bool {
	found := false
	m.Walk(func(g *Graph, _ int) {
		for _, n := range g.Nodes {
			if (n.Domain == "" || n.Domain == "ai.onnx") && (n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear") {
				found = true
			}
		}
	})
	return found
}

// Inputs returns the main graph's inputs that no initializer backs (models
// of IR version < 4 list initializers among the inputs).
func (m *Model) Inputs() []*ValueInfo {
	g := m.Graph
	init := make(map[string]bool, len(g.Initializers)+len(g.SparseInitializers))
	for _, t := range g.Initializers {
		init[t.Name] = true
	}
	for _, s := range g.SparseInitializers {
		init[s.Name()] = true
	}
	var in []*ValueInfo
	for _, v := range g.Inputs {
		if !init[v.Name] {
			in = append(in, v)
		}
	}
	return in
}

// Summary computes the model's summary.
func (m *Model) Summary() Summary {
	g := m.Graph
	s := Summary{
		IRVersion:          m.IRVersion,
		Opset:              m.Opsets,
		Producer:           Producer{Name: m.ProducerName, Version: m.ProducerVersion},
		Inputs:             []ValueInfo{},
		Outputs:            []ValueInfo{},
		NodeCount:          len(g.Nodes),
		OpCounts:           map[string]int{},
		Domain:             m.Domain,
		ModelVersion:       m.ModelVersion,
		GraphName:          g.Name,
		Metadata:           m.Metadata,
		FileBytes:          m.Size,
		DynamicInputs:      []string{},
		ExternalData:       m.ExternalRefs(),
		SparseInitializers: len(g.SparseInitializers),
		Functions:          len(m.Functions),
	}
	if s.ExternalData == nil {
		s.ExternalData = []ExternalRef{}
	}
	for _, v := range m.Inputs() {
		s.Inputs = append(s.Inputs, *v)
		if v.Dynamic() {
			s.DynamicInputs = append(s.DynamicInputs, v.Name)
		}
	}
	for _, v := range g.Outputs {
		s.Outputs = append(s.Outputs, *v)
	}
	for _, n := range g.Nodes {
		s.OpCounts[n.OpType]++
	}
	for _, t := range g.Initializers {
		s.Initializers.Count++
		s.Initializers.Bytes = addSat(s.Initializers.Bytes, t.Bytes())
		s.Parameters = addSat(s.Parameters, t.Elements())
	}
	for _, t := range m.tensors {
		s.WeightBytes = addSat(s.WeightBytes, t.Bytes())
	}
	ops := map[OpCount]int{}
	m.Walk(func(g *Graph, depth int) {
		if depth > 0 {
			s.Subgraphs++
			s.SubgraphNodes += len(g.Nodes)
		}
		for _, n := range g.Nodes {
			dom := n.Domain
			if dom == "ai.onnx" {
				dom = ""
			}
			ops[OpCount{Domain: dom, OpType: n.OpType}]++
		}
	})
	for k, c := range ops {
		k.Count = c
		s.Ops = append(s.Ops, k)
	}
	sort.Slice(s.Ops, func(i, j int) bool {
		if s.Ops[i].Domain != s.Ops[j].Domain {
			return s.Ops[i].Domain < s.Ops[j].Domain
		}
		return s.Ops[i].OpType < s.Ops[j].OpType
	})
	if s.Ops == nil {
		s.Ops = []OpCount{}
	}
	return s
}

func addSat(a, b int64) int64 {
	if c := a + b; c >= a {
		return c
	}
	return 1<<63 - 1
}

// WriteText writes the summary for people, line by line: a model of tens
// of thousands of inputs or op types is not held as text in memory. Each
// Write holds whole UTF-8 sequences (safetext.TerminalWriter needs that);
// the first error stops the output and is returned.
func (s Summary) WriteText(w io.Writer) error {
	b := cliout.NewLatch(w) // the first error stops the output
	prod := strings.TrimSpace(s.Producer.Name + " " + s.Producer.Version)
	if prod == "" {
		prod = "(unknown)"
	}
	cliout.Fprintf(b, "producer:     %s\n", prod)
	cliout.Fprintf(b, "ir version:   %d\n", s.IRVersion)
	doms := make([]string, 0, len(s.Opset))
	for d := range s.Opset {
		doms = append(doms, d)
	}
	sort.Strings(doms)
	var opsets []string
	for _, d := range doms {
		name := d
		if name == "" {
			name = "ai.onnx"
		}
		opsets = append(opsets, fmt.Sprintf("%s %d", name, s.Opset[d]))
	}
	cliout.Fprintf(b, "opsets:       %s\n", strings.Join(opsets, ", "))
	cliout.Fprintf(b, "file:         %s\n", bytesize.Format(s.FileBytes))
	cliout.Fprintf(b, "parameters:   %s\n", humanCount(s.Parameters))
	cliout.Fprintf(b, "weights:      %s in %d initializers", bytesize.Format(s.WeightBytes), s.Initializers.Count)
	if len(s.ExternalData) > 0 {
		cliout.Fprintf(b, " (external data)")
	}
	cliout.Fprint(b, "\n")
	writeValues := func(title string, vs []ValueInfo) {
		cliout.Fprintf(b, "%s\n", title)
		if len(vs) == 0 {
			cliout.Fprint(b, "  (none)\n")
		}
		for _, v := range vs {
			shape := "shape unknown"
			if dims, ok := v.Shape(); ok {
				parts := make([]string, len(dims))
				for i, d := range dims {
					parts[i] = d.String()
					if d.Kind != DimValue || d.Value < 0 {
						parts[i] += "*"
					}
				}
				shape = "[" + strings.Join(parts, ", ") + "]"
			}
			dyn := ""
			if v.Dynamic() {
				dyn = "  (dynamic)"
			}
			cliout.Fprintf(b, "  %-24s %-8s %s%s\n", v.Name, v.DType(), shape, dyn)
		}
	}
	writeValues("inputs:", s.Inputs)
	writeValues("outputs:", s.Outputs)
	if len(s.DynamicInputs) > 0 {
		cliout.Fprint(b, "  * dynamic dim: give it a size in the model's sidecar .toml\n")
	}
	cliout.Fprintf(b, "nodes:        %d", s.NodeCount)
	if s.Subgraphs > 0 {
		cliout.Fprintf(b, " (+%d in %d sub-graphs)", s.SubgraphNodes, s.Subgraphs)
	}
	cliout.Fprint(b, "\nops:\n")
	ops := append([]OpCount(nil), s.Ops...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Count > ops[j].Count })
	for _, o := range ops {
		name := o.OpType
		if o.Domain != "" {
			name = o.Domain + "::" + o.OpType
		}
		cliout.Fprintf(b, "  %6d  %s\n", o.Count, name)
	}
	if len(s.ExternalData) > 0 {
		files := map[string]int{}
		var order []string
		for _, r := range s.ExternalData {
			if files[r.Location] == 0 {
				order = append(order, r.Location)
			}
			files[r.Location]++
		}
		cliout.Fprint(b, "external data:\n")
		for _, f := range order {
			cliout.Fprintf(b, "  %s (%d tensors)\n", f, files[f])
		}
	}
	return b.Err()
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f G (%d)", float64(n)/1e9, n)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M (%d)", float64(n)/1e6, n)
	case n >= 1e3:
		return fmt.Sprintf("%.1f k (%d)", float64(n)/1e3, n)
	}
	return fmt.Sprintf("%d", n)
}
