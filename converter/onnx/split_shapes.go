package onnx

// broadcast returns element type e with the multidirectional broadcast of
// the inputs' shapes; the rank is unknown when an input's is.
func broadcast(e DataType, ins ...*Type) *Type {
	r := 0
	for _, t := range ins {
		if t == nil || t.Kind != TypeTensor || !t.HasShape {
			return elemOnly(e)
		}
		r = max(r, len(t.Shape))
	}
	out := make([]Dim, r)
	for i := range r {
		var d Dim
		set := false
		for _, t := range ins {
			k := i - (r - len(t.Shape))
			if k < 0 {
				continue
			}
			td := t.Shape[k]
			switch {
			case td.Kind == DimValue && td.Value == 1:
				if !set {
					d, set = td, true
				}
			case !set || (d.Kind == DimValue && d.Value == 1):
				d, set = td, true
			case d != td:
				if td.Kind == DimValue && d.Kind != DimValue {
					d = td // a fixed size wins over a symbol
				} else if !(d.Kind == DimValue && td.Kind != DimValue) {
					d = Dim{}
				}
			}
		}
		out[i] = d
	}
	return withShape(e, out)
}

func dimProduct(ds []Dim) Dim {
	n := int64(1)
	for _, d := range ds {
		if !d.Fixed() {
			return Dim{}
		}
		n *= d.Value
	}
	return Dim{Kind: DimValue, Value: n}
}

// shapeCtx is what a shape rule sees of a node: its op, output element
// type, first input's type and shape, and accessors for the other inputs'
// types and constant values.
type shapeCtx struct {
	nd *Node
	e  DataType
	x  *Type
	xs []Dim
	r  int
	in func(int) *Type
	cv func(int) ([]int64, bool)
}

// normAxis turns a possibly negative axis into an index below rank.
func normAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	return int(a), a >= 0 && a < int64(rank)
}

// shapeRules derive output 0's shape per op; nil means only the element
// type is known.
var shapeRules = map[string]func(*shapeCtx) *Type{
	"Flatten":           shapeFlatten,
	"Transpose":         shapeTranspose,
	"Concat":            shapeConcat,
	"Gemm":              shapeGemm,
	"MatMul":            shapeMatMul,
	"GlobalAveragePool": shapeGlobalAveragePool,
	"GlobalMaxPool":     shapeGlobalAveragePool,
	"Conv":              shapeConv,
	"MaxPool":           shapeConv,
	"AveragePool":       shapeConv,
	"LpPool":            shapeConv,
	"Gather":            shapeGather,
	"Reshape":           shapeReshape,
	"Unsqueeze":         shapeUnsqueeze,
	"Squeeze":           shapeUnsqueeze,
	"Split":             shapeSplit,
	"Range":             shapeRange,
	"TopK":              shapeTopK,
	"Compress":          shapeTopK,
	"ConstantOfShape":   shapeConstantOfShape,
	"Slice":             shapeSlice,
	"Pad":               shapeSlice,
	"Resize":            shapeSlice,
	"Upsample":          shapeSlice,
	"Tile":              shapeSlice,
	"Expand":            shapeSlice,
	"ConvTranspose":     shapeSlice,
	"DepthToSpace":      shapeSlice,
	"SpaceToDepth":      shapeSlice,
	"GatherElements":    shapeSlice,
	"ReduceL1":          shapeReduceL1,
	"ReduceL2":          shapeReduceL1,
	"ReduceLogSum":      shapeReduceL1,
	"ReduceLogSumExp":   shapeReduceL1,
	"ReduceMax":         shapeReduceL1,
	"ReduceMean":        shapeReduceL1,
	"ReduceMin":         shapeReduceL1,
	"ReduceProd":        shapeReduceL1,
	"ReduceSum":         shapeReduceL1,
	"ReduceSumSquare":   shapeReduceL1,
}

// shapeOf derives the shape of output 0 of the ops in elemOfInput0 where
// attributes and input shapes fix it, else the rank where it is known.
func shapeOf(nd *Node, e DataType, x *Type, in func(int) *Type, cv func(int) ([]int64, bool)) *Type {
	if !x.HasShape {
		return elemOnly(e)
	}
	if rule := shapeRules[nd.OpType]; rule != nil {
		if t := rule(&shapeCtx{nd: nd, e: e, x: x, xs: x.Shape, r: len(x.Shape), in: in, cv: cv}); t != nil {
			return t
		}
	}
	return elemOnly(e)
}

