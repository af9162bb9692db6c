package provenance_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/testmodels"
)

// fakeTrtexec is a test double for NVIDIA's trtexec (which needs a GPU):
// the 8.2.1 banner on --help, as the start-up probe reads it, and on a
// build the "=== Device Information ===" lines of a Jetson Nano, a latency
// summary, and the engine file (format of samples/common in TensorRT 8.2).
func fakeTrtexec(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "trtexec")
	os.WriteFile(p, []byte(`#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # trtexec $*"
[ "$1" = "--help" ] && exit 0
for a in "$@"; do case "$a" in --saveEngine=*) ENGINE="${a#--saveEngine=}";; esac; done
echo "[I] === Device Information ==="
echo "[I] Selected Device: NVIDIA Tegra X1"
echo "[I] Compute Capability: 5.3"
echo "[I] Latency: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
printf engine > "$ENGINE"
echo "&&&& PASSED TensorRT.trtexec [TensorRT v8201] # trtexec"
`), 0o755)
	return p
}

// With the packaged (trtexec) worker the start-up probe knows the
// TensorRT version but not the GPU, which a build's provenance records: a
// restart must find nothing stale, rebuild nothing and keep the build's
// report.
func TestRestartAfterTrtexecBuildRebuildsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker")
	}
	worker := filepath.Join(t.TempDir(), "trtd-worker")
	c := exec.Command("go", "build", "-o", worker, "github.com/trtd/trtd/cmd/trtd-worker")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build the worker: %v\n%s", err, b)
	}
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
backend = "trtexec"
trtexec = %q
validate_runs = 1
[swap]
enabled = false
`, filepath.Join(root, "inbox"), filepath.Join(root, "outbox"), filepath.Join(root, "state"), filepath.Join(root, "failed"), worker, fakeTrtexec(t))
	os.WriteFile(filepath.Join(root, "config.toml"), []byte(src), 0o644)
	cfg, err := config.Load(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(cfg.Paths.Inbox, 0o755)
	testmodels.Write(t, cfg.Paths.Inbox, "tiny.onnx", testmodels.TinyCNN)
	runOnce(t, cfg)

	prov, err := provenance.Read(filepath.Join(cfg.Paths.Outbox, "tiny"+provenance.Suffix))
	if err != nil {
		t.Fatalf("no provenance: %v", err)
	}
	if prov.Builder == nil || prov.Builder.Backend != "trtexec" || prov.Builder.GPU != "NVIDIA Tegra X1" || prov.Builder.TensorRT != "8.2.1" {
		t.Fatalf("provenance builder %+v", prov.Builder)
	}
	report := filepath.Join(cfg.Paths.Outbox, "tiny.report.json")
	before, _ := os.ReadFile(report)

	runOnce(t, cfg) // the restart

	after, _ := os.ReadFile(report)
	again, err := provenance.Read(filepath.Join(cfg.Paths.Outbox, "tiny"+provenance.Suffix))
	if err != nil {
		t.Fatal(err)
	}
	if again.Job != prov.Job {
		t.Errorf("the engine was rebuilt at the restart: job %s -> %s", prov.Job, again.Job)
	}
	if !bytes.Equal(before, after) {
		t.Error("the build's report was replaced at the restart")
	}
	if ents, _ := os.ReadDir(filepath.Join(cfg.Paths.State, provenance.RebuildDir)); len(ents) != 0 {
		t.Errorf("rebuild requested: %v", ents)
	}
}
