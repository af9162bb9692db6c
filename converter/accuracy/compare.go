package accuracy

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
)

// Comparison is the outcome of comparing one output with its expected
// values.
type Comparison struct {
	Stat protocol.AccuracyStat
	// Mismatched counts the elements outside tolerance, of Total.
	Mismatched, Total int
	// Worst is the index of the element furthest outside tolerance (or with
	// the largest error when all are inside), -1 when there is none.
	Worst    int
	Got, Exp float64 // the values at Worst
	// Problem says why the output could not be compared element by element
	// (shape or type mismatch); empty otherwise.
	Problem string
}

// Compare compares got with exp with numpy.allclose semantics: an element
// is close when |got-exp| <= atol + rtol*|exp|. NaN is close only to NaN
// (numpy's equal_nan=True: a model may produce NaN on purpose) and an
// infinity only to the same infinity. Shapes must be equal. MaxRelErr is
// the largest |got-exp|/|exp| over elements whose expected value is not
// zero. Errors that are infinite (NaN against a number, an infinity against
// a finite value) are reported as math.MaxFloat64, which JSON can carry.
func Compare(name string, got, exp Tensor, atol, rtol float64) Comparison {
	c := Comparison{Stat: protocol.AccuracyStat{Output: name}, Worst: -1}
	if !sameShape(got.Dims, exp.Dims) {
		c.Problem = fmt.Sprintf("shape %v, expected %v", got.Dims, exp.Dims)
		return c
	}
	g, e := got.Float64s(), exp.Float64s()
	if g == nil || e == nil {
		c.Problem = fmt.Sprintf("cannot compare %s with expected %s", got.DType, exp.DType)
		return c
	}
	if len(g) != len(e) {
		c.Problem = fmt.Sprintf("%d values, expected %d", len(g), len(e))
		return c
	}
	c.Total = len(e)
	worstExcess := math.Inf(-1)
	for i := range e {
		abs, rel, close := elem(g[i], e[i], atol, rtol)
		if abs > c.Stat.MaxAbsErr {
			c.Stat.MaxAbsErr = abs
		}
		if rel > c.Stat.MaxRelErr {
			c.Stat.MaxRelErr = rel
		}
		if !close {
			c.Mismatched++
		}
		// How far outside (or inside) tolerance: the element that decides.
		excess := abs - (atol + rtol*math.Abs(e[i]))
		if !close && math.IsNaN(excess) {
			excess = math.MaxFloat64
		}
		if excess > worstExcess || c.Worst < 0 {
			worstExcess, c.Worst, c.Got, c.Exp = excess, i, g[i], e[i]
		}
	}
	c.Stat.OK = c.Mismatched == 0
	return c
}

