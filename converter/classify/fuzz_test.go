package classify

import (
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// FuzzClassifyLog: builder output is untrusted text; the classifier must
// not panic on it, must return a class exactly when it says ok, and
// WorkspaceAsked must never be negative.
func FuzzClassifyLog(f *testing.F) {
	for _, c := range logCases {
		f.Add([]byte(c.log))
	}
	for _, c := range sourceCases {
		f.Add([]byte(c.log))
	}
	f.Add([]byte("[MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 5 MiB, GPU 516 MiB"))
	f.Fuzz(func(t *testing.T, log []byte) {
		c, r, ok := ClassifyLog(log)
		if ok != (c != "") || ok && r == "" {
			t.Fatalf("ClassifyLog = %q, %q, %v", c, r, ok)
		}
		fc, _, fok := ClassifyFailed(log)
		if ok && fc != c || fok != (fc != "") {
			t.Fatalf("ClassifyFailed = %q, %v; ClassifyLog %q", fc, fok, c)
		}
		if fc != "" && fc != protocol.ClassOutOfMemory && !ok {
			t.Fatalf("ClassifyFailed invented %q", fc)
		}
		if WorkspaceAsked(log) < 0 {
			t.Fatal("negative workspace")
		}
		for _, line := range []string{string(log)} {
			ParseMemUsage(line)
		}
	})
}
