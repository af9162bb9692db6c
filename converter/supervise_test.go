package converter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/testmodels"
)

// fakeWorker is the path of the worker's test double, built once.
var fakeWorker string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trtd-fake-worker-")
	if err != nil {
		panic(err)
	}
	fakeWorker = filepath.Join(dir, "trtd-fake-worker")
	out, err := exec.Command("go", "build", "-o", fakeWorker, "github.com/trtd/trtd/cmd/trtd-fake-worker").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the fake worker: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(t *testing.T, behaviour string) (*Worker, Input, string) {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "work")
	eng := filepath.Join(root, "engines")
	os.MkdirAll(work, 0o755)
	os.MkdirAll(eng, 0o755)
	testmodels.Write(t, work, "m.onnx", testmodels.TinyCNN)
	rec := filepath.Join(root, "record.jsonl")
	env := append(Env(), "TRTD_FAKE_WORKER="+behaviour, "TRTD_FAKE_WORKER_RECORD="+rec)
	w := &Worker{Path: fakeWorker, Env: env, Timeout: 30 * time.Second, StderrLimit: 64 << 10, OOMScoreAdj: 1000}
	in := Input{WorkDir: work, Model: "m.onnx", EngineDir: eng, Stages: testLadder()}
	return w, in, rec
}

func TestRunWorkerClassifiesEveryOutcome(t *testing.T) {
	cases := []struct {
		behaviour string
		want      protocol.Class
		reason    string // substring of the reason
	}{
		{"ok", protocol.ClassOK, ""},
		{"oom", protocol.ClassOutOfMemory, ""},
		{"oom-log", protocol.ClassOutOfMemory, ""},
		{"no_tactic", protocol.ClassNoTactic, ""},
		{"unsupported", protocol.ClassUnsupportedModel, ""},
		{"unavailable", protocol.ClassBuilderUnavailable, "TensorRT not available"},
		{"crash", protocol.ClassCrashed, ""},
		{"killself", protocol.ClassOutOfMemory, ""},
		{"bogus", protocol.ClassBadRequest, ""},
	}
	for _, c := range cases {
		t.Run(c.behaviour, func(t *testing.T) {
			w, in, _ := setup(t, "*="+c.behaviour)
			r := w.RunWorker(context.Background(), protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model,
				Engine: filepath.Join(in.EngineDir, "x.engine"), Stage: "fast"}, nil, nil)
			if r.Class != c.want {
				t.Fatalf("class %s (%s), want %s; exit %d signal %q; log %v", r.Class, r.Reason, c.want, r.ExitCode, r.Signal, r.LogTail)
			}
			if c.reason != "" && !strings.Contains(r.Reason, c.reason) {
				t.Errorf("reason %q lacks %q", r.Reason, c.reason)
			}
			_, err := os.Stat(filepath.Join(in.EngineDir, "x.engine"))
			if (err == nil) != (c.want == protocol.ClassOK) {
				t.Errorf("engine exists=%v for class %s", err == nil, r.Class)
			}
		})
	}
}

func TestRunWorkerTimeoutKillsAndReaps(t *testing.T) {
	w, in, _ := setup(t, "*=hang")
	w.Timeout = 500 * time.Millisecond
	r := w.RunWorker(context.Background(), protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model, Engine: filepath.Join(in.EngineDir, "x.engine")}, nil, nil)
	if r.Class != protocol.ClassTimedOut {
		t.Fatalf("class %s, want timed_out", r.Class)
	}
}

func TestRunWorkerCancelStopsIt(t *testing.T) {
	w, in, _ := setup(t, "*=hang")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the worker is running (its first progress event), not
	// after a guessed delay.
	var once sync.Once
	started := func(protocol.Event) { once.Do(cancel) }
	r := w.RunWorker(ctx, protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model, Engine: filepath.Join(in.EngineDir, "x.engine")}, nil, started)
	if r.Class != protocol.ClassCanceled {
		t.Fatalf("class %s, want canceled", r.Class)
	}
}

