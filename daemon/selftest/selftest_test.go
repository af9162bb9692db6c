package selftest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/daemon/config"
)

func TestModelIsValidONNX(t *testing.T) {
	if !bytes.Equal(Model(), Model()) {
		t.Fatal("Model is not deterministic")
	}
	m, err := onnx.Read(bytes.NewReader(Model()), int64(len(Model())), "")
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	var ops []string
	for _, n := range g.Nodes {
		ops = append(ops, n.OpType)
	}
	if m.IRVersion != 8 || m.Opsets[""] != 13 || strings.Join(ops, ",") != "Add,Relu" ||
		len(g.Inputs) != 1 || g.Inputs[0].Name != "x" || len(g.Outputs) != 1 || g.Outputs[0].Name != "y" ||
		len(g.Initializers) != 1 || fmt.Sprint(g.Initializers[0].Dims) != "[1 64]" || g.Initializers[0].Data.Len != 4*ModelInputs {
		t.Fatalf("model: ir %d opsets %v ops %v inputs %v outputs %v inits %v", m.IRVersion, m.Opsets, ops, g.Inputs, g.Outputs, g.Initializers)
	}
	for _, v := range []*onnx.ValueInfo{g.Inputs[0], g.Outputs[0]} {
		if v.DType() != "FLOAT" || !v.Type.HasShape || len(v.Type.Shape) != 2 || v.Type.Shape[1].Value != ModelInputs {
			t.Errorf("%s: type %s shape %+v", v.Name, v.DType(), v.Type.Shape)
		}
	}
}

