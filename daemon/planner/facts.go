package planner

import (
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
)

// Facts turns a model's summary into what the planner needs to know of it:
// the one path for the daemon and `trtd inspect`. The summary is all it
// needs, so the daemon plans from the summary of the one parse of an
// upload. shapes are the optimization profiles of the build (the sidecar's,
// or the defaults for dynamic inputs); inputs without one count their fixed
// dims, dynamic dims as 1.
func Facts(s onnx.Summary, shapes []protocol.Shape, sha256 string) ModelFacts {
	return ModelFacts{WeightBytes: s.WeightBytes, Params: s.Parameters, InputBytes: InputBytes(s.Inputs, shapes),
		Dynamic: len(s.DynamicInputs) > 0, NodeCount: s.NodeCount, SHA256: sha256}
}

// InputBytes estimates the bytes of all inputs (Summary.Inputs: those no
// initializer backs) at their max shapes, each element as wide as its
// declared type (4 bytes when the type is unknown or narrower than a byte).
func InputBytes(inputs []onnx.ValueInfo, shapes []protocol.Shape) int64 {
	max := map[string][]int64{}
	for _, s := range shapes {
		max[s.Input] = s.Max
	}
	var total int64
	for _, v := range inputs {
		n := int64(1)
		if dims, ok := max[v.Name]; ok {
			for _, d := range dims {
				n *= d
			}
		} else {
			dims, _ := v.Shape()
			for _, d := range dims {
				if d.Kind == onnx.DimValue && d.Value > 0 {
					n *= d.Value
				}
			}
		}
		size := int64(4)
		if v.Type != nil && v.Type.Elem.Bits() >= 8 {
			size = v.Type.Elem.Bits() / 8
		}
		total += n * size
	}
	return total
}
