package onnx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/bytesize"
)

// ErrSplit: the model cannot be split as asked (too few nodes for K parts,
// a value without a derivable type crosses a cut, external data that
// cannot be copied, ...). The error names the model and the reason.
var ErrSplit = errors.New("cannot split model")

// ManifestFile is the name of the manifest Split writes beside the parts.
const ManifestFile = "manifest.json"

// Manifest describes the K sub-models Split wrote and how to run them in
// sequence: feed the model inputs, run part 1 .. part K in order, each
// part's inputs coming from the model inputs or from earlier parts'
// outputs (PartInput.Source), and collect the model outputs from the parts
// that produce them (Outputs[].Part).
type Manifest struct {
	Format     int    `json:"format"` // 1
	Model      string `json:"model"`  // the split model's path as given
	ModelBytes int64  `json:"model_bytes"`
	K          int    `json:"k"`
	// Inputs are the model's inputs (initializers excluded), to be fed by
	// the caller.
	Inputs []TensorInfo `json:"inputs"`
	// Outputs are the model's outputs and the part that produces each.
	Outputs []ModelOutput `json:"outputs"`
	Parts   []PartInfo    `json:"parts"`
	// Cuts[i] is the cut between part i+1 and part i+2: every value made
	// before it and used after it.
	Cuts []CutInfo `json:"cuts"`
	// BalanceLimit is the largest part weight the cut search allowed:
	// the smallest possible maximum plus 10%.
	BalanceLimit int64 `json:"balance_limit_bytes"`
	// HowToRun tells a user of the outbox how to chain the part engines;
	// empty in the splitter's own output.
	HowToRun string `json:"how_to_run,omitempty"`
}

// TensorInfo is a value's name and type as {"name", "dtype", "shape"}
// (shape: null when the rank is unknown; items are integers for fixed dims,
// strings for symbolic ones, null for unknown ones), plus where the type
// came from when the model did not declare it.
type TensorInfo struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []any  `json:"shape"`
	// TypeFrom is "" when the model declares the value's type (graph
	// input, output or value_info), else how it was derived
	// ("initializer", "Constant", "inferred from Conv").
	TypeFrom string `json:"type_from,omitempty"`
}

// ModelOutput is a model output and the part (1-based) that produces it.
type ModelOutput struct {
	TensorInfo
	Part int `json:"part"`
}

// PartInput is one input of a part and where its value comes from.
type PartInput struct {
	TensorInfo
	// Source is "model input NAME" or "part J output NAME".
	Source string `json:"source"`
	// FromPart is J for "part J output NAME", 0 for a model input.
	FromPart int `json:"from_part"`
}

// PartOutput is one output of a part.
type PartOutput struct {
	TensorInfo
	ModelOutput bool  `json:"model_output"`      // also an output of the whole model
	UsedBy      []int `json:"used_by,omitempty"` // later parts that take it as an input
}

// PartInfo describes one sub-model.
type PartInfo struct {
	Index        int          `json:"index"` // 1-based
	File         string       `json:"file"`  // "part1.onnx", relative to the manifest
	FileBytes    int64        `json:"file_bytes"`
	Nodes        int          `json:"nodes"`
	FirstNode    string       `json:"first_node"` // name (or op#index) of its first node
	LastNode     string       `json:"last_node"`
	Initializers int          `json:"initializers"`
	WeightBytes  int64        `json:"weight_bytes"` // initializer data bytes
	Inputs       []PartInput  `json:"inputs"`
	Outputs      []PartOutput `json:"outputs"`
	// Engine names the part's engine once the daemon has placed it in the
	// outbox; empty in the splitter's own output.
	Engine string `json:"engine,omitempty"`
}

// CutInfo lists the values crossing one cut.
type CutInfo struct {
	After   int           `json:"after_part"`
	Bytes   int64         `json:"bytes"` // sum of Tensors[].Bytes
	Tensors []CrossTensor `json:"tensors"`
}

// CrossTensor is a value made before a cut and used after it.
type CrossTensor struct {
	TensorInfo
	// Bytes is the value's size; when Exact is false the shape has
	// symbolic or unknown dims, each counted as 1, or an unknown rank,
	// counted as 1 MiB.
	Bytes int64 `json:"bytes"`
	Exact bool  `json:"exact"`
	From  int   `json:"from_part"`
	To    []int `json:"to_parts"`
}

