package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/internal/testmodels"
)

// TestConvertExitCodes runs `trtd convert` through the worker's test
// double: exit 0 only when an engine was written, and the model itself is
// never moved or changed.
func TestConvertExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker's test double")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "trtd-fake-worker")
	if out, err := exec.Command("go", "build", "-o", fake, "github.com/trtd/trtd/cmd/trtd-fake-worker").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[paths]\nworker = \""+fake+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644)
	model := testmodels.Write(t, dir, "net.onnx", testmodels.TinyCNN)
	os.Chmod(model, 0o600)
	cases := []struct {
		behaviour string
		code      int
		engine    bool
		say       string
	}{
		{"fast=oom,lean=ok", 0, true, "engine: "},
		{"*=unsupported", 1, false, "no engine: failed"},
	}
	for _, c := range cases {
		out := filepath.Join(dir, "out-"+strings.NewReplacer("=", "", ",", "", "*", "").Replace(c.behaviour))
		t.Setenv("TRTD_FAKE_WORKER", c.behaviour)
		var so, se bytes.Buffer
		code := mainArgs([]string{"convert", model, "--out", out, "--config", cfg}, &so, &se)
		if code != c.code {
			t.Fatalf("%s: exit %d, want %d\n%s%s", c.behaviour, code, c.code, so.String(), se.String())
		}
		if !strings.Contains(so.String(), c.say) {
			t.Errorf("%s: output %q lacks %q", c.behaviour, so.String(), c.say)
		}
		_, err := os.Stat(filepath.Join(out, "net.engine"))
		if (err == nil) != c.engine {
			t.Errorf("%s: engine written = %v", c.behaviour, err == nil)
		}
		rb, err := os.ReadFile(filepath.Join(out, "net.report.json"))
		if err != nil {
			t.Errorf("%s: no report: %v", c.behaviour, err)
		}
		// The report names the model where it is, not the daemon's
		// private copy in a directory deleted on exit.
		var rep report.Report
		if json.Unmarshal(rb, &rep); rep.KeptModel != model {
			t.Errorf("%s: report keeps the model at %q, want %q", c.behaviour, rep.KeptModel, model)
		}
		if md, _ := os.ReadFile(filepath.Join(out, "net.report.md")); !strings.Contains(string(md), model) || strings.Contains(string(md), os.TempDir()+"/trtd-convert-") {
			t.Errorf("%s: the Markdown report does not name %s:\n%s", c.behaviour, model, md)
		}
	}
	fi, err := os.Stat(model)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(len(testmodels.TinyCNN)) {
		t.Fatalf("the model was changed: %v %v", fi, err)
	}

	// Without a worker binary the message names it, not TensorRT.
	missing := filepath.Join(dir, "no-such-worker")
	cfg2 := filepath.Join(dir, "c2.toml")
	os.WriteFile(cfg2, []byte("[paths]\nworker = \""+missing+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644)
	var so, se bytes.Buffer
	code := mainArgs([]string{"convert", model, "--out", filepath.Join(dir, "out-missing"), "--config", cfg2}, &so, &se)
	if code != 1 || !strings.Contains(so.String(), "worker binary not found at "+missing) || strings.Contains(so.String(), "TensorRT not available") {
		t.Errorf("no worker: exit %d, output %q %q", code, so.String(), se.String())
	}
}
