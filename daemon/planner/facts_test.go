package planner

import (
	"testing"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/testmodels"
)

func TestInputBytesFromDeclaredTypeAndProfiles(t *testing.T) {
	m, err := onnx.Open(testmodels.Write(t, t.TempDir(), "m.onnx", testmodels.TinyCNN))
	if err != nil {
		t.Fatal(err)
	}
	in := m.Inputs()[0]
	ins := m.Summary().Inputs
	if got, want := InputBytes(ins, nil), int64(1*3*32*32*4); got != want {
		t.Fatalf("fixed float input: %d bytes, want %d", got, want)
	}
	// A profile for the input replaces its declared dims.
	shapes := []protocol.Shape{{Input: in.Name, Min: []int64{1, 3, 32, 32}, Opt: []int64{1, 3, 32, 32}, Max: []int64{4, 3, 32, 32}}}
	if got, want := InputBytes(ins, shapes), int64(4*3*32*32*4); got != want {
		t.Fatalf("with a profile: %d bytes, want %d", got, want)
	}
	// The element size follows the declared type.
	in.Type.Elem = onnx.Float16
	if got, want := InputBytes(m.Summary().Inputs, nil), int64(1*3*32*32*2); got != want {
		t.Fatalf("fp16 input: %d bytes, want %d", got, want)
	}
	s := m.Summary()
	if f := Facts(s, nil, "abc"); f.WeightBytes != s.WeightBytes || f.SHA256 != "abc" || f.NodeCount != s.NodeCount {
		t.Fatalf("facts %+v", f)
	}
}