// balanceSlack: the cut search may make the largest part this much
// (numerator/denominator) heavier than the best possible, to find narrower
// cuts.
const balanceSlackNum, balanceSlackDen = 1, 10

// crossingValueCost is added to the bytes of each value crossing a cut
// when choosing cuts: every crossing value is one more input and output
// binding of two engines, so a cut crossed by many small values (shape
// arithmetic) is worth less than its bytes say.
const crossingValueCost = 64 << 10

// nonFloatValueCost is added for a crossing value that is not of a
// floating-point type: such values are mostly shape arithmetic (Shape,
// Gather, Concat of INT64), which a TensorRT engine wants as build-time
// shape tensors rather than as inputs, and TensorRT 8 has no INT64 inputs.
const nonFloatValueCost = 256 << 20

func floatType(e DataType) bool {
	switch e {
	case Float, Float16, BFloat16, Double:
		return true
	}
	return false
}

// unknownValueBytes is the cost given to a crossing value whose rank is
// unknown: such a value cannot be a part's input (ONNX wants a shape for
// graph inputs and outputs), so the cut search steers clear of it.
const unknownValueBytes = 1 << 40

// Split writes K sub-models of the model at path into outDir (part1.onnx ...
// partK.onnx) and a manifest (manifest.json) describing, for each part: file,
// inputs (name, dtype, shape, and where each comes from: "model input NAME"
// or "part J output NAME"), outputs, weight bytes, and the tensors crossing
// each cut with their byte sizes. Memory stays bounded: weights are copied
// file to file by byte range, never held.
//
// The cuts follow the graph's topological order. They are chosen to keep the
// largest part's weights within 10% of the best possible, and among those
// cut sets, the bytes of the values crossing the cuts smallest.
//
// Split does not fsync what it writes (neither does cp): the parts are
// intermediate files that a crashed build remakes in seconds from the
// model. SplitWith with Sync set makes them durable before it returns.
func Split(path string, k int, outDir string) (*Manifest, error) {
	return SplitWith(path, k, outDir, SplitOptions{})
}

