package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/daemon/fleet/registrytest"
	"github.com/trtd/trtd/internal/testmodels"
)

// TestFleetCommands pushes an engine trtd convert built, lists it, and
// pulls it by its model, against Debian's docker-registry; a device with
// another compute capability sees and gets nothing.
func TestFleetCommands(t *testing.T) {
	s := registrytest.T(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "trtd-fake-worker")
	if out, err := exec.Command("go", "build", "-o", fake, "github.com/trtd/trtd/cmd/trtd-fake-worker").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	outbox := filepath.Join(dir, "outbox")
	plain := filepath.Join(dir, "plain.toml")
	os.WriteFile(plain, []byte("[paths]\nworker = \""+fake+"\"\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n"), 0o644)
	model := testmodels.Write(t, dir, "net.onnx", testmodels.TinyCNN)
	t.Setenv("TRTD_FAKE_WORKER", "*=ok")
	run := func(args ...string) (int, string) {
		var so, se bytes.Buffer
		code := mainArgs(args, &so, &se)
		return code, so.String() + se.String()
	}
	if code, out := run("convert", model, "--out", outbox, "--config", plain); code != 0 {
		t.Fatalf("convert: %d %s", code, out)
	}
	creds, err := s.Creds(dir, registrytest.Password)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fleet.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[paths]\nworker = %q\noutbox = %q\n[worker]\nuser = \"\"\n[swap]\nenabled = false\n[fleet]\nregistry = %q\ncredentials = %q\nca = %q\n",
		fake, outbox, s.Repository("trtd/engines"), creds, s.CA)), 0o644)

	steps := []struct {
		args []string
		cc   string
		code int
		say  string
	}{
		{[]string{"fleet", "push", "net", "--config", cfg}, "", 0, "net: pushed to " + s.Addr},
		{[]string{"fleet", "push", "net.engine", "--config", cfg}, "", 0, "net: already in " + s.Addr},
		{[]string{"fleet", "ls", "--config", cfg}, "", 0, "1 engine(s) for this device"},
		{[]string{"fleet", "ls", "--config", cfg}, "7.2", 0, "0 engine(s) for this device"},
		{[]string{"fleet", "ls", "--all", "--config", cfg}, "7.2", 0, "1 engine(s) in all"},
		{[]string{"fleet", "pull", model, "--out", filepath.Join(dir, "pulled"), "--config", cfg}, "7.2", 1, "no engine for this device"},
		{[]string{"fleet", "pull", model, "--out", filepath.Join(dir, "pulled"), "--config", cfg}, "", 0, "sha256 and provenance checked"},
		{[]string{"fleet", "push", "../x", "--config", cfg}, "", 2, "not a path"},
		{[]string{"fleet", "frob", "--config", cfg}, "", 2, "say ls, push NAME or pull"},
		{[]string{"fleet", "ls", "--config", plain}, "", 2, "no registry"},
	}
	os.MkdirAll(filepath.Join(dir, "pulled"), 0o755)
	for _, st := range steps {
		t.Setenv("TRTD_FAKE_WORKER_CC", st.cc)
		code, out := run(st.args...)
		if code != st.code || !strings.Contains(out, st.say) {
			t.Errorf("trtd %s (cc %q): exit %d, want %d with %q:\n%s", strings.Join(st.args[:2], " "), st.cc, code, st.code, st.say, out)
		}
	}
	a, _ := os.ReadFile(filepath.Join(outbox, "net.engine"))
	b, _ := os.ReadFile(filepath.Join(dir, "pulled", "net.engine"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("the pulled engine differs from the pushed one")
	}
	if _, err := os.Stat(filepath.Join(dir, "pulled", "net.engine.json")); err != nil {
		t.Error(err)
	}
	os.Chmod(creds, 0o644)
	if code, out := run("fleet", "ls", "--config", cfg); code != 2 || !strings.Contains(out, "chmod 600") {
		t.Errorf("world-readable credentials: exit %d: %s", code, out)
	}
}
