package classify

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trtd/trtd/converter/protocol"
)

var knownClasses = map[protocol.Class]bool{
	protocol.ClassOK: true, protocol.ClassOutOfMemory: true, protocol.ClassNoTactic: true,
	protocol.ClassNoImplementation: true, protocol.ClassUnsupportedModel: true,
	protocol.ClassBuilderUnavailable: true, protocol.ClassBadRequest: true, protocol.ClassInvalidEngine: true,
	protocol.ClassCrashed: true, protocol.ClassTimedOut: true, protocol.ClassCanceled: true,
}

// FuzzClassifyLog: builder output is untrusted text (it quotes node names
// from the upload). The classifier must not panic on it, must return a
// known class exactly when it says ok, with a bounded reason, the same
// answer twice; ClassifyFailed agrees with ClassifyLog where that one
// decides and adds only out_of_memory; WorkspaceAsked is never negative;
// memory lines are parsed only from [MemUsageChange] and [MemUsageStats]
// lines and quote them.
func FuzzClassifyLog(f *testing.F) {
	for _, c := range logCases {
		f.Add([]byte(c.log))
	}
	for _, c := range sourceCases {
		f.Add([]byte(c.log))
	}
	for _, s := range []string{
		"[MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 8 MiB, GPU 624 MiB",
		"[MemUsageChange] Init CUDA: CPU +197, GPU +0, now: CPU 271, GPU 1891 (MiB)\n",
		"Error Code 2: OutOfMemory (no further information)\n",
		"No importer registered for op: NonMaxSuppression\n",
		"libnvinfer.so.8: cannot open shared object file: No such file or directory\n",
		"Segmentation fault (core dumped)\n",
		"\xff\xfe[MemUsageChange] x: CPU +1e400, GPU -0, now: CPU 1, GPU 2 (MiB)",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		c, r, ok := ClassifyLog(log)
		if ok != (c != "") || ok && r == "" {
			t.Fatalf("ClassifyLog = %q, %q, %v", c, r, ok)
		}
		if ok && !knownClasses[c] {
			t.Fatalf("unknown class %q", c)
		}
		if len(r) > 4096 {
			t.Fatalf("reason of %d bytes", len(r))
		}
		if c2, r2, ok2 := ClassifyLog(log); c2 != c || r2 != r || ok2 != ok {
			t.Fatal("not deterministic")
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
		for _, line := range strings.Split(string(log), "\n") {
			u, ok := ParseMemUsage(line)
			if ok && !strings.Contains(line, "[MemUsageChange]") && !strings.Contains(line, "[MemUsageStats]") {
				t.Fatalf("memory line parsed from %q", line)
			}
			if ok && utf8.ValidString(line) && !strings.Contains(line, u.Line) {
				t.Fatalf("line %q not quoted from %q", u.Line, line)
			}
		}
	})
}
