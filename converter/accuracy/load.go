package accuracy

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
)

// Load reads the request's sample inputs and expected outputs, each list in
// the order of the N in input_N.pb / output_N.pb (numerically, so that
// input_10 follows input_9), other names after them in name order.
func Load(acc protocol.Accuracy) (inputs, outputs []Tensor, err error) {
	if len(acc.Inputs) == 0 || len(acc.Outputs) == 0 {
		return nil, nil, fmt.Errorf("%w: the accuracy samples need at least one input_N.pb and one output_N.pb", ErrMismatch)
	}
	if acc.ATol < 0 || acc.RTol < 0 {
		return nil, nil, fmt.Errorf("%w: negative tolerance (atol %g, rtol %g)", ErrMismatch, acc.ATol, acc.RTol)
	}
	read := func(paths []string) ([]Tensor, error) {
		var out []Tensor
		for _, p := range SortSamples(paths) {
			t, err := ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		return out, nil
	}
	if inputs, err = read(acc.Inputs); err != nil {
		return nil, nil, err
	}
	if outputs, err = read(acc.Outputs); err != nil {
		return nil, nil, err
	}
	return inputs, outputs, nil
}

// SortSamples returns paths ordered by the number N of their prefix_N.pb
// base names.
func SortSamples(paths []string) []string {
	out := append([]string(nil), paths...)
	num := func(p string) (int, bool) {
		b := strings.TrimSuffix(filepath.Base(p), ".pb")
		i := strings.LastIndexByte(b, '_')
		if i < 0 {
			return 0, false
		}
		n, err := strconv.Atoi(b[i+1:])
		return n, err == nil
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, aok := num(out[i])
		b, bok := num(out[j])
		switch {
		case aok && bok && a != b:
			return a < b
		case aok != bok:
			return aok
		}
		return out[i] < out[j]
	})
	return out
}
