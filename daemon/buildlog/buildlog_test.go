package buildlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/logging"
)

type record map[string]any

func records(t *testing.T, b *bytes.Buffer) []record {
	var out []record
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		out = append(out, r)
	}
	return out
}

// A burst passes, then one line per interval; warnings and errors always
// pass; the count of lines held back comes with the next line shown; each
// line carries the job, model, stage and part.
func TestStreamerRateLimits(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := &Streamer{Log: slog.New(slog.NewJSONHandler(&b, nil)), Burst: 3, Every: 2 * time.Second, Now: func() time.Time { return now }}
	for i := 0; i < 10; i++ { // 10 lines at once: 3 pass
		s.Line("j1", "m.onnx", "lean", 0, "[I] [TRT] tactic "+string(rune('a'+i)))
	}
	s.Line("j1", "m.onnx", "lean", 0, "[W] [TRT] Weights of type int64 cast down to int32")
	now = now.Add(2 * time.Second)
	s.Line("j1", "m.onnx", "lean", 2, "[I] [TRT] Total Host Persistent Memory: 12 MiB")
	s.Line("j1", "m.onnx", "lean", 0, "   ")
	rs := records(t, &b)
	if len(rs) != 5 {
		t.Fatalf("%d lines logged, want 5 (3 of the burst, the warning, 1 after 2 s):\n%s", len(rs), b.String())
	}
	if rs[0]["msg"] != "builder: [I] [TRT] tactic a" || rs[0][logging.KeyJob] != "j1" || rs[0][logging.KeyStage] != "lean" ||
		rs[0][logging.KeyModel] != "m.onnx" || rs[0][logging.KeyEvent] != "builder_log" || rs[0]["level"] != "INFO" {
		t.Errorf("first line: %v", rs[0])
	}
	if rs[3]["level"] != "WARN" || rs[3]["lines_not_shown"] != float64(7) {
		t.Errorf("warning: %v", rs[3])
	}
	if rs[4]["part"] != float64(2) || rs[4]["lines_not_shown"] != nil || !strings.Contains(rs[4]["msg"].(string), "Persistent Memory") {
		t.Errorf("line after the interval: %v", rs[4])
	}
}
