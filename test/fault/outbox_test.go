package fault

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

// TestOutboxUnwritableKeepsEngine (F-13): the outbox cannot be written when
// a build finishes (here it was replaced by a file). The engine used to be
// thrown away as a permanent, unreported failure; it is now kept, the job
// waits, and once the outbox is back the same build is published, with
// its attempts, and nothing is built twice.
func TestOutboxUnwritableKeepsEngine(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t) // retry_interval 1s
	e.start("TRTD_FAKE_WORKER=*=ok")
	if err := os.RemoveAll(e.outbox); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.outbox, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := testmodels.TinyCNN
	e.drop("m.onnx", data)
	deadline := time.Now().Add(60 * time.Second)
	for {
		js := e.jobs()
		if len(js) == 1 && js[0].State == "waiting_for_builder" && js[0].Step == "outbox_blocked" {
			if !strings.Contains(js[0].Reason, "kept") {
				t.Fatalf("job reason %q does not say the engine is kept", js[0].Reason)
			}
			break
		}
		if len(js) == 1 && terminal(js[0].State) {
			t.Fatalf("job ended %s (%s) while the outbox could not be written", js[0].State, js[0].Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never waited for the outbox: %+v", js)
		}
		time.Sleep(25 * time.Millisecond)
	}
	os.Remove(e.outbox)
	if err := os.Mkdir(e.outbox, 0o755); err != nil {
		t.Fatal(err)
	}
	checkSettled(t, e, "m.onnx", data, true)
	r := e.reports()["m.onnx"][0]
	if r.Outcome != "built" || len(r.Attempts) == 0 {
		t.Fatalf("report %+v, want the build's own report (built, with its attempts)", r)
	}
	if n := strings.Count(e.log(), `"event":"stage_started"`); n != 1 {
		t.Errorf("the model was built %d times", n)
	}
}