func shapeFlatten(c *shapeCtx) *Type {
	nd, e, xs, r := c.nd, c.e, c.xs, c.r
	axis := nodeInt(nd, "axis", 1)
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis > int64(r) {
		return elemOnly(e)
	}
	return withShape(e, []Dim{dimProduct(xs[:axis]), dimProduct(xs[axis:])})
}

func shapeTranspose(c *shapeCtx) *Type {
	nd, e, xs, r := c.nd, c.e, c.xs, c.r
	perm, ok := nodeInts(nd, "perm")
	if !ok || len(perm) == 0 {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	if len(perm) != r {
		return elemOnly(e)
	}
	out := make([]Dim, r)
	for i, pv := range perm {
		if pv < 0 || int(pv) >= r {
			return elemOnly(e)
		}
		out[i] = xs[pv]
	}
	return withShape(e, out)
}

func shapeConcat(c *shapeCtx) *Type {
	nd, e, xs, r, in := c.nd, c.e, c.xs, c.r, c.in
	axis, ok := normAxis(nodeInt(nd, "axis", 0), r)
	if !ok {
		return elemOnly(e)
	}
	out := append([]Dim{}, xs...)
	total := int64(0)
	fixed := true
	for j := range nd.Inputs {
		t := in(j)
		if t == nil || !t.HasShape || len(t.Shape) != r {
			return withShape(e, unknownDims(r))
		}
		if d := t.Shape[axis]; d.Fixed() {
			total += d.Value
		} else {
			fixed = false
		}
		for i := range out {
			if i != axis && !out[i].Fixed() && t.Shape[i].Fixed() {
				out[i] = t.Shape[i]
			}
		}
	}
	out[axis] = Dim{}
	if fixed {
		out[axis] = Dim{Kind: DimValue, Value: total}
	}
	return withShape(e, out)
}

func shapeGemm(c *shapeCtx) *Type {
	nd, e, x, in := c.nd, c.e, c.x, c.in
	a, b := x, in(1)
	if b == nil || !b.HasShape || len(a.Shape) != 2 || len(b.Shape) != 2 {
		return withShape(e, unknownDims(2))
	}
	m, kk := a.Shape[0], a.Shape[1]
	if nodeInt(nd, "transA", 0) != 0 {
		m = kk
	}
	nn := b.Shape[1]
	if nodeInt(nd, "transB", 0) != 0 {
		nn = b.Shape[0]
	}
	return withShape(e, []Dim{m, nn})
}

func shapeMatMul(c *shapeCtx) *Type {
	e, xs, r, in := c.e, c.xs, c.r, c.in
	b := in(1)
	if b == nil || !b.HasShape || r < 1 || len(b.Shape) < 1 {
		return elemOnly(e)
	}
	as, bs := xs, b.Shape
	if r == 1 || len(bs) == 1 {
		if r == 1 && len(bs) == 1 {
			return withShape(e, []Dim{})
		}
		if r == 1 {
			return withShape(e, append(append([]Dim{}, bs[:len(bs)-2]...), bs[len(bs)-1]))
		}
		return withShape(e, append([]Dim{}, as[:r-1]...))
	}
	batch := broadcast(e, withShape(e, as[:r-2]), withShape(e, bs[:len(bs)-2]))
	return withShape(e, append(append([]Dim{}, batch.Shape...), as[r-2], bs[len(bs)-1]))
}

func shapeGlobalAveragePool(c *shapeCtx) *Type {
	e, xs, r := c.e, c.xs, c.r
	if r < 2 {
		return elemOnly(e)
	}
	out := []Dim{xs[0], xs[1]}
	for range r - 2 {
		out = append(out, Dim{Kind: DimValue, Value: 1})
	}
	return withShape(e, out)
}

func shapeConv(c *shapeCtx) *Type {
	nd, e, xs, in := c.nd, c.e, c.xs, c.in
	return withShape(e, convShape(nd, xs, in))
}

func shapeGather(c *shapeCtx) *Type {
	nd, e, xs, r, in := c.nd, c.e, c.xs, c.r, c.in
	idx := in(1)
	axis, ok := normAxis(nodeInt(nd, "axis", 0), r)
	if !ok || idx == nil || !idx.HasShape {
		return elemOnly(e)
	}
	out := append([]Dim{}, xs[:axis]...)
	out = append(out, idx.Shape...)
	return withShape(e, append(out, xs[axis+1:]...))
}

func shapeReshape(c *shapeCtx) *Type {
	nd, e, xs, in, cv := c.nd, c.e, c.xs, c.in, c.cv
	if v, ok := cv(1); ok {
		return withShape(e, reshapeDims(xs, v, nodeInt(nd, "allowzero", 0) != 0))
	}
	if s := in(1); s != nil && s.HasShape && len(s.Shape) == 1 && s.Shape[0].Fixed() {
		return withShape(e, unknownDims(int(s.Shape[0].Value)))
	}
	return nil
}

func shapeUnsqueeze(c *shapeCtx) *Type {
	nd, e, xs, r, in, cv := c.nd, c.e, c.xs, c.r, c.in, c.cv
	axes, ok := nodeInts(nd, "axes")
	if !ok || len(nd.Inputs) > 1 {
		axes, ok = cv(1)
	}
	if ok && len(axes) > 0 {
		if nd.OpType == "Unsqueeze" {
			return withShape(e, unknownDimsWith(xs, r+len(axes), axes, true))
		}
		return withShape(e, unknownDimsWith(xs, r-len(axes), axes, false))
	}
	if a := in(1); len(nd.Inputs) > 1 && a != nil && a.HasShape && len(a.Shape) == 1 && a.Shape[0].Fixed() {
		n := int(a.Shape[0].Value)
		if nd.OpType == "Squeeze" {
			n = -n
		}
		return withShape(e, unknownDims(r+n))
	}
	if nd.OpType == "Squeeze" && len(nd.Inputs) < 2 && nd.Attr("axes") == nil {
		var out []Dim
		for _, d := range xs {
			if !d.Fixed() {
				return elemOnly(e)
			}
			if d.Value != 1 {
				out = append(out, d)
			}
		}
		return withShape(e, out)
	}
	return nil
}

func shapeSplit(c *shapeCtx) *Type {
	nd, e, xs, r := c.nd, c.e, c.xs, c.r
	out := append([]Dim{}, xs...)
	if axis, ok := normAxis(nodeInt(nd, "axis", 0), r); ok {
		out[axis] = Dim{}
	}
	return withShape(e, out)
}

func shapeRange(c *shapeCtx) *Type {
	e := c.e
	return withShape(e, unknownDims(1))
}

func shapeTopK(c *shapeCtx) *Type {
	e, r := c.e, c.r
	return withShape(e, unknownDims(r))
}

func shapeConstantOfShape(c *shapeCtx) *Type {
	e, cv := c.e, c.cv
	if v, ok := cv(0); ok {
		return withShape(e, fixedDims(v))
	}
	return nil
}

func shapeSlice(c *shapeCtx) *Type {
	nd, e, r, in := c.nd, c.e, c.r, c.in
	if nd.OpType == "Expand" {
		if s := in(1); s != nil && s.HasShape && len(s.Shape) == 1 && s.Shape[0].Fixed() {
			return withShape(e, unknownDims(max(r, int(s.Shape[0].Value))))
		}
		return elemOnly(e)
	}
	return withShape(e, unknownDims(r))
}

func shapeReduceL1(c *shapeCtx) *Type {
	nd, e, xs, r := c.nd, c.e, c.xs, c.r
	if nodeInt(nd, "keepdims", 1) != 0 {
		out := unknownDims(r)
		if axes, ok := nodeInts(nd, "axes"); ok && len(axes) > 0 && len(nd.Inputs) < 2 {
			copy(out, xs)
			for _, a := range axes {
				if i, ok := normAxis(a, r); ok {
					out[i] = Dim{Kind: DimValue, Value: 1}
				}
			}
		}
		return withShape(e, out)
	}
	return nil
}

// unknownDimsWith returns rank n dims: for Unsqueeze (insert) the input's
// dims around the inserted 1s; for Squeeze the input's dims without axes.
func unknownDimsWith(xs []Dim, n int, axes []int64, insert bool) []Dim {
	if n < 0 {
		return nil
	}
	set := map[int]bool{}
	rank := len(xs)
	if insert {
		rank = n
	}
	for _, a := range axes {
		if a < 0 {
			a += int64(rank)
		}
		set[int(a)] = true
	}
	out := make([]Dim, 0, n)
	if insert {
		j := 0
		for i := range n {
			if set[i] {
				out = append(out, Dim{Kind: DimValue, Value: 1})
			} else if j < len(xs) {
				out = append(out, xs[j])
				j++
			}
		}
		return out
	}
	for i, d := range xs {
		if !set[i] {
			out = append(out, d)
		}
	}
	if len(out) != n {
		return unknownDims(n)
	}
	return out
}

// convShape derives Conv and pooling output shapes: N, then C (Conv: the
// weight's output channels), then the spatial dims when kernel, strides,
// pads and dilations are fixed.
func convShape(nd *Node, xs []Dim, in func(int) *Type) []Dim {
	r := len(xs)
	if r < 3 {
		return unknownDims(r)
	}
	out := unknownDims(r)
	out[0] = xs[0]
	out[1] = xs[1]
	kernel, _ := nodeInts(nd, "kernel_shape")
	if nd.OpType == "Conv" {
		out[1] = Dim{}
		if w := in(1); w != nil && w.HasShape && len(w.Shape) == r {
			out[1] = w.Shape[0]
			if len(kernel) == 0 {
				for _, d := range w.Shape[2:] {
					if !d.Fixed() {
						return out
					}
					kernel = append(kernel, d.Value)
				}
			}
		}
	}
	sp := r - 2
	if len(kernel) != sp {
		return out
	}
	get := func(name string, n int, def int64) []int64 {
		if v, ok := nodeInts(nd, name); ok && len(v) == n {
			return v
		}
		d := make([]int64, n)
		for i := range d {
			d[i] = def
		}
		return d
	}
	strides, dil, pads := get("strides", sp, 1), get("dilations", sp, 1), get("pads", 2*sp, 0)
	autoPad := ""
	if a := nd.Attr("auto_pad"); a != nil {
		autoPad = string(a.S)
	}
	ceil := nodeInt(nd, "ceil_mode", 0) != 0
	for i := range sp {
		d := xs[2+i]
		if !d.Fixed() || strides[i] <= 0 {
			continue
		}
		ek := (kernel[i]-1)*dil[i] + 1
		var o int64
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o = (d.Value + strides[i] - 1) / strides[i]
		case "VALID":
			o = (d.Value-ek)/strides[i] + 1
		case "", "NOTSET":
			num := d.Value + pads[i] + pads[i+sp] - ek
			if ceil {
				o = (num+strides[i]-1)/strides[i] + 1
				if (o-1)*strides[i] >= d.Value+pads[i] {
					o--
				}
			} else {
				o = num/strides[i] + 1
			}
		default:
			continue
		}
		if o > 0 {
			out[2+i] = Dim{Kind: DimValue, Value: o}
		}
	}
	return out
}

// reshapeDims applies a Reshape's target shape v to input dims xs.
func reshapeDims(xs []Dim, v []int64, allowZero bool) []Dim {
	out := make([]Dim, len(v))
	infer := -1
	known := int64(1)
	fixed := true
	for i, s := range v {
		switch {
		case s == 0 && !allowZero:
			if i < len(xs) {
				out[i] = xs[i]
			}
		case s == -1:
			infer = i
			continue
		case s > 0:
			out[i] = Dim{Kind: DimValue, Value: s}
		}
		if out[i].Fixed() {
			known *= out[i].Value
		} else {
			fixed = false
		}
	}
	if infer >= 0 && fixed && known > 0 {
		if total := dimProduct(xs); total.Fixed() && total.Value%known == 0 {
			out[infer] = Dim{Kind: DimValue, Value: total.Value / known}
		}
	}
	return out
}