// SplitInto splits the model at path into k parts written to a fresh dir
// (anything there before is removed): what a worker does for an op
// "split" request.
func SplitInto(path string, k int, dir string) (*Manifest, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("onnx: split %s: clearing %s: %w", path, dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	return Split(path, k, dir)
}

// SplitOptions tunes SplitWith.
type SplitOptions struct {
	// Sync fsyncs every part and the manifest (and the directory) before
	// returning.
	Sync bool
	// DryRun plans the split and returns its manifest (file sizes
	// included) without writing anything; outDir is not used.
	DryRun bool
}

// PlanSplit returns the manifest Split would write for k parts, writing
// nothing: a planner can try K = 2, 3, ... and take the least K whose
// heaviest part fits its memory budget.
func PlanSplit(path string, k int) (*Manifest, error) {
	return SplitWith(path, k, "", SplitOptions{DryRun: true})
}

// SplitWith is Split with options.
func SplitWith(path string, k int, outDir string, opt SplitOptions) (*Manifest, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("onnx: split %s: %w: %s", path, ErrSplit, fmt.Sprintf(format, args...))
	}
	if k < 1 {
		return nil, fail("K must be at least 1, got %d", k)
	}
	m, err := Open(path)
	if err != nil {
		return nil, err
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	defer func() { _ = src.Close() }() // read-only source; read errors come from the reads
	p, err := planSplit(m, k, src)
	if err != nil {
		return nil, fail("%v", err)
	}
	man := p.manifest(path, m.Size)
	// Every part's size first: nothing is written for a split that would
	// fail on a later part.
	ext := map[string]*os.File{}
	for i := range p.parts {
		_, size, err := p.partPieces(src, i, ext)
		if err != nil {
			closeAll(ext)
			if errors.Is(err, ErrSplit) {
				return nil, fail("%v", err)
			}
			return nil, fmt.Errorf("onnx: split %s: part %d: %w", path, i+1, err)
		}
		man.Parts[i].FileBytes = size
	}
	closeAll(ext)
	if opt.DryRun {
		return man, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	for i := range p.parts {
		size, err := p.writePart(src, i, filepath.Join(outDir, man.Parts[i].File))
		if err != nil {
			if errors.Is(err, ErrSplit) {
				return nil, fail("%v", err)
			}
			return nil, fmt.Errorf("onnx: split %s: part %d: %w", path, i+1, err)
		}
		man.Parts[i].FileBytes = size
	}
	if opt.Sync {
		// One fsync per part after all are written, so that the kernel
		// writes them back together rather than part by part.
		for _, pi := range man.Parts {
			if err := syncFile(filepath.Join(outDir, pi.File)); err != nil {
				return nil, fmt.Errorf("onnx: split %s: %w", path, err)
			}
		}
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	if err := writeManifest(filepath.Join(outDir, ManifestFile), append(b, '\n'), opt.Sync); err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	if opt.Sync {
		if err := atomicfile.SyncDir(outDir); err != nil {
			return nil, fmt.Errorf("onnx: split %s: %w", path, err)
		}
	}
	return man, nil
}

// splitPlan is the analysed graph and the chosen cuts.
type splitPlan struct {
	m        *Model
	g        *Graph
	r        io.ReaderAt    // the model file, for small integer constants
	all      []int          // node indices in topological order
	order    []int          // the same without constant nodes: the positions cuts split
	rank     []int          // node index -> place in all
	constOut map[string]int // output of a constant node -> node index
	nodeUses [][]string
	types    map[string]*typeInfo
	parts    []*partPlan

	inits     map[string]*Tensor
	sparse    map[string]*SparseTensor
	inputs    map[string]*ValueInfo // real model inputs (not initializers)
	outputs   map[string]*ValueInfo
	declared  map[string]*ValueInfo // value_info entries
	producer  map[string]int        // value -> position in order
	lastUse   map[string]int        // value -> last position of a node reading it
	partOf    []int                 // position -> part index
	limit     int64
	crossings []CutInfo
}

type partPlan struct {
	start, end int   // positions [start, end)
	consts     []int // constant nodes it recomputes, in topological order
	inits      []*Tensor
	sparse     []*SparseTensor
	inputs     []string // in the order of PartInfo.Inputs
	outputs    []string
	values     map[string]bool // values made in this part
	weight     int64
}

// typeInfo is a value's type and where it came from.
type typeInfo struct {
	t    *Type
	from string     // "" = declared by the model
	vi   *ValueInfo // the declaring entry, to copy
}

// uses returns the values node n reads: its inputs and the outer-scope
// values its sub-graphs read.
func uses(n *Node) []string {
	var u []string
	seen := map[string]bool{}
	for _, in := range n.Inputs {
		if in != "" && !seen[in] {
			seen[in] = true
			u = append(u, in)
		}
	}
	for _, sg := range n.Subgraphs() {
		refs := map[string]bool{}
		outerRefs(sg, refs)
		names := make([]string, 0, len(refs))
		for r := range refs {
			names = append(names, r)
		}
		sort.Strings(names)
		for _, r := range names {
			if !seen[r] {
				seen[r] = true
				u = append(u, r)
			}
		}
	}
	return u
}

// outerRefs adds to out the names g reads that it does not define.
func outerRefs(g *Graph, out map[string]bool) {
	local := map[string]bool{}
	for _, v := range g.Inputs {
		local[v.Name] = true
	}
	for _, t := range g.Initializers {
		local[t.Name] = true
	}
	for _, s := range g.SparseInitializers {
		local[s.Name()] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			local[o] = true
		}
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" && !local[in] {
				out[in] = true
			}
		}
		for _, sg := range n.Subgraphs() {
			sub := map[string]bool{}
			outerRefs(sg, sub)
			for r := range sub {
				if !local[r] {
					out[r] = true
				}
			}
		}
	}
	for _, o := range g.Outputs {
		if !local[o.Name] {
			out[o.Name] = true
		}
	}
}

// nodeLabel names a node for people: its name, or op#index.
func nodeLabel(n *Node, i int) string {
	if n.Name != "" {
		return n.Name
	}
	return n.OpType + "#" + strconv.Itoa(i)
}

