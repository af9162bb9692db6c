package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/daemon/workers"
)

// workerTree writes a config whose worker directory holds the trtexec
// worker and the TensorRT 8 and 10 cgo workers, and (withStatus) a status
// file of a running daemon that chose trt10.
func workerTree(t *testing.T, withStatus bool) string {
	t.Helper()
	root := t.TempDir()
	lib := filepath.Join(root, "lib")
	os.MkdirAll(lib, 0o755)
	for _, n := range []string{"trtd-worker", "trtd-worker-trt8", "trtd-worker-trt10"} {
		if err := os.WriteFile(filepath.Join(lib, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(root, "state")
	cfg := fmt.Sprintf("[paths]\ninbox = %q\noutbox = %q\nstate = %q\nfailed = %q\nworker = %q\n",
		filepath.Join(root, "in"), filepath.Join(root, "out"), state, filepath.Join(root, "failed"), filepath.Join(lib, "trtd-worker"))
	p := filepath.Join(root, "config.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if withStatus {
		os.MkdirAll(state, 0o755)
		sel := workers.Selection{Chosen: workers.Worker{Path: filepath.Join(lib, "trtd-worker-trt10"), ABI: 10},
			Reason: "matches libnvinfer.so.10 (/usr/lib/aarch64-linux-gnu/libnvinfer.so.10) and its probe passed"}
		b, _ := json.Marshal(status.Status{PID: os.Getpid(), State: "idle", Worker: &sel})
		cfgLoaded, err := loadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgLoaded.StatusPath(), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestVersionNamesWorkers(t *testing.T) {
	t.Setenv("LD_LIBRARY_PATH", t.TempDir()) // no libnvinfer there
	for _, tc := range []struct {
		status bool
		want   []string
	}{
		{false, []string{"workers: trt8, trt10, trtexec (in ", "matches this system: trtexec (", "trtexec fallback",
			"in use by the daemon: none yet"}},
		{true, []string{"workers: trt8, trt10, trtexec", "in use by the daemon: trt10 (", "and its probe passed"}},
	} {
		var so, se strings.Builder
		if code := mainArgs([]string{"version", "--config", workerTree(t, tc.status)}, &so, &se); code != 0 {
			t.Fatalf("exit %d: %s", code, se.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(so.String(), w) {
				t.Errorf("status file %v: output lacks %q:\n%s", tc.status, w, so.String())
			}
		}
	}
}

func TestDiagnoseJSONNamesWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("diagnose may run nvidia-smi")
	}
	var so, se strings.Builder
	if code := mainArgs([]string{"diagnose", "--json", "--config", workerTree(t, true)}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	var d struct {
		MemTotal int64      `json:"mem_total"`
		Workers  workerInfo `json:"workers"`
	}
	if err := json.Unmarshal([]byte(so.String()), &d); err != nil {
		t.Fatal(err)
	}
	if d.MemTotal == 0 || len(d.Workers.Present) != 3 || d.Workers.InUse == nil || d.Workers.InUse.Chosen.ABI != 10 || !d.Workers.Running {
		t.Fatalf("diagnose --json: %+v", d)
	}
}
