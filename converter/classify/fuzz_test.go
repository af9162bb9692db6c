package classify

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trtd/trtd/converter/protocol"
)

var knownClasses = map[protocol.Class]bool{
	protocol.ClassOK: true, protocol.ClassOutOfMemory: true, protocol.ClassNoTactic: true,
	protocol.ClassUnsupportedModel: true, protocol.ClassBuilderUnavailable: true, protocol.ClassBadRequest: true,
	protocol.ClassInvalidEngine: true, protocol.ClassCrashed: true, protocol.ClassTimedOut: true, protocol.ClassCanceled: true,
}

// FuzzClassifyLog feeds arbitrary builder output (it quotes node names from
// the upload) to the classifier: no panic, a known class, a bounded reason,
// and the same answer twice.
func FuzzClassifyLog(f *testing.F) {
	for _, s := range []string{
		"[MemUsageChange] Init CUDA: CPU +197, GPU +0, now: CPU 271, GPU 1891 (MiB)\n",
		"Error Code 2: OutOfMemory (no further information)\n",
		"[E] 4: [network.cpp::validate::2965] Error Code 4: Internal Error (Could not find any implementation for node /conv1/Conv.)\n",
		"No importer registered for op: NonMaxSuppression\n",
		"libnvinfer.so.8: cannot open shared object file: No such file or directory\n",
		"Segmentation fault (core dumped)\n",
		"\xff\xfe[MemUsageChange] x: CPU +1e400, GPU -0, now: CPU 1, GPU 2 (MiB)",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		class, reason, ok := ClassifyLog(log)
		if ok && !knownClasses[class] {
			t.Fatalf("unknown class %q", class)
		}
		if len(reason) > 4096 {
			t.Fatalf("reason of %d bytes", len(reason))
		}
		c2, r2, ok2 := ClassifyLog(log)
		if c2 != class || r2 != reason || ok2 != ok {
			t.Fatal("not deterministic")
		}
		for _, line := range strings.Split(string(log), "\n") {
			u, ok := ParseMemUsage(line)
			if ok && !strings.Contains(line, "[MemUsageChange]") {
				t.Fatalf("memory line parsed from %q", line)
			}
			if ok && utf8.ValidString(line) && !strings.Contains(line, u.Line) {
				t.Fatalf("line %q not quoted from %q", u.Line, line)
			}
		}
	})
}
