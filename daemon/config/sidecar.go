package config

import (
	"fmt"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
)

// Sidecar is the optional per-model settings file: model.toml uploaded
// beside model.onnx.
type Sidecar struct {
	Precision string   `toml:"precision"`
	Workspace Size     `toml:"workspace"`
	Stages    []string `toml:"stages"`
	Shapes    []struct {
		Input string  `toml:"input"`
		Min   []int64 `toml:"min"`
		Opt   []int64 `toml:"opt"`
		Max   []int64 `toml:"max"`
	} `toml:"shape"`
	Accuracy struct {
		ATol *float64 `toml:"atol"`
		RTol *float64 `toml:"rtol"`
	} `toml:"accuracy"`
}

// ParseSidecar parses a sidecar strictly against the daemon's ladder,
// reporting every problem at once; name is used in messages.
func ParseSidecar(name string, data []byte, ladder []Stage) (*Sidecar, error) {
	var s Sidecar
	probs := newProblems(name, data)
	if _, err := decodeStrict(data, &s, probs); err != nil {
		return nil, err
	}
	for i := range probs.list {
		if strings.HasPrefix(probs.list[i].text, "unknown key ") {
			probs.list[i].text += " (known: precision, workspace, stages, [[shape]], [accuracy])"
		}
	}
	var p []string
	switch s.Precision {
	case "", protocol.PrecisionFP32, protocol.PrecisionFP16, protocol.PrecisionINT8:
	default:
		p = append(p, fmt.Sprintf("%s: precision: %q is not one of fp32, fp16, int8", name, s.Precision))
	}
	known := map[string]bool{}
	for _, st := range ladder {
		known[st.Name] = true
	}
	p = append(p, stageListProblems(name, s.Stages, known)...)
	if s.Workspace != 0 && (s.Workspace < minMiBValue || s.Workspace > maxSize) {
		p = append(p, fmt.Sprintf("%s: workspace: %s is not 0 or in 1M..%s (TensorRT takes whole MiB)", name, s.Workspace, maxSize))
	}
	seen := map[string]bool{}
	for i, sh := range s.Shapes {
		at := fmt.Sprintf("%s: shape[%d]", name, i)
		if sh.Input == "" {
			p = append(p, at+".input: must name a model input")
			continue
		}
		if seen[sh.Input] {
			p = append(p, fmt.Sprintf("%s: input %q listed twice", at, sh.Input))
		}
		seen[sh.Input] = true
		if len(sh.Opt) == 0 {
			sh.Opt = sh.Max
		}
		if len(sh.Min) == 0 || len(sh.Max) == 0 {
			p = append(p, fmt.Sprintf("%s (%s): min and max are required", at, sh.Input))
			continue
		}
		if len(sh.Min) != len(sh.Max) || len(sh.Opt) != len(sh.Max) {
			p = append(p, fmt.Sprintf("%s (%s): min, opt and max must have the same rank", at, sh.Input))
			continue
		}
		for d := range sh.Min {
			if sh.Min[d] < 1 || sh.Min[d] > sh.Opt[d] || sh.Opt[d] > sh.Max[d] {
				p = append(p, fmt.Sprintf("%s (%s): dim %d needs 1 <= min <= opt <= max (got %d, %d, %d)", at, sh.Input, d, sh.Min[d], sh.Opt[d], sh.Max[d]))
			}
		}
	}
	if a := s.Accuracy.ATol; a != nil && !validTolerance(*a) {
		p = append(p, fmt.Sprintf("%s: accuracy.atol: %v is not a finite number >= 0", name, *a))
	}
	if r := s.Accuracy.RTol; r != nil && !validTolerance(*r) {
		p = append(p, fmt.Sprintf("%s: accuracy.rtol: %v is not a finite number >= 0", name, *r))
	}
	for _, msg := range p {
		probs.addValidation(strings.TrimPrefix(msg, name+": "))
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ProtocolShapes returns the sidecar's shapes for the worker.
func (s *Sidecar) ProtocolShapes() []protocol.Shape {
	var out []protocol.Shape
	for _, sh := range s.Shapes {
		opt := sh.Opt
		if len(opt) == 0 {
			opt = sh.Max
		}
		out = append(out, protocol.Shape{Input: sh.Input, Min: sh.Min, Opt: opt, Max: sh.Max})
	}
	return out
}

// Ladder returns the stages the sidecar selects (all when it names none).
func (s *Sidecar) Ladder(all []Stage) []Stage {
	if s == nil || len(s.Stages) == 0 {
		return all
	}
	var out []Stage
	for _, n := range s.Stages {
		for _, st := range all {
			if st.Name == n {
				out = append(out, st)
			}
		}
	}
	return out
}

// stageListProblems checks a sidecar's stages: each in the ladder, each
// once (a stage run twice would be reported as having run out of memory
// twice).
func stageListProblems(name string, stages []string, known map[string]bool) []string {
	var p []string
	listed := map[string]bool{}
	for _, st := range stages {
		if !known[st] {
			p = append(p, fmt.Sprintf("%s: stages: no stage named %q in the ladder", name, st))
		}
		if listed[st] {
			p = append(p, fmt.Sprintf("%s: stages: stage %q listed twice", name, st))
		}
		listed[st] = true
	}
	return p
}
