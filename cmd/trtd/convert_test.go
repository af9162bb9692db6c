package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/statelock"
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
	os.WriteFile(cfg, []byte("[paths]\nworker = \""+fake+"\"\nstate = \""+filepath.Join(dir, "state")+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644)
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

// F-18: a model named "-x.onnx" or ".x.onnx" builds, and convert reports the
// engine it wrote (it used to write one and exit 1, or wait for nothing).
func TestConvertAwkwardNames(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker's test double")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "trtd-fake-worker")
	if out, err := exec.Command("go", "build", "-o", fake, "github.com/trtd/trtd/cmd/trtd-fake-worker").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[paths]\nworker = \""+fake+"\"\nstate = \""+filepath.Join(dir, "state")+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644)
	t.Setenv("TRTD_FAKE_WORKER", "*=ok")
	for _, name := range []string{"-x.onnx", ".x.onnx"} {
		sub := filepath.Join(dir, strings.Trim(name, ".-"))
		os.MkdirAll(sub, 0o755)
		model := testmodels.Write(t, sub, name, testmodels.TinyCNN)
		var so, se bytes.Buffer
		done := make(chan int, 1)
		go func() { done <- mainArgs([]string{"convert", "--config", cfg, "--", model}, &so, &se) }()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s: exit %d\n%s%s", name, code, so.String(), se.String())
				continue
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: convert did not finish in 60s", name)
		}
		eng := strings.TrimPrefix(strings.SplitN(so.String(), "\n", 2)[0], "engine: ")
		eng = strings.SplitN(eng, " (stage", 2)[0]
		if fi, err := os.Stat(eng); err != nil || fi.Size() == 0 {
			t.Errorf("%s: engine %q not there: %v\n%s", name, eng, err, so.String())
		}
	}
}

// F-7: while a daemon holds the configured state directory, trtd convert
// refuses with the reason and where to put the model instead; it never
// builds beside the daemon (it used to swap off and delete the daemon's
// swapfile mid-build).
func TestConvertRefusesWhileTheDaemonRuns(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	lock, err := statelock.Acquire(state) // what a running daemon holds
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[paths]\nworker = \"/nonexistent\"\nstate = \""+state+"\"\ninbox = \""+filepath.Join(dir, "inbox")+"\"\n[worker]\nuser = \"\"\n"), 0o644)
	model := testmodels.Write(t, dir, "net.onnx", testmodels.TinyCNN)
	var so, se bytes.Buffer
	code := mainArgs([]string{"convert", model, "--config", cfg}, &so, &se)
	if code != 1 || !strings.Contains(se.String(), "the daemon is running") || !strings.Contains(se.String(), filepath.Join(dir, "inbox")) {
		t.Fatalf("exit %d, stderr %q; want 1 and the reason with the daemon's inbox", code, se.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "net.engine")); !os.IsNotExist(err) {
		t.Errorf("an engine was built beside the daemon: %v", err)
	}
}

// TestConvertStopsOnACompanionItCannotCopy: a companion beside the model
// (here name.calib/ holding a symbolic link, which is never copied) that
// cannot be staged stops the conversion with an error naming it, rather
// than building a different engine without it.
func TestConvertStopsOnACompanionItCannotCopy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte("[paths]\nworker = \""+filepath.Join(dir, "no-worker")+"\"\nstate = \""+filepath.Join(dir, "state")+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := testmodels.Write(t, dir, "net.onnx", testmodels.TinyCNN)
	calib := filepath.Join(dir, "net.calib")
	if err := os.Mkdir(calib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(calib, "batch0.npy")); err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	code := mainArgs([]string{"convert", model, "--out", filepath.Join(dir, "out"), "--config", cfg}, &so, &se)
	if code != 1 || !strings.Contains(se.String(), "batch0.npy") {
		t.Fatalf("exit %d, stderr %q: want 1 and the companion's file named", code, se.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "net.engine")); err == nil {
		t.Fatal("an engine was built without its companion")
	}
}