// tree is a config whose worker directory holds the pure-Go worker (the
// trtexec fallback) and, when cgo != "", that file as trtd-worker-trt8.
// Its inbox and outbox do not exist: the selftest must not create them.
func tree(t *testing.T, cgo string) (*config.Config, string) {
	t.Helper()
	root := t.TempDir()
	lib := filepath.Join(root, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(lib, "trtd-worker"), "./cmd/trtd-worker")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if cgo != "" {
		if err := os.Symlink(cgo, filepath.Join(lib, "trtd-worker-trt8")); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf("[paths]\ninbox = %q\noutbox = %q\nstate = %q\nfailed = %q\nworker = %q\n[worker]\nuser = \"\"\n",
		filepath.Join(root, "inbox"), filepath.Join(root, "outbox"), filepath.Join(root, "state"), filepath.Join(root, "failed"),
		filepath.Join(lib, "trtd-worker"))
	p := filepath.Join(root, "config.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, root
}

func check(t *testing.T, r *Result, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func untouched(t *testing.T, cfg *config.Config, tmp string) {
	t.Helper()
	for _, d := range []string{cfg.Paths.Inbox, cfg.Paths.Outbox, cfg.Paths.State} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("selftest created %s", d)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "trtd-selftest-*")); len(left) > 0 {
		t.Errorf("selftest left %v", left)
	}
}

func TestWithoutTensorRT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker")
	}
	cfg, _ := tree(t, "")
	tmp, dev := t.TempDir(), t.TempDir()
	r, err := Run(context.Background(), "test", Options{Config: cfg, LibDirs: []string{t.TempDir()}, DevDir: dev, TempDir: tmp,
		Trtexec: filepath.Join(t.TempDir(), "no-trtexec"), WorkerEnv: []string{"PATH=/nonexistent"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass {
		t.Fatal("selftest passed without TensorRT")
	}
	trt := check(t, r, "TensorRT installed")
	if trt.Pass || !strings.Contains(trt.Fix, "install TensorRT") || !strings.Contains(trt.Fix, "nvidia-tensorrt") {
		t.Errorf("TensorRT check: %+v", trt)
	}
	if b := check(t, r, "build"); b.Pass || !strings.Contains(b.Detail, "no backend is present") {
		t.Errorf("build check: %+v", b)
	}
	if d := check(t, r, "GPU device nodes"); d.Pass || d.Fix == "" {
		t.Errorf("device check: %+v", d)
	}
	if !r.Workers.Fallback || !strings.Contains(r.Workers.Reason, "no libnvinfer.so.N found") {
		t.Errorf("workers: %+v", r.Workers)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAIL  TensorRT installed: ", "      fix: install TensorRT", "selftest: FAIL (", "TensorRT:  not found"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(r)
	if !bytes.Contains(b, []byte(`"pass":false`)) || !bytes.Contains(b, []byte(`"fix":"install TensorRT`)) {
		t.Errorf("json: %s", b)
	}
	untouched(t, cfg, tmp)
}

// TestAgainstTheDouble runs the cgo worker built against TensorRT 8.2's
// headers with the TensorRT test double (make test-trt builds both into
// $TRTDOUBLE_DIR/8.2 and runs this).
func TestAgainstTheDouble(t *testing.T) {
	dir := os.Getenv("TRTDOUBLE_DIR")
	if dir == "" || testing.Short() {
		t.Skip("TRTDOUBLE_DIR is not set: make test-trt runs this against the TensorRT test double")
	}
	lib := filepath.Join(dir, "8.2")
	if _, err := os.Stat(filepath.Join(lib, "trtd-worker")); err != nil {
		t.Skipf("no TensorRT 8.2 double in %s: %v", dir, err)
	}
	cfg, _ := tree(t, filepath.Join(lib, "trtd-worker"))
	tmp, dev := t.TempDir(), t.TempDir()
	for _, n := range []string{"nvhost-ctrl", "nvmap"} { // stand-ins for the nodes: only their modes are read
		if err := os.WriteFile(filepath.Join(dev, n), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "LD_LIBRARY_PATH="+lib)
	r, err := Run(context.Background(), "test", Options{Config: cfg, WorkerEnv: env, DevDir: dev, TempDir: tmp,
		Trtexec: filepath.Join(t.TempDir(), "no-trtexec")})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !r.Pass {
		t.Fatalf("selftest failed against the double:\n%s", out.String())
	}
	if len(r.Backends) != 1 || r.Backends[0].Backend != "api" || !r.Backends[0].Pass || r.Backends[0].PeakRSS <= 0 || r.Backends[0].EngineBytes <= 0 {
		t.Errorf("backends %+v", r.Backends)
	}
	if r.Workers.Chosen.ABI != 8 || r.Workers.Fallback {
		t.Errorf("worker %+v", r.Workers)
	}
	if !strings.HasPrefix(r.TensorRT, "8.2") || !strings.Contains(r.CUDA, "runtime 10.2") {
		t.Errorf("versions: TensorRT %q CUDA %q", r.TensorRT, r.CUDA)
	}
	if !strings.Contains(out.String(), "selftest: PASS (") || !strings.Contains(out.String(), "PASS  build through api: trtd-worker-trt8: ") {
		t.Errorf("text:\n%s", out.String())
	}
	untouched(t, cfg, tmp)
}

func TestLsMode(t *testing.T) {
	for _, c := range []struct {
		m    os.FileMode
		want string
	}{
		{os.ModeDevice | os.ModeCharDevice | 0o660, "crw-rw----"},
		{os.ModeDevice | 0o600, "brw-------"},
		{os.ModeDir | 0o755, "drwxr-xr-x"},
		{0o644, "-rw-r--r--"},
	} {
		if got := lsMode(c.m); got != c.want {
			t.Errorf("lsMode(%v) = %q, want %q", c.m, got, c.want)
		}
	}
}

// The worker user's groups are listed once each, the primary one first
// (its credential also carries the primary group among the others).
func TestIdentityGroupsOnceEach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("resolving the worker user's credential needs root")
	}
	var r Result
	r.identity("root")
	seen := map[uint32]bool{}
	for _, g := range r.Identity.gids {
		if seen[g] {
			t.Fatalf("group %d listed twice: %v", g, r.Identity.gids)
		}
		seen[g] = true
	}
	if len(r.Identity.gids) == 0 || r.Identity.gids[0] != 0 {
		t.Errorf("root's primary group first: %v", r.Identity.gids)
	}
}
