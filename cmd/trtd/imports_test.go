package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDaemonNeverLinksTensorRT enforces the import rule: nothing the trtd
// binary links may reach converter/trt (TensorRT lives only in the worker
// process) and nothing it links may use cgo, so it builds with
// CGO_ENABLED=0 as a static binary.
func TestDaemonNeverLinksTensorRT(t *testing.T) {
	for _, tags := range []string{"", "tensorrt"} {
		cmd := exec.Command("go", "list", "-deps", "-tags", tags, "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			pkg, n, _ := strings.Cut(line, " ")
			if pkg == "github.com/trtd/trtd/converter/trt" {
				t.Errorf("tags %q: trtd links %s", tags, pkg)
			}
			if strings.HasPrefix(pkg, "github.com/trtd/trtd") && n != "0" {
				t.Errorf("tags %q: %s uses cgo", tags, pkg)
			}
		}
	}
	out, err := exec.Command("sh", "-c", "CGO_ENABLED=0 go build -o /dev/null .").CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 build failed: %v\n%s", err, out)
	}
}

func TestEveryCommandHasHelpWithExample(t *testing.T) {
	for name, c := range commands {
		if !strings.Contains(c.Usage, "Example") {
			t.Errorf("trtd %s -h has no example", name)
		}
		var so, se strings.Builder
		if code := mainArgs([]string{name, "-h"}, &so, &se); code != 0 {
			t.Errorf("trtd %s -h exited %d: %s", name, code, se.String())
		}
		if !strings.Contains(so.String(), "Usage: trtd "+name) {
			t.Errorf("trtd %s -h printed %q", name, so.String())
		}
	}
	for _, want := range []string{"run", "convert", "status", "version"} {
		if _, ok := commands[want]; !ok {
			t.Errorf("command %s missing", want)
		}
	}
}
