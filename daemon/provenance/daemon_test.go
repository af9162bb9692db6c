package provenance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/testmodels"
)

// buildFakeWorker compiles the worker's test double (TensorRT cannot exist
// here).
func buildFakeWorker(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "trtd-fake-worker")
	c := exec.Command("go", "build", "-o", out, "github.com/trtd/trtd/cmd/trtd-fake-worker")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build the fake worker: %v\n%s", err, b)
	}
	return out
}

func runOnce(t *testing.T, cfg *config.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := daemon.Run(ctx, cfg, daemon.Options{Once: true}); err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

// A real daemon (with the worker's test double) builds a model, then the
// device "upgrades" TensorRT: the engine is found stale, its kept model
// goes back through the inbox, and the daemon rebuilds it as a new job.
func TestStaleEngineRebuiltByTheDaemon(t *testing.T) {
	fake := buildFakeWorker(t)
	root := t.TempDir()
	src := fmt.Sprintf(`log_format = "text"
[paths]
inbox = %q
outbox = %q
state = %q
failed = %q
worker = %q
[inbox]
settle = "200ms"
[worker]
user = ""
validate_runs = 1
[swap]
enabled = false
`, filepath.Join(root, "inbox"), filepath.Join(root, "outbox"), filepath.Join(root, "state"), filepath.Join(root, "failed"), fake)
	os.WriteFile(filepath.Join(root, "config.toml"), []byte(src), 0o644)
	cfg, err := config.Load(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(cfg.Paths.Inbox, 0o755)
	testmodels.Write(t, cfg.Paths.Inbox, "tiny.onnx", testmodels.TinyCNN)
	runOnce(t, cfg)

	provPath := filepath.Join(cfg.Paths.Outbox, "tiny"+provenance.Suffix)
	first, err := provenance.Read(provPath)
	if err != nil {
		t.Fatalf("no provenance beside the engine: %v", err)
	}
	h := sha256.Sum256(testmodels.TinyCNN)
	if first.ModelSHA != hex.EncodeToString(h[:]) || first.Job == "" || first.Builder == nil || first.Stage == "" {
		t.Fatalf("provenance: %+v", first)
	}
	built := *first.Builder
	dirs := provenance.Dirs{Inbox: cfg.Paths.Inbox, Outbox: cfg.Paths.Outbox, State: cfg.Paths.State}

	// Same builder: nothing is stale.
	if acts, err := provenance.RequeueStale(nil, dirs, provenance.Current{Builder: built}, false); err != nil || len(acts) != 0 {
		t.Fatalf("same builder: %+v, %v", acts, err)
	}
	// TensorRT was upgraded.
	now := built
	now.TensorRT = "8.5.2-fake"
	acts, err := provenance.RequeueStale(nil, dirs, provenance.Current{Builder: now}, false)
	if err != nil || len(acts) != 1 || !acts[0].Requeued || acts[0].Job != first.Job {
		t.Fatalf("upgraded builder: %+v, %v", acts, err)
	}
	// Asked again before the rebuild ran: the same model is not requeued twice.
	again, _ := provenance.RequeueStale(nil, dirs, provenance.Current{Builder: now}, false)
	if len(again) != 1 || again[0].Requeued {
		t.Fatalf("requeued twice: %+v", again)
	}
	runOnce(t, cfg)
	second, err := provenance.Read(provPath)
	if err != nil {
		t.Fatal(err)
	}
	if second.Job == first.Job || second.ModelSHA != first.ModelSHA {
		t.Fatalf("not rebuilt: job %s -> %s", first.Job, second.Job)
	}
	if _, err := os.Stat(filepath.Join(cfg.Paths.Outbox, second.Engine)); err != nil {
		t.Errorf("rebuilt engine missing: %v", err)
	}
	if ents, _ := os.ReadDir(cfg.Paths.Inbox); len(ents) != 0 {
		t.Errorf("inbox not empty: %v", ents)
	}
}
