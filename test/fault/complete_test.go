package fault

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

// TestUploadStallsAtFieldBoundary (F-14): an upload pauses longer than the
// settle time exactly after a top-level field, so what is there is a whole
// model, and goes on after the claim (the writer's descriptor follows the
// renamed file). The engine used to be built from the prefix while the
// kept model and the report disagreed with it. Now what is published is
// built from, and reported as, the complete bytes.
func TestUploadStallsAtFieldBoundary(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_FAKE_WORKER=*=slow=2s")
	prefix := testmodels.TinyCNN
	// More top-level fields: metadata_props (14) entries, a valid model too.
	rest := cat(pbBytes(14, cat(pbStr(1, "note"), pbStr(2, strings.Repeat("x", 4096)))))
	full := append(append([]byte(nil), prefix...), rest...)
	f, err := os.OpenFile(filepath.Join(e.inbox, "grow.onnx"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(prefix); err != nil {
		t.Fatal(err)
	}
	// The stall: the prefix is judged complete, claimed, and its build starts.
	if !eventually(60*time.Second, func() bool {
		js := e.jobs()
		return len(js) == 1 && js[0].State == "building"
	}) {
		t.Fatalf("the prefix was not claimed and built: %+v", e.jobs())
	}
	if _, err := f.Write(rest); err != nil {
		t.Fatal(err)
	}
	f.Close()
	js := e.waitJobs(1, 60*time.Second)
	if js[0].State != "done" {
		t.Fatalf("job %s: %s", js[0].State, js[0].Reason)
	}
	r := e.reports()["grow.onnx"]
	if len(r) != 1 || r[0].Model.SHA256 != hash(full) {
		t.Fatalf("report describes sha %v, the complete upload is %s", r, hash(full)[:12])
	}
	if got := e.engines()["grow.engine"]; got != hash(full) {
		t.Fatalf("the engine was built from sha %.12s, not the complete upload %.12s", got, hash(full))
	}
	if b, err := os.ReadFile(filepath.Join(e.state, "jobs", js[0].ID, "model", "grow.onnx")); err != nil || hash(b) != hash(full) {
		t.Fatalf("kept model differs from the complete upload: %v", err)
	}
}