func TestRunWorkerBoundsStderr(t *testing.T) {
	w, in, _ := setup(t, "*=spew=8")
	w.StderrLimit = 64 << 10
	r := w.RunWorker(context.Background(), protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model, Engine: filepath.Join(in.EngineDir, "x.engine")}, nil, nil)
	if r.Class != protocol.ClassOK {
		t.Fatalf("class %s: %s", r.Class, r.Reason)
	}
	if len(r.Stderr) != 64<<10 {
		t.Fatalf("kept %d bytes of stderr, want exactly the 64 KiB limit of 8 MiB written", len(r.Stderr))
	}
}

func TestWorkerEnvironmentAndOOMScore(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000000")
	w, in, rec := setup(t, "*=ok")
	w.Env = append(Env(), "TRTD_FAKE_WORKER_RECORD="+rec)
	r := w.RunWorker(context.Background(), protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model, Engine: filepath.Join(in.EngineDir, "x.engine"), Stage: "fast"}, nil, nil)
	if r.Class != protocol.ClassOK {
		t.Fatal(r.Reason)
	}
	seen := records(t, rec)[0]
	for _, e := range seen["env"].([]any) {
		if s := e.(string); strings.HasPrefix(s, "NOTIFY_SOCKET") || strings.HasPrefix(s, "WATCHDOG_") {
			t.Errorf("worker inherited %s", s)
		}
	}
	if seen["oom_score_adj"] != "1000" {
		t.Errorf("worker oom_score_adj %v, want 1000", seen["oom_score_adj"])
	}
	if seen["cwd"] != in.WorkDir {
		t.Errorf("worker cwd %v, want %s", seen["cwd"], in.WorkDir)
	}
}

func records(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		json.Unmarshal(sc.Bytes(), &m)
		out = append(out, m)
	}
	return out
}

func TestLadderPaths(t *testing.T) {
	cases := []struct {
		name      string
		behaviour string
		skip      map[string]string
		start     int
		want      []string // stage:outcome
		ok        bool
		stage     string
	}{
		{"first stage works", "*=ok", nil, 0, []string{"fast:ok"}, true, "fast"},
		{"memory steps down", "fast=oom,lean=oom,minimal=ok", nil, 0, []string{"fast:out_of_memory", "lean:out_of_memory", "minimal:ok"}, true, "minimal"},
		{"guard-style kill steps down", "fast=killself,*=ok", nil, 0, []string{"fast:out_of_memory", "lean:ok"}, true, "lean"},
		{"unsupported stops", "fast=unsupported,*=ok", nil, 0, []string{"fast:unsupported_model"}, false, ""},
		{"crash stops", "fast=crash,*=ok", nil, 0, []string{"fast:crashed"}, false, ""},
		{"planner start and skip", "*=ok", map[string]string{"lean": "predicted peak 5 GiB > 3 GiB available"}, 1, []string{"lean:skipped", "minimal:ok"}, true, "minimal"},
		{"all out of memory, no splitter", "*=oom", nil, 0, []string{"fast:out_of_memory", "lean:out_of_memory", "minimal:out_of_memory", "segmented:unsupported_model"}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, in, rec := setup(t, c.behaviour)
			in.Start, in.Skip = c.start, c.skip
			res := w.Ladder(context.Background(), in, Hooks{})
			var got []string
			for _, a := range res.Attempts {
				got = append(got, a.Stage+":"+string(a.Outcome))
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("path %v, want %v", got, c.want)
			}
			if res.OK != c.ok || res.Stage != c.stage {
				t.Fatalf("ok=%v stage=%q, want %v %q", res.OK, res.Stage, c.ok, c.stage)
			}
			if c.ok {
				if _, err := os.Stat(res.Engine); err != nil {
					t.Fatalf("engine: %v", err)
				}
			}
			// The settings each stage sent are the stage's.
			for _, r := range records(t, rec) {
				req := r["request"].(map[string]any)
				st := testStage(t, req["stage"].(string))
				ws := req["settings"].(map[string]any)["workspace_mib"].(float64)
				if int64(ws) != st.Settings.WorkspaceMiB {
					t.Errorf("stage %s sent workspace %v MiB", st.Name, ws)
				}
			}
		})
	}
}

