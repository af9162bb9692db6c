package config_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/testmodels"
)

// fakeTrtexecFor writes a TEST DOUBLE of trtexec: it prints the banner of
// TensorRT vBANNER (the encoding of trtexec.cpp's "&&&& RUNNING
// TensorRT.trtexec [TensorRT v8001]"), records its argv one per line, and
// builds and "runs" an engine the way a successful trtexec does.
func fakeTrtexecFor(t *testing.T, banner, record string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trtexec")
	script := `#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v` + banner + `] # trtexec $*"
[ "$1" = "--help" ] && exit 0
: > "` + record + `"
for a in "$@"; do echo "$a" >> "` + record + `"; case "$a" in --saveEngine=*) ENGINE="${a#--saveEngine=}";; esac; done
printf engine > "$ENGINE"
echo "[I] Engine built in 1.5 sec."
echo "[I] Latency: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEmptyTacticSetReachesTrtexec follows tactic_sources = [] from the
// config file through the ladder, the request the daemon writes, the real
// trtd-worker (trtexec backend) to the flags trtexec gets: every source
// the release's --tacticSources knows must be named off. Before, the empty
// set was dropped by omitempty and trtexec ran with TensorRT's defaults
// (cuBLAS, cuBLASLt and cuDNN on).
func TestEmptyTacticSetReachesTrtexec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker")
	}
	worker := filepath.Join(t.TempDir(), "trtd-worker")
	if out, err := exec.Command("go", "build", "-o", worker, "github.com/trtd/trtd/cmd/trtd-worker").CombinedOutput(); err != nil {
		t.Fatalf("building the worker: %v\n%s", err, out)
	}
	cfg, err := config.Parse("trtd.toml", []byte(`
[[stage]]
name = "minimal"
kind = "build"
precision = "fp16"
workspace = "16M"
tactic_sources = []
swap = "none"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ banner, want string }{
		{"8001", "--tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN"},                                             // 8.0.1, JetPack 4.6
		{"8201", "--tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN"},                                             // 8.2.1, JetPack 4.6.1+
		{"100001", "--tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,-JIT_CONVOLUTIONS"}, // 10.0: cuBLASLt on by default
		{"100300", "--tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,-JIT_CONVOLUTIONS"}, // 10.3, JetPack 6.1
	} {
		t.Run(c.banner, func(t *testing.T) {
			root := t.TempDir()
			work, eng := filepath.Join(root, "work"), filepath.Join(root, "engines")
			os.MkdirAll(work, 0o755)
			os.MkdirAll(eng, 0o755)
			testmodels.Write(t, work, "m.onnx", testmodels.TinyCNN)
			rec := filepath.Join(root, "argv")
			w := &converter.Worker{Path: worker, Env: converter.Env(), Timeout: time.Minute, StderrLimit: 64 << 10}
			// As the daemon's pipeline does: the config's stages, converted.
			in := converter.Input{WorkDir: work, Model: "m.onnx", EngineDir: eng, Stages: config.ConverterStages(cfg.Stages), Backend: "trtexec", Trtexec: fakeTrtexecFor(t, c.banner, rec)}
			var sent protocol.Settings
			res := w.Ladder(context.Background(), in, converter.Hooks{Started: func(st converter.Stage, _ int) { sent = st.Settings }})
			if !res.OK {
				t.Fatalf("ladder: %s %s", res.Class, res.Reason)
			}
			if sent.TacticSources == nil || len(sent.TacticSources) != 0 {
				t.Fatalf("request tactic sources = %#v, want the empty set", sent.TacticSources)
			}
			argv, err := os.ReadFile(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains("\n"+string(argv), "\n"+c.want+"\n") {
				t.Errorf("trtexec argv lacks %s:\n%s", c.want, argv)
			}
		})
	}
}
