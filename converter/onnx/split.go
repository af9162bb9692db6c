package onnx

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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
	os.RemoveAll(dir)
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
	defer src.Close()
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
	if err := writeFileAtomic(filepath.Join(outDir, ManifestFile), append(b, '\n'), opt.Sync); err != nil {
		return nil, fmt.Errorf("onnx: split %s: %w", path, err)
	}
	if opt.Sync {
		if err := syncDir(outDir); err != nil {
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

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func planSplit(m *Model, k int, r io.ReaderAt) (*splitPlan, error) {
	g := m.Graph
	p := &splitPlan{m: m, g: g, r: r,
		inits: map[string]*Tensor{}, sparse: map[string]*SparseTensor{},
		inputs: map[string]*ValueInfo{}, outputs: map[string]*ValueInfo{}, declared: map[string]*ValueInfo{},
		producer: map[string]int{}, lastUse: map[string]int{}}
	n := len(g.Nodes)
	if n < k {
		return nil, fmt.Errorf("the graph has %d nodes, too few for %d parts", n, k)
	}
	for _, t := range g.Initializers {
		p.inits[t.Name] = t
	}
	for _, s := range g.SparseInitializers {
		p.sparse[s.Name()] = s
	}
	for _, v := range g.Inputs {
		if p.inits[v.Name] == nil && p.sparse[v.Name] == nil {
			p.inputs[v.Name] = v
		}
	}
	for _, v := range g.ValueInfo {
		p.declared[v.Name] = v
	}
	// External data is copied only for top-level initializers: a part is
	// written elsewhere, so a reference from inside a node would dangle.
	nExt := 0
	for _, t := range g.Initializers {
		if t.External != nil {
			nExt++
		}
	}
	for _, s := range g.SparseInitializers {
		if (s.Values != nil && s.Values.External != nil) || (s.Indices != nil && s.Indices.External != nil) {
			return nil, fmt.Errorf("sparse initializer %q keeps its data in external file: not supported", s.Name())
		}
	}
	if refs := m.ExternalRefs(); len(refs) > nExt {
		return nil, fmt.Errorf("a node attribute or sub-graph holds a tensor with external data (%d such tensors): only top-level initializers' external data can be copied", len(refs)-nExt)
	}
	if nExt > 0 && m.Dir == "" {
		return nil, errors.New("external data was not checked against the model's directory")
	}

	// Producers and topological order (Kahn, smallest file index first:
	// the file order when the model is sorted, as ONNX requires).
	prodNode := map[string]int{}
	for i, nd := range g.Nodes {
		for _, o := range nd.Outputs {
			if o == "" {
				continue
			}
			if j, dup := prodNode[o]; dup {
				return nil, fmt.Errorf("value %q is produced by two nodes (%s and %s)", o, nodeLabel(g.Nodes[j], j), nodeLabel(nd, i))
			}
			if p.inputs[o] != nil || p.inits[o] != nil || p.sparse[o] != nil {
				return nil, fmt.Errorf("node %s overwrites model input or initializer %q", nodeLabel(nd, i), o)
			}
			prodNode[o] = i
		}
	}
	nodeUses := make([][]string, n)
	indeg := make([]int, n)
	users := make([][]int, n)
	for i, nd := range g.Nodes {
		nodeUses[i] = uses(nd)
		for _, u := range nodeUses[i] {
			if j, ok := prodNode[u]; ok {
				if j == i {
					return nil, fmt.Errorf("node %s reads its own output %q", nodeLabel(nd, i), u)
				}
				indeg[i]++
				users[j] = append(users[j], i)
			} else if p.inputs[u] == nil && p.inits[u] == nil && p.sparse[u] == nil {
				return nil, fmt.Errorf("node %s reads %q, which no node, input or initializer defines", nodeLabel(nd, i), u)
			}
		}
	}
	h := &intHeap{}
	for i := range n {
		if indeg[i] == 0 {
			*h = append(*h, i)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		i := heap.Pop(h).(int)
		p.all = append(p.all, i)
		for _, j := range users[i] {
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(h, j)
			}
		}
	}
	if len(p.all) != n {
		return nil, fmt.Errorf("the graph has a cycle (%d of %d nodes cannot be ordered)", n-len(p.all), n)
	}
	p.nodeUses = nodeUses
	// Constant nodes (Constant, and nodes reading only initializers and
	// constants, such as the Identity copies of tied weights) are not
	// placed: each part recomputes those it needs, so they never cross a
	// cut.
	p.constOut = map[string]int{}
	p.rank = make([]int, n)
	for r, i := range p.all {
		p.rank[i] = r
		nd := g.Nodes[i]
		if !constantNode(nd, nodeUses[i], p) {
			p.order = append(p.order, i)
			continue
		}
		for _, o := range nd.Outputs {
			if o != "" {
				p.constOut[o] = i
			}
		}
	}
	np := len(p.order)
	if np < k {
		return nil, fmt.Errorf("the graph has %d nodes that compute on its inputs (%d nodes in all), too few for %d parts", np, n, k)
	}
	for pos, i := range p.order {
		for _, o := range g.Nodes[i].Outputs {
			if o != "" {
				p.producer[o] = pos
			}
		}
	}
	for pos, i := range p.order {
		for _, u := range nodeUses[i] {
			p.lastUse[u] = pos
		}
	}
	for _, v := range g.Outputs {
		_, made := p.producer[v.Name]
		if _, c := p.constOut[v.Name]; !made && !c {
			return nil, fmt.Errorf("model output %q is not made by a node (it is a model input or an initializer): not supported", v.Name)
		}
		p.outputs[v.Name] = v
	}

	p.types = inferTypes(p)

	// Weight of each position: the node's own bytes plus the file bytes of
	// the initializers and constant nodes it is the first to use.
	w := make([]int64, np)
	seen := map[string]bool{}
	var add func(pos int, uses []string)
	add = func(pos int, uses []string) {
		for _, u := range uses {
			if seen[u] {
				continue
			}
			seen[u] = true
			if t := p.inits[u]; t != nil {
				w[pos] += tensorFileBytes(t)
			} else if s := p.sparse[u]; s != nil {
				w[pos] += s.Span.Len
			} else if c, ok := p.constOut[u]; ok {
				for _, o := range g.Nodes[c].Outputs {
					seen[o] = true
				}
				w[pos] += g.Nodes[c].Span.Len
				add(pos, nodeUses[c])
			}
		}
	}
	for pos, i := range p.order {
		w[pos] = g.Nodes[i].Span.Len
		add(pos, nodeUses[i])
	}
	// Bytes crossing the cut before position q (1 <= q < np): values made
	// before q and read by a node at or after q.
	diff := make([]int64, np+1)
	for v, a := range p.producer {
		b, used := p.lastUse[v]
		if !used || b <= a {
			continue
		}
		sz := p.types[v].cost() + crossingValueCost
		if ti := p.types[v]; ti != nil && ti.t != nil && !floatType(ti.t.Elem) {
			sz += nonFloatValueCost
		}
		diff[a+1] += sz
		diff[b+1] -= sz
	}
	x := make([]int64, np)
	var run int64
	for q := 1; q < np; q++ {
		run += diff[q]
		x[q] = run
	}
	cuts, limit := chooseCuts(w, x, k)
	p.limit = limit
	bounds := append([]int{0}, cuts...)
	bounds = append(bounds, np)
	p.partOf = make([]int, np)
	for j := range k {
		pp := &partPlan{start: bounds[j], end: bounds[j+1], values: map[string]bool{}}
		for pos := pp.start; pos < pp.end; pos++ {
			p.partOf[pos] = j
		}
		p.parts = append(p.parts, pp)
	}
	return p, p.fillParts(nodeUses)
}

// constantNode reports whether nd computes only from initializers and
// constants (and is deterministic and without sub-graphs), so that every
// part may recompute it.
func constantNode(nd *Node, uses []string, p *splitPlan) bool {
	if len(nd.Subgraphs()) > 0 || (nd.Domain != "" && nd.Domain != "ai.onnx") {
		return false
	}
	switch nd.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli":
		return false
	}
	for _, u := range uses {
		if p.inits[u] == nil && p.sparse[u] == nil {
			if _, ok := p.constOut[u]; !ok {
				return false
			}
		}
	}
	return true
}

func tensorFileBytes(t *Tensor) int64 {
	if t.External != nil {
		return t.Span.Len + t.Bytes()
	}
	return t.Span.Len
}

// chooseCuts returns the k-1 cut positions (a cut at q puts positions < q
// before it) and the weight limit used: the least possible largest part
// weight plus the slack; within it, the cuts minimise the summed bytes x of
// the cuts, with no part lighter than half the average weight where
// possible (else a quarter, a tenth, or no floor).
func chooseCuts(w, x []int64, k int) ([]int, int64) {
	n := len(w)
	pre := make([]int64, n+1)
	var maxW int64
	for i, v := range w {
		pre[i+1] = pre[i] + v
		maxW = max(maxW, v)
	}
	fits := func(limit int64) bool {
		parts, cur := 1, int64(0)
		for _, v := range w {
			if cur+v > limit {
				parts++
				cur = 0
			}
			cur += v
		}
		return parts <= k
	}
	lo, hi := maxW, pre[n]
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	limit := lo + lo*balanceSlackNum/balanceSlackDen
	if k == 1 {
		return nil, limit
	}
	// Parts lighter than a share of the average are avoided when that
	// leaves a way to cut: a part holding only a Flatten is an engine
	// build for nothing. The shares are tried in turn, down to none.
	for _, share := range []int64{50, 25, 10, 0} {
		minW := pre[n] / int64(k) * share / 100
		if cuts, ok := cutsWithin(pre, x, k, limit, minW); ok {
			return cuts, limit
		}
	}
	// Unreachable (the limit is at least the least maximum), but a
	// daemon does not panic: cut by node count.
	cuts := make([]int, k-1)
	for i := range cuts {
		cuts[i] = (i + 1) * n / k
	}
	return cuts, limit
}

// cutsWithin returns the k-1 cuts with the least summed x such that every
// part weighs between minW and limit (pre: prefix sums of the weights), and
// false when there are none. A dynamic programme over parts, each step a
// sliding-window minimum: O(k·n).
func cutsWithin(pre, x []int64, k int, limit, minW int64) ([]int, bool) {
	n := len(pre) - 1
	const inf = int64(1) << 62
	fitsPart := func(q, p int) bool { w := pre[p] - pre[q]; return w <= limit && w >= minW }
	// f[p]: least summed cut bytes of j parts covering [0, p).
	f := make([]int64, n+1)
	for p := range f {
		f[p] = inf
		if p >= 1 && fitsPart(0, p) {
			f[p] = 0
		}
	}
	arg := make([][]int32, k+1)
	for j := 2; j <= k; j++ {
		g := make([]int64, n+1)
		a := make([]int32, n+1)
		for p := range g {
			g[p] = inf
		}
		// Sliding-window minimum of f[q]+x[q] over q in [lo(p), hi(p)]:
		// lo(p) the first q with W(q,p) <= limit, hi(p) the last q < p
		// with W(q,p) >= minW; both grow with p.
		dq := make([]int, 0, n)
		lo, next := j-1, j-1
		for p := j; p <= n; p++ {
			for ; next <= p-1 && pre[p]-pre[next] >= minW; next++ {
				if f[next] >= inf {
					continue
				}
				c := f[next] + x[next]
				for len(dq) > 0 && f[dq[len(dq)-1]]+x[dq[len(dq)-1]] >= c {
					dq = dq[:len(dq)-1]
				}
				dq = append(dq, next)
			}
			for lo < p && pre[p]-pre[lo] > limit {
				lo++
			}
			for len(dq) > 0 && dq[0] < lo {
				dq = dq[1:]
			}
			if len(dq) > 0 {
				q := dq[0]
				g[p] = f[q] + x[q]
				a[p] = int32(q)
			}
		}
		f = g
		arg[j] = a
	}
	if f[n] >= inf {
		return nil, false
	}
	cuts := make([]int, k-1)
	p := n
	for j := k; j >= 2; j-- {
		q := int(arg[j][p])
		cuts[j-2] = q
		p = q
	}
	return cuts, true
}

// fillParts works out each part's initializers, inputs and outputs.
func (p *splitPlan) fillParts(nodeUses [][]string) error {
	g := p.g
	usedBy := map[string][]int{} // crossing value -> later parts using it
	for j, pp := range p.parts {
		seen := map[string]bool{}
		for pos := pp.start; pos < pp.end; pos++ {
			for _, o := range g.Nodes[p.order[pos]].Outputs {
				if o != "" {
					pp.values[o] = true
				}
			}
		}
		var need func(u string)
		need = func(u string) {
			if seen[u] || pp.values[u] {
				return
			}
			seen[u] = true
			if c, ok := p.constOut[u]; ok {
				pp.consts = append(pp.consts, c)
				for _, o := range g.Nodes[c].Outputs {
					seen[o] = true
				}
				for _, cu := range nodeUses[c] {
					need(cu)
				}
				return
			}
			switch {
			case p.inits[u] != nil:
				pp.inits = append(pp.inits, p.inits[u])
			case p.sparse[u] != nil:
				pp.sparse = append(pp.sparse, p.sparse[u])
			default:
				pp.inputs = append(pp.inputs, u)
				if p.inputs[u] == nil {
					usedBy[u] = append(usedBy[u], j)
				}
			}
		}
		for pos := pp.start; pos < pp.end; pos++ {
			for _, u := range nodeUses[p.order[pos]] {
				need(u)
			}
		}
		if j == len(p.parts)-1 {
			// Model outputs made by constant nodes come from the last part.
			for _, v := range g.Outputs {
				if _, ok := p.constOut[v.Name]; ok {
					need(v.Name)
					pp.values[v.Name] = true
				}
			}
		}
		sort.Slice(pp.consts, func(a, b int) bool { return p.rank[pp.consts[a]] < p.rank[pp.consts[b]] })
		// Initializers in file order, so copies read the file forward.
		sort.Slice(pp.inits, func(a, b int) bool { return pp.inits[a].Span.Off < pp.inits[b].Span.Off })
		sort.Slice(pp.sparse, func(a, b int) bool { return pp.sparse[a].Span.Off < pp.sparse[b].Span.Off })
		// Model inputs first (model order), then crossing values by producer.
		sort.SliceStable(pp.inputs, func(a, b int) bool {
			ia, ib := p.inputs[pp.inputs[a]] != nil, p.inputs[pp.inputs[b]] != nil
			if ia != ib {
				return ia
			}
			if ia {
				return p.inputIndex(pp.inputs[a]) < p.inputIndex(pp.inputs[b])
			}
			return p.producer[pp.inputs[a]] < p.producer[pp.inputs[b]]
		})
		for _, t := range pp.inits {
			pp.weight += t.Bytes()
		}
		for _, s := range pp.sparse {
			if s.Values != nil {
				pp.weight += s.Values.Bytes()
			}
			if s.Indices != nil {
				pp.weight += s.Indices.Bytes()
			}
		}
	}
	for j, pp := range p.parts {
		// Model outputs in model order, then values later parts need.
		for _, v := range g.Outputs {
			if pp.values[v.Name] {
				pp.outputs = append(pp.outputs, v.Name)
			}
		}
		var cross []string
		for v := range pp.values {
			if len(usedBy[v]) > 0 && p.outputs[v] == nil {
				cross = append(cross, v)
			}
		}
		sort.Slice(cross, func(a, b int) bool { return p.producer[cross[a]] < p.producer[cross[b]] })
		pp.outputs = append(pp.outputs, cross...)
		if len(pp.outputs) == 0 {
			return fmt.Errorf("part %d (nodes %d..%d) would have no outputs: its nodes' results are unused", j+1, pp.start, pp.end-1)
		}
	}
	// Every value crossing a part boundary needs a tensor type.
	for v, parts := range usedBy {
		ti := p.types[v]
		if ti == nil || ti.t == nil || ti.t.Kind != TypeTensor || ti.t.Elem == Undefined || !ti.t.HasShape {
			pos := p.producer[v]
			nd := g.Nodes[p.order[pos]]
			what := "tensor type"
			if ti != nil && ti.t != nil && ti.t.Kind == TypeTensor && ti.t.Elem != Undefined {
				what = "rank"
			}
			return fmt.Errorf("value %q (made by %s node %s in part %d, used by part %d) must cross a cut, but the model has no value_info for it and its %s cannot be derived from its producer (run ONNX shape inference on the model first, or choose fewer parts)", v, nd.OpType, nodeLabel(nd, p.order[pos]), p.partOf[pos]+1, parts[0]+1, what)
		}
	}
	// Cuts.
	for c := 0; c+1 < len(p.parts); c++ {
		ci := CutInfo{After: c + 1, Tensors: []CrossTensor{}}
		var names []string
		for v, parts := range usedBy {
			from := p.partOf[p.producer[v]]
			if from <= c && parts[len(parts)-1] > c {
				names = append(names, v)
			}
		}
		sort.Slice(names, func(a, b int) bool { return p.producer[names[a]] < p.producer[names[b]] })
		for _, v := range names {
			sz, exact := p.types[v].bytes()
			to := []int{}
			for _, j := range usedBy[v] {
				to = append(to, j+1)
			}
			ci.Tensors = append(ci.Tensors, CrossTensor{TensorInfo: p.info(v), Bytes: sz, Exact: exact,
				From: p.partOf[p.producer[v]] + 1, To: to})
			ci.Bytes += sz
		}
		p.crossings = append(p.crossings, ci)
	}
	return nil
}

func (p *splitPlan) inputIndex(name string) int {
	for i, v := range p.g.Inputs {
		if v.Name == name {
			return i
		}
	}
	return len(p.g.Inputs)
}

// info returns the TensorInfo of value v.
func (p *splitPlan) info(v string) TensorInfo {
	ti := p.types[v]
	out := TensorInfo{Name: v}
	if ti == nil || ti.t == nil {
		return out
	}
	out.DType = ti.t.String()
	out.TypeFrom = ti.from
	if ti.t.HasShape && (ti.t.Kind == TypeTensor || ti.t.Kind == TypeSparseTensor) {
		out.Shape = make([]any, len(ti.t.Shape))
		for i, d := range ti.t.Shape {
			switch d.Kind {
			case DimValue:
				out.Shape[i] = d.Value
			case DimParam:
				out.Shape[i] = d.Param
			}
		}
	}
	return out
}

// bytes returns the size of a value of this type, and whether it is exact
// (see CrossTensor.Bytes).
func (ti *typeInfo) bytes() (int64, bool) { return ti.size(1) }

// cost is the size the cut search uses: an unknown dim (neither value nor
// symbol) counts as unknownDimCost, as it may be anything.
func (ti *typeInfo) cost() int64 {
	n, _ := ti.size(unknownDimCost)
	return n
}

// unknownDimCost: see typeInfo.cost.
const unknownDimCost = 64

func (ti *typeInfo) size(unknownDim int64) (int64, bool) {
	if ti == nil || ti.t == nil || ti.t.Kind != TypeTensor || !ti.t.HasShape {
		return unknownValueBytes, false
	}
	n, exact := int64(1), true
	for _, d := range ti.t.Shape {
		if d.Kind != DimValue || d.Value < 0 {
			exact = false
			if d.Kind == DimUnknown && n < 1<<50 {
				n *= unknownDim
			}
			continue
		}
		if d.Value > 0 && n > (1<<62)/d.Value {
			return 1 << 62, false
		}
		n *= d.Value
	}
	if ti.t.Elem.Bits() == 0 {
		return n * 4, false
	}
	return ti.t.Elem.bytesFor(n), exact
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

// writeFileAtomic writes b to path through a temporary file (fsynced
// when sync is set) and a rename.
func writeFileAtomic(path string, b []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error { return syncFile(dir) }

func syncFile(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
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
