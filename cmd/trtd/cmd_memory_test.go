package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiagnoseFixture(t *testing.T) {
	root := filepath.Join("..", "..", "daemon", "sysinfo", "testdata", "nano-4gb")
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte("[swap]\ndir = \"/var/lib/trtd/swap\"\n"), 0o644)
	var out, errb bytes.Buffer
	if code := mainArgs([]string{"diagnose", "--root", root, "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"NVIDIA Jetson Nano Developer Kit", "32.7.1 (JetPack 4.6.1)", "TensorRT       8.2.1", "Recommendations:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := mainArgs([]string{"diagnose", "--json", "--root", root, "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("json exit %d: %s", code, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["platform"] != "nano" {
		t.Errorf("json: %v %v", err, v["platform"])
	}
}

func TestSwapUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"swap"}, {"swap", "grow"}, {"swap", "ensure"}, {"swap", "ensure", "lots"}} {
		var out, errb bytes.Buffer
		if code := mainArgs(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

func TestSwapStatusTmpState(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[paths]\nstate = \""+dir+"/state\"\n[swap]\ndir = \""+dir+"/swap\"\n"), 0o644)
	var out, errb bytes.Buffer
	if code := mainArgs([]string{"swap", "status", "--json", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var st struct {
		Dir   string `json:"dir"`
		Files []any  `json:"files"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Dir != dir+"/swap" || len(st.Files) != 0 {
		t.Errorf("status %s: %v", out.String(), err)
	}
}
