package trtexec

import "testing"

// FuzzParsePerf: trtexec's output is untrusted text.
func FuzzParsePerf(f *testing.F) {
	f.Add([]byte("[I] Output binding for logits with dimensions 1x1000 is created.\n[I] Latency: min = 0.5 ms, max = 0.9 ms, mean = 0.6 ms, median = 0.55 ms, percentile(99%) = 0.85 ms"))
	f.Add([]byte("[I] Created output binding for out with dimensions 1x-1x3\n&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # x"))
	f.Fuzz(func(t *testing.T, out []byte) {
		p, ok := ParsePerf(out)
		if !ok && (p.P50Ms != 0 || len(p.Outputs) != 0) {
			t.Fatalf("values without a summary: %+v", p)
		}
		ParseVersion(out)
	})
}
