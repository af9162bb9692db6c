package outbox

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/jobs"
)

// TestPublishNeverPointsTheCacheAtAnotherJobsEngine: when the engine cache
// of a build's key holds an earlier job's engine that the new one cannot
// replace, the cache entry keeps naming the earlier job (whose engine it
// holds) rather than claiming the new engine; the outbox gets the new one.
func TestPublishNeverPointsTheCacheAtAnotherJobsEngine(t *testing.T) {
	root := t.TempDir()
	st, err := jobs.Open(filepath.Join(root, "state", "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(root, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(inbox, "net.onnx")
	if err := os.WriteFile(m, []byte("model"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := st.Claim(m, "net.onnx", 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.CacheKey = "key"
	o := &Outbox{Dir: filepath.Join(root, "outbox"), Failed: filepath.Join(root, "failed"), State: filepath.Join(root, "state"),
		Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test",
		StageSettings: func(string) (protocol.Settings, bool) { return protocol.Settings{}, false },
		TimingCache:   func(*protocol.Builder) string { return "" }}
	for _, d := range []string{o.Dir, o.Failed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cacheDir := filepath.Join(o.State, "cache", "key")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	earlier := cacheEntry{Job: "earlier-job", Stage: "fast", Files: []string{"model.engine"}, ModelSHA256: "abc"}
	if err := writeJSON(filepath.Join(cacheDir, cacheFile), earlier); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cacheDir, "model.engine"), []byte("the earlier engine"), 0o644); err != nil {
		t.Fatal(err)
	}
	engine := filepath.Join(root, "built.engine")
	if err := os.WriteFile(engine, []byte("the new engine"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &report.Report{}
	if err := o.Publish(j, rep, converter.Result{OK: true, Stage: "fast", Engine: engine}, o.Log); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(o.Dir, "net.engine")); err != nil || string(b) != "the new engine" {
		t.Fatalf("outbox engine %q (%v), want the new engine", b, err)
	}
	b, err := os.ReadFile(filepath.Join(cacheDir, cacheFile))
	if err != nil {
		t.Fatal(err)
	}
	var got cacheEntry
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Job != earlier.Job {
		t.Fatalf("cache entry names job %q, but the cached engine is still %q's", got.Job, earlier.Job)
	}
}
