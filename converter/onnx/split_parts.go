package onnx

import (
	"fmt"
	"sort"
)

// fillParts works out each part's initializers, inputs and outputs.
func (p *splitPlan) fillParts(nodeUses [][]string) error {
	usedBy := map[string][]int{} // crossing value -> later parts using it
	for j, pp := range p.parts {
		p.fillPart(j, pp, nodeUses, usedBy)
	}
	if err := p.partOutputs(usedBy); err != nil {
		return err
	}
	if err := p.checkCrossingTypes(usedBy); err != nil {
		return err
	}
	p.cuts(usedBy)
	return nil
}

// fillPart collects what part j reads (constant nodes it recomputes,
// initializers, inputs) and its weight; values made by earlier parts are
// recorded in usedBy.
func (p *splitPlan) fillPart(j int, pp *partPlan, nodeUses [][]string, usedBy map[string][]int) {
	g := p.g
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

// partOutputs lists each part's outputs: model outputs in model order, then
// the values later parts need.
func (p *splitPlan) partOutputs(usedBy map[string][]int) error {
	g := p.g
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
	return nil
}

// checkCrossingTypes: every value crossing a part boundary needs a tensor
// type.
func (p *splitPlan) checkCrossingTypes(usedBy map[string][]int) error {
	g := p.g
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
	return nil
}

// cuts describes each cut: the values crossing it and their bytes.
func (p *splitPlan) cuts(usedBy map[string][]int) {
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
}