func TestLadderSegmentedBuildsEachPart(t *testing.T) {
	w, in, _ := setup(t, "fast=oom,lean=oom,minimal=oom,segmented=ok")
	h := Hooks{Split: func(ctx context.Context, in Input, parts int) ([]Part, string, error) {
		var out []Part
		for i := 1; i <= parts; i++ {
			name := fmt.Sprintf("part%d.onnx", i)
			testmodels.Write(t, in.WorkDir, name, testmodels.TinyCNN)
			out = append(out, Part{Model: name, Engine: fmt.Sprintf("part%d.engine", i)})
		}
		return out, filepath.Join(in.EngineDir, "manifest.json"), nil
	}}
	res := w.Ladder(context.Background(), in, h)
	if !res.OK || res.Stage != "segmented" || len(res.Parts) != 2 {
		t.Fatalf("ok=%v stage=%s parts=%v reason=%s", res.OK, res.Stage, res.Parts, res.Reason)
	}
	if n := len(res.Attempts); n != 5 || res.Attempts[4].Part != 2 {
		t.Fatalf("attempts %d", n)
	}
}

func intp(i int) *int { return &i }

// testLadder is the built-in ladder of the daemon's configuration as the
// converter receives it (the converter cannot import the daemon's config).
func testLadder() []Stage {
	return []Stage{
		{Name: "fast", Kind: KindBuild, Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024, TimingCache: true}, Swap: SwapNone},
		{Name: "lean", Kind: KindBuild, Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 256, TimingCache: true,
			TacticSources: []string{protocol.TacticJITConvs}, OptimizationLevel: intp(1), MaxAuxStreams: intp(0)}, Swap: SwapEnsure},
		{Name: "minimal", Kind: KindBuild, Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 16, TimingCache: true,
			TacticSources: []string{}, OptimizationLevel: intp(0), MaxAuxStreams: intp(0)}, Swap: SwapMax, DropCaches: true},
		{Name: "segmented", Kind: KindSegmented, Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 16, TimingCache: true,
			TacticSources: []string{}, OptimizationLevel: intp(0), MaxAuxStreams: intp(0)}, Swap: SwapMax, DropCaches: true, Parts: 2},
	}
}

func testStage(t *testing.T, name string) Stage {
	t.Helper()
	for _, s := range testLadder() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return Stage{}
}

// The builder's log lines on the worker's stderr reach the progress hook
// one by one, whole, as EventWorkerLine events.
func TestRunWorkerStreamsStderrLines(t *testing.T) {
	w, in, _ := setup(t, "*=no_tactic")
	var mu sync.Mutex
	var lines []string
	r := w.RunWorker(context.Background(), protocol.Request{Op: protocol.OpBuild, WorkDir: in.WorkDir, Model: in.Model,
		Engine: filepath.Join(in.EngineDir, "x.engine"), Stage: "fast"}, nil, func(ev protocol.Event) {
		if ev.Event == EventWorkerLine {
			mu.Lock()
			lines = append(lines, ev.Message)
			mu.Unlock()
		}
	})
	if r.Class != protocol.ClassNoTactic {
		t.Fatalf("class %s", r.Class)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, "[E] [TRT] 10: [optimizer.cpp::computeCosts::3728]") && !strings.Contains(l, "\n") {
			found = true
		}
	}
	if !found {
		t.Errorf("stderr lines streamed: %q", lines)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	lw := &lineWriter{emit: func(s string) { got = append(got, s) }}
	lw.Write([]byte("one\ntw"))
	lw.Write([]byte("o\r\nthree"))
	lw.Write([]byte(strings.Repeat("x", maxLine+10)))
	lw.Write([]byte("\n"))
	want := []string{"one", "two", "three" + strings.Repeat("x", maxLine-5), strings.Repeat("x", 15)}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %.40q..., want %.40q...", i, got[i], want[i])
		}
	}
}

// A stage whose preparation fails (no swap could be made) still runs, as
// Hooks.BeforeStage says.
func TestBeforeStageErrorStillRunsTheStage(t *testing.T) {
	w, in, _ := setup(t, "*=ok")
	var prepared []string
	res := w.Ladder(context.Background(), in, Hooks{BeforeStage: func(_ context.Context, st Stage) error {
		prepared = append(prepared, st.Name)
		return errors.New("cannot create the swapfile: no space left on device")
	}})
	if !res.OK || res.Stage != "fast" || len(res.Attempts) != 1 || len(prepared) != 1 {
		t.Fatalf("ok=%v stage=%q attempts=%d prepared=%v", res.OK, res.Stage, len(res.Attempts), prepared)
	}
}
