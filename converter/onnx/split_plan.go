package onnx

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
)

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
	p.index()
	if err := p.checkExternal(); err != nil {
		return nil, err
	}
	nodeUses, err := p.sortNodes()
	if err != nil {
		return nil, err
	}
	p.nodeUses = nodeUses
	p.placeConstants()
	np := len(p.order)
	if np < k {
		return nil, fmt.Errorf("the graph has %d nodes that compute on its inputs (%d nodes in all), too few for %d parts", np, n, k)
	}
	if err := p.positions(); err != nil {
		return nil, err
	}
	p.types = inferTypes(p)
	cuts, limit := chooseCuts(p.weights(), p.crossing(), k)
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

// index maps the graph's initializers, inputs and declared values by name.
func (p *splitPlan) index() {
	g := p.g
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
}

// checkExternal refuses external data a part could not carry.
func (p *splitPlan) checkExternal() error {
	g, m := p.g, p.m
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
			return fmt.Errorf("sparse initializer %q keeps its data in external file: not supported", s.Name())
		}
	}
	if refs := m.ExternalRefs(); len(refs) > nExt {
		return fmt.Errorf("a node attribute or sub-graph holds a tensor with external data (%d such tensors): only top-level initializers' external data can be copied", len(refs)-nExt)
	}
	if nExt > 0 && m.Dir == "" {
		return errors.New("external data was not checked against the model's directory")
	}
	return nil
}

// sortNodes checks every value has one producer and orders the nodes
// topologically; it returns the values each node reads.
func (p *splitPlan) sortNodes() ([][]string, error) {
	g := p.g
	n := len(g.Nodes)
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
	return nodeUses, nil
}

// placeConstants sets aside the nodes every part may recompute and keeps
// the others, in order, as the positions to cut between.
func (p *splitPlan) placeConstants() {
	g, n, nodeUses := p.g, len(p.g.Nodes), p.nodeUses
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
}

// positions records where each value is made and last read, and checks
// every model output is made by a node.
func (p *splitPlan) positions() error {
	g, nodeUses := p.g, p.nodeUses
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
			return fmt.Errorf("model output %q is not made by a node (it is a model input or an initializer): not supported", v.Name)
		}
		p.outputs[v.Name] = v
	}
	return nil
}

// weights is each position's weight: the node's own bytes plus the file
// bytes of the initializers and constant nodes it is the first to use.
func (p *splitPlan) weights() []int64 {
	g, nodeUses, np := p.g, p.nodeUses, len(p.order)
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
	return w
}

// crossing is the bytes crossing the cut before position q (1 <= q < np):
// values made before q and read by a node at or after q.
func (p *splitPlan) crossing() []int64 {
	np := len(p.order)
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
	return x
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