func (p *splitPlan) manifest(path string, size int64) *Manifest {
	man := &Manifest{Format: 1, Model: path, ModelBytes: size, K: len(p.parts),
		Inputs: []TensorInfo{}, Outputs: []ModelOutput{}, Cuts: p.crossings, BalanceLimit: p.limit}
	if man.Cuts == nil {
		man.Cuts = []CutInfo{}
	}
	for _, v := range p.g.Inputs {
		if p.inputs[v.Name] != nil {
			man.Inputs = append(man.Inputs, p.info(v.Name))
		}
	}
	for _, v := range p.g.Outputs {
		part := len(p.parts) // made by a constant node: the last part recomputes it
		if pos, ok := p.producer[v.Name]; ok {
			part = p.partOf[pos] + 1
		}
		man.Outputs = append(man.Outputs, ModelOutput{TensorInfo: p.info(v.Name), Part: part})
	}
	for j, pp := range p.parts {
		first, last := p.order[pp.start], p.order[pp.end-1]
		pi := PartInfo{Index: j + 1, File: "part" + strconv.Itoa(j+1) + ".onnx", Nodes: pp.end - pp.start,
			FirstNode: nodeLabel(p.g.Nodes[first], first), LastNode: nodeLabel(p.g.Nodes[last], last),
			Initializers: len(pp.inits) + len(pp.sparse), WeightBytes: pp.weight,
			Inputs: []PartInput{}, Outputs: []PartOutput{}}
		for _, v := range pp.inputs {
			in := PartInput{TensorInfo: p.info(v)}
			if p.inputs[v] != nil {
				in.Source = "model input " + v
			} else {
				in.FromPart = p.partOf[p.producer[v]] + 1
				in.Source = "part " + strconv.Itoa(in.FromPart) + " output " + v
			}
			pi.Inputs = append(pi.Inputs, in)
		}
		for _, v := range pp.outputs {
			out := PartOutput{TensorInfo: p.info(v), ModelOutput: p.outputs[v] != nil}
			for jj := j + 1; jj < len(p.parts); jj++ {
				for _, in := range p.parts[jj].inputs {
					if in == v {
						out.UsedBy = append(out.UsedBy, jj+1)
					}
				}
			}
			pi.Outputs = append(pi.Outputs, out)
		}
		man.Parts = append(man.Parts, pi)
	}
	return man
}

// writeManifest replaces path with b: durably (fsync, rename, fsync the
// directory) when sync is set, else only atomically.
func writeManifest(path string, b []byte, sync bool) error {
	if sync {
		return atomicfile.WriteFile(path, b, 0o644)
	}
	return atomicfile.Replace(path, b, 0o644)
}

func syncFile(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // opened only for the fsync, whose error is returned
	return d.Sync()
}

// WriteMarkdown writes the manifest for people: the parts, the values
// crossing each cut, and how to run the K engines in sequence. engine maps
// a part's file name to its engine's (nil: the ONNX part names).
func (man *Manifest) WriteMarkdown(w io.Writer, engine func(part string) string) error {
	if engine == nil {
		engine = func(s string) string { return s }
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The model is split into %d parts, run one after the other; %s describes them.\n\n", man.K, ManifestFile)
	b.WriteString("| part | file | nodes | weights | inputs | outputs |\n|---|---|---|---|---|---|\n")
	for _, p := range man.Parts {
		var ins, outs []string
		for _, in := range p.Inputs {
			ins = append(ins, fmt.Sprintf("`%s` (%s)", in.Name, in.Source))
		}
		for _, o := range p.Outputs {
			s := "`" + o.Name + "`"
			if o.ModelOutput {
				s += " (model output)"
			}
			outs = append(outs, s)
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s |\n", p.Index, engine(p.File), p.Nodes, bytesize.Format(p.WeightBytes),
			strings.Join(ins, ", "), strings.Join(outs, ", "))
	}
	if len(man.Cuts) > 0 {
		b.WriteString("\n| cut | values crossing | bytes |\n|---|---|---|\n")
		for _, c := range man.Cuts {
			var names []string
			exact := true
			for _, t := range c.Tensors {
				names = append(names, "`"+t.Name+"`")
				exact = exact && t.Exact
			}
			size := bytesize.Format(c.Bytes)
			if !exact {
				size = "at least " + size + " (dynamic dims counted as 1)"
			}
			fmt.Fprintf(&b, "| after part %d | %s | %s |\n", c.After, strings.Join(names, ", "), size)
		}
	}
	b.WriteString("\nTo run: put the model's inputs in a table of values by name. For part 1 to ")
	fmt.Fprintf(&b, "part %d in order, bind each input to the value of that name (a model input, or an output of the earlier part named in the table), run the part, and add its outputs to the table. ", man.K)
	b.WriteString("The model's outputs are then in the table:")
	for _, o := range man.Outputs {
		fmt.Fprintf(&b, " `%s` from part %d;", o.Name, o.Part)
	}
	b.WriteString(" a value can be freed once the last part that reads it has run.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