// elem compares one element.
func elem(g, e, atol, rtol float64) (abs, rel float64, close bool) {
	switch {
	case math.IsNaN(e) || math.IsNaN(g):
		if math.IsNaN(e) && math.IsNaN(g) {
			return 0, 0, true
		}
		return math.MaxFloat64, math.MaxFloat64, false
	case math.IsInf(e, 0) || math.IsInf(g, 0):
		if g == e {
			return 0, 0, true
		}
		return math.MaxFloat64, math.MaxFloat64, false
	}
	abs = math.Abs(g - e)
	if math.IsInf(abs, 0) { // two finite values whose difference overflows
		abs = math.MaxFloat64
	}
	if e != 0 {
		rel = abs / math.Abs(e)
	}
	return abs, rel, abs <= atol+rtol*math.Abs(e)
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// String describes the comparison in one line for a result message.
func (c Comparison) String() string {
	if c.Problem != "" {
		return fmt.Sprintf("output %s: %s", c.Stat.Output, c.Problem)
	}
	s := fmt.Sprintf("output %s: max abs error %s, max rel error %s", c.Stat.Output, Fmt(c.Stat.MaxAbsErr), Fmt(c.Stat.MaxRelErr))
	if c.Mismatched > 0 {
		s += fmt.Sprintf(", %d of %d values outside tolerance (worst: element %d is %g, expected %g)", c.Mismatched, c.Total, c.Worst, c.Got, c.Exp)
	}
	return s
}

// Fmt formats an error value, spelling math.MaxFloat64 as "inf".
func Fmt(v float64) string {
	if v >= math.MaxFloat64 {
		return "inf"
	}
	return fmt.Sprintf("%.3g", v)
}

// Outcome is the accuracy gate's verdict over all outputs.
type Outcome struct {
	Stats []protocol.AccuracyStat
	OK    bool
	// Message names the worst output and its error when not OK; it
	// summarises the largest error otherwise.
	Message     string
	Comparisons []Comparison
}

// Check compares each expected output with the engine output of the same
// name (expected tensors without a name, and only those, are matched by
// position); the stats follow the order of exp. Every expected output must
// be an output of the engine; engine outputs without a sample are not
// compared.
func Check(got, exp []Tensor, atol, rtol float64) (Outcome, error) {
	pairs, err := Match(exp, names(got), "output")
	if err != nil {
		return Outcome{}, err
	}
	idx := map[string]int{}
	for i, g := range got {
		idx[g.Name] = i
	}
	var o Outcome
	o.OK = true
	for k, e := range exp { // in the order of the expected samples
		name := e.Name
		if name == "" {
			name = got[k].Name
		}
		j := idx[name]
		c := Compare(name, got[j], pairs[j], atol, rtol)
		o.Comparisons = append(o.Comparisons, c)
		o.Stats = append(o.Stats, c.Stat)
		o.OK = o.OK && c.Stat.OK && c.Problem == ""
	}
	var bad []Comparison
	for _, c := range o.Comparisons {
		if !c.Stat.OK || c.Problem != "" {
			bad = append(bad, c)
		}
	}
	sort.SliceStable(bad, func(i, j int) bool {
		if (bad[i].Problem != "") != (bad[j].Problem != "") {
			return bad[i].Problem != ""
		}
		return bad[i].Stat.MaxAbsErr > bad[j].Stat.MaxAbsErr
	})
	tol := fmt.Sprintf("atol %g, rtol %g", atol, rtol)
	switch {
	case len(bad) > 0:
		o.Message = fmt.Sprintf("the engine's outputs differ from the expected samples beyond tolerance (%s): %s", tol, bad[0])
		if len(bad) > 1 {
			var others []string
			for _, c := range bad[1:] {
				others = append(others, c.Stat.Output)
			}
			o.Message += fmt.Sprintf("; also outside tolerance: %s", strings.Join(others, ", "))
		}
	case len(o.Comparisons) > 0:
		worst := o.Comparisons[0]
		for _, c := range o.Comparisons[1:] {
			if c.Stat.MaxAbsErr > worst.Stat.MaxAbsErr {
				worst = c
			}
		}
		o.Message = fmt.Sprintf("outputs match the expected samples (%s); largest error: %s", tol, worst)
	}
	return o, nil
}

// Match orders samples to fit the engine's tensors named want: the result
// has len(want) entries, result[i] the sample for want[i], renamed to
// want[i]. A sample with a name goes to the tensor of that name; a sample
// without a name goes by its position (ONNX test data sets name their
// tensors, a hand-written one may not). what is "input" or "output" for
// messages. Every input needs a sample; an output without one is left as
// the zero Tensor (empty name) and is not compared.
func Match(samples []Tensor, want []string, what string) ([]Tensor, error) {
	idx := map[string]int{}
	for i, w := range want {
		idx[w] = i
	}
	out := make([]Tensor, len(want))
	have := make([]bool, len(want))
	for i, s := range samples {
		j := i
		if s.Name != "" {
			k, ok := idx[s.Name]
			if !ok {
				return nil, fmt.Errorf("%w: sample %s %d is named %q, but the engine's %ss are %s", ErrMismatch, what, i, s.Name, what, quoteAll(want))
			}
			j = k
		} else if i >= len(want) {
			return nil, fmt.Errorf("%w: %d sample %ss, the engine has %d (%s)", ErrMismatch, len(samples), what, len(want), quoteAll(want))
		}
		if have[j] {
			return nil, fmt.Errorf("%w: two samples for %s %q", ErrMismatch, what, want[j])
		}
		s.Name = want[j]
		out[j], have[j] = s, true
	}
	if what == "input" {
		for i, h := range have {
			if !h {
				return nil, fmt.Errorf("%w: no sample for input %q (the samples cover %d of %d inputs)", ErrMismatch, want[i], len(samples), len(want))
			}
		}
	}
	return out, nil
}

func names(ts []Tensor) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
