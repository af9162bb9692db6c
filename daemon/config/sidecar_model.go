package config

import (
	"fmt"
	"strings"
)

// ModelInput is what the sidecar check needs of one model input: its name
// and, when the rank is known, each dimension's fixed size (-1 for a
// symbolic or unknown one).
type ModelInput struct {
	Name      string
	RankKnown bool
	Dims      []int64
}

// CheckSidecarModel checks a parsed sidecar's [[shape]] tables against the
// model's inputs before the job is queued for a builder: every shape must
// name an input the model has, with the model's rank, and a dimension the
// model fixes must keep that size in min, opt and max. Every problem is
// reported at once, each naming the file, line and key. data is the
// sidecar's text (for line numbers); name is its file name.
func CheckSidecarModel(name string, data []byte, s *Sidecar, inputs []ModelInput) error {
	if s == nil || len(s.Shapes) == 0 {
		return nil
	}
	byName := map[string]ModelInput{}
	var names []string
	for _, in := range inputs {
		byName[in.Name] = in
		names = append(names, in.Name)
	}
	lines := shapeLines(data)
	var p []string
	for i, sh := range s.Shapes {
		at := fmt.Sprintf("%s:%d: shape[%d]", name, lineAt(lines, i), i)
		in, ok := byName[sh.Input]
		if !ok {
			p = append(p, fmt.Sprintf("%s.input: the model has no input %q (its inputs: %s)", at, sh.Input, strings.Join(quoted(names), ", ")))
			continue
		}
		if !in.RankKnown {
			continue // the model leaves the rank open: any rank may be given
		}
		opt := sh.Opt
		if len(opt) == 0 {
			opt = sh.Max
		}
		for _, k := range []struct {
			key  string
			dims []int64
		}{{"min", sh.Min}, {"opt", opt}, {"max", sh.Max}} {
			if len(k.dims) != 0 && len(k.dims) != len(in.Dims) {
				p = append(p, fmt.Sprintf("%s.%s (%s): rank %d, the model's input has rank %d (%s)", at, k.key, sh.Input, len(k.dims), len(in.Dims), dimsString(in.Dims)))
			}
		}
		if len(sh.Min) != len(in.Dims) || len(sh.Max) != len(in.Dims) || len(opt) != len(in.Dims) {
			continue
		}
		for d, fixed := range in.Dims {
			if fixed < 0 || (sh.Min[d] == fixed && opt[d] == fixed && sh.Max[d] == fixed) {
				continue
			}
			p = append(p, fmt.Sprintf("%s (%s): dim %d is fixed at %d in the model, so min, opt and max must all be %d (got %d, %d, %d)",
				at, sh.Input, d, fixed, fixed, sh.Min[d], opt[d], sh.Max[d]))
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(p, "\n  "))
	}
	return nil
}

// shapeLines returns the 1-based line of each [[shape]] header, in order.
func shapeLines(data []byte) []int {
	var out []int
	for i, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[[") && strings.TrimSpace(strings.Trim(t, "[]")) == "shape" {
			out = append(out, i+1)
		}
	}
	return out
}

func lineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

func quoted(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func dimsString(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		if v < 0 {
			s[i] = "?"
		} else {
			s[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(s, ", ") + "]"
}
