package converter

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
)

// TestNextStepPerClass pins the ladder's choice for every class.
func TestNextStepPerClass(t *testing.T) {
	for c, want := range map[protocol.Class]Step{
		protocol.ClassOK:                 Stop,
		protocol.ClassOutOfMemory:        StepDown,
		protocol.ClassNoTactic:           StepDownKeepWorkspace,
		protocol.ClassNoImplementation:   NoLessWorkspace,
		protocol.ClassUnsupportedModel:   Stop,
		protocol.ClassBuilderUnavailable: Stop,
		protocol.ClassBadRequest:         Stop,
		protocol.ClassInvalidEngine:      Stop,
		protocol.ClassCrashed:            Stop,
		protocol.ClassTimedOut:           Stop,
		protocol.ClassCanceled:           Stop,
	} {
		if got := NextStep[c]; got != want {
			t.Errorf("NextStep[%s] = %d, want %d", c, got, want)
		}
	}
}

// TestLadderStepsPerClass runs the built-in ladder (fast 1 GiB, lean
// 256 MiB, minimal 16 MiB, segmented 16 MiB) against the worker's test
// double and checks the path and the workspace each stage was given.
func TestLadderStepsPerClass(t *testing.T) {
	for _, c := range []struct {
		name, behaviour string
		want            string // stage:outcome:workspace MiB (as sent; "-" when it did not run)
		class           protocol.Class
	}{
		{"out of memory steps down with each stage's own workspace", "fast=oom,*=ok",
			"fast:out_of_memory:1024 lean:ok:256", protocol.ClassOK},
		// The double prints "Tactic Device request: 200MB": minimal keeps
		// 200 MiB instead of its 16.
		{"no tactic fits: the next stage keeps what TensorRT asked for", "fast=oom,lean=no_tactic,*=ok",
			"fast:out_of_memory:1024 lean:no_tactic_fits:256 minimal:ok:200", protocol.ClassOK},
		{"no implementation without memory trouble does not step down to less workspace", "fast=no_impl,*=ok",
			"fast:no_implementation:1024 lean:skipped:- minimal:skipped:- segmented:skipped:-", protocol.ClassNoImplementation},
		{"unsupported model stops", "lean=unsupported,fast=oom,*=ok",
			"fast:out_of_memory:1024 lean:unsupported_model:256", protocol.ClassUnsupportedModel},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, in, rec := setup(t, c.behaviour)
			res := w.Ladder(context.Background(), in, Hooks{})
			sent := map[string]float64{}
			for _, r := range records(t, rec) {
				req := r["request"].(map[string]any)
				sent[req["stage"].(string)] = req["settings"].(map[string]any)["workspace_mib"].(float64)
			}
			var got []string
			for _, a := range res.Attempts {
				ws := "-"
				if v, ok := sent[a.Stage]; ok {
					ws = strconv.FormatFloat(v, 'f', -1, 64)
				}
				got = append(got, a.Stage+":"+string(a.Outcome)+":"+ws)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("path\n got  %s\n want %s", strings.Join(got, " "), c.want)
			}
			if res.Class != c.class {
				t.Errorf("class %s (%s), want %s", res.Class, res.Reason, c.class)
			}
		})
	}
}

// The attempt says where its int8 scales came from as the worker decided
// it (Result.Int8), and nothing when the worker says nothing.
func TestLadderInt8FromWorker(t *testing.T) {
	for beh, want := range map[string]string{
		"*=int8=cache":      report.Int8FromCache,
		"*=int8=calibrated": report.Int8Calibrated,
		"*=int8=refused":    report.Int8Refused,
		"*=ok":              "",
	} {
		w, in, _ := setup(t, beh)
		res := w.Ladder(context.Background(), in, Hooks{})
		if res.Class != protocol.ClassOK || len(res.Attempts) == 0 {
			t.Fatalf("%s: class %s (%s)", beh, res.Class, res.Reason)
		}
		if got := res.Attempts[0].Int8; got != want {
			t.Errorf("%s: attempt int8 %q, want %q", beh, got, want)
		}
	}
}
