package trtexec

import (
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

// releases trtd drives trtexec on, one per option parser (flags.go).
var releases = []string{"8.0.1", "8.2.1", "8.4.1", "8.5.2", "8.6.1", "10.0.1", "10.3.0", "10.8.0", "10.13.3", "11.1.0"}

// stageSettings are the built-in ladder's stages (daemon/config
// DefaultStages) and the variants a sidecar or the planner produce.
func stageSettings() map[string]protocol.Request {
	fast := protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024, TimingCache: true}
	lean := protocol.Settings{Precision: "fp16", WorkspaceMiB: 256, TacticSources: []string{protocol.TacticJITConvs}, OptimizationLevel: ip(1), MaxAuxStreams: ip(0), TimingCache: true}
	minimal := protocol.Settings{Precision: "fp16", WorkspaceMiB: 16, TacticSources: []string{}, OptimizationLevel: ip(0), MaxAuxStreams: ip(0), TimingCache: true}
	every := protocol.Settings{Precision: "int8", WorkspaceMiB: 64, TF32: bp(false), TacticSources: []string{"cublas", "cublaslt", "cudnn", "edge_mask_convolutions", "jit_convolutions"},
		OptimizationLevel: ip(5), MaxAuxStreams: ip(2), TacticDRAMMiB: 512, DLACore: ip(0), GPUFallback: true}
	shapes := []protocol.Shape{{Input: "input:0", Min: []int64{1, 3, 8, 8}, Opt: []int64{2, 3, 8, 8}, Max: []int64{4, 3, 8, 8}},
		{Input: "mask", Min: []int64{1, 8}, Opt: []int64{2, 8}, Max: []int64{4, 8}}}
	return map[string]protocol.Request{
		"fast":              {Settings: fast},
		"lean":              {Settings: lean},
		"minimal":           {Settings: minimal},
		"fast build-only":   {Settings: fast, ValidateRuns: -1},
		"lean shapes":       {Settings: lean, Shapes: shapes},
		"every setting":     {Settings: every, Calibration: "model.calib.cache", Shapes: shapes, ValidateRuns: 5},
		"int8 uncalibrated": {Settings: protocol.Settings{Precision: "int8"}},
		"fp32":              {Settings: protocol.Settings{Precision: "fp32", TF32: bp(false)}},
	}
}

// TestEveryCommandLineParses: every trtexec command line trtd writes, on
// every release, uses only flags (and tactic source names) that release's
// samples/common/sampleOptions.cpp accepts, in its spelling. The table in
// flags.go cites the line of each.
func TestEveryCommandLineParses(t *testing.T) {
	for _, rel := range releases {
		v, _ := version.Parse(rel)
		key, ok := parserRelease(v)
		if !ok {
			t.Fatalf("%s: no parser", rel)
		}
		for name, req := range stageSettings() {
			req.Model = "model.onnx"
			for _, m := range []Model{{}, {QDQ: true}} {
				line, err := Args(req, v, ".trtd-tmp-e.engine", "timing.cache", m)
				args := line.Args
				if err != nil {
					t.Errorf("%s %s: %v", rel, name, err)
					continue
				}
				t.Logf("ARGS %s %s", rel, strings.Join(args, " "))
				for _, a := range args {
					flag, val, _ := strings.Cut(a, "=")
					if !inTable(flag, key) {
						t.Errorf("%s %s: %s is not a flag of sampleOptions.cpp %s", rel, name, flag, key)
					}
					if flag != "--tacticSources" {
						continue
					}
					for _, tok := range strings.Split(val, ",") {
						if !tokenInTable(strings.TrimLeft(tok, "+-"), key) || !strings.ContainsAny(tok[:1], "+-") {
							t.Errorf("%s %s: tactic source %q is not one sampleOptions.cpp %s knows", rel, name, tok, key)
						}
					}
				}
			}
		}
	}
}

func inTable(flag, key string) bool {
	for _, f := range parserFlags {
		if f.flag == flag {
			_, ok := f.at[key]
			return ok
		}
	}
	return false
}

func tokenInTable(tok, key string) bool {
	for _, f := range tacticTokens {
		if f.token == tok {
			_, ok := f.at[key]
			return ok
		}
	}
	return false
}

// TestFlagTableFacts pins what the parsers say about the flags whose
// presence changed between releases.
func TestFlagTableFacts(t *testing.T) {
	for _, c := range []struct {
		v, flag string
		ok      bool
	}{
		{"8.0.1", "--workspace", true}, {"8.0.1", "--memPoolSize", false}, {"8.4.1", "--memPoolSize", true},
		{"10.0.1", "--workspace", false}, {"8.2.1", "--skipInference", false}, {"8.6.1", "--skipInference", true},
		{"10.0.1", "--buildOnly", false}, {"8.5.2", "--builderOptimizationLevel", false}, {"8.6.1", "--maxAuxStreams", true},
		{"10.13.3", "--fp16", true}, {"11.1.0", "--fp16", false}, {"11.1.0", "--int8", false}, {"11.1.0", "--calib", false},
		{"8.3.2", "--workspace", true}, {"9.2.0", "--onnx", false}, {"7.1.3", "--onnx", false},
	} {
		v, _ := version.Parse(c.v)
		if got := accepts(v, c.flag+"=1"); got != c.ok {
			t.Errorf("accepts(%s, %s) = %v", c.v, c.flag, got)
		}
	}
	for _, c := range []struct {
		v, source string
		ok        bool
	}{
		{"8.0.1", "cublaslt", true}, {"8.2.1", "edge_mask_convolutions", false}, {"8.4.1", "edge_mask_convolutions", true},
		{"8.4.1", "jit_convolutions", false}, {"8.5.2", "jit_convolutions", true}, {"10.16.0", "cublaslt", true}, {"11.1.0", "cublas", false},
	} {
		v, _ := version.Parse(c.v)
		if _, got := acceptsTactic(v, c.source); got != c.ok {
			t.Errorf("acceptsTactic(%s, %s) = %v", c.v, c.source, got)
		}
	}
	if err := checkArgs(version.Version{Major: 10}, []string{"--onnx=m", "--workspace=16", "--tacticSources=-CUBLAS,-FOO"}); err == nil ||
		!strings.Contains(err.Error(), "--workspace=16") || !strings.Contains(err.Error(), "-FOO") {
		t.Errorf("checkArgs = %v", err)
	}
}
