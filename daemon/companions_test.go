package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/internal/testmodels"
)

// F-5: a 2 GiB settings file is refused with a report before anything
// reads it (it used to be read whole: 8.5 GB RSS), and the model is kept.
func TestOversizedSidecarRefusedWithReport(t *testing.T) {
	tr := newTree(t, "")
	tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	f, err := os.Create(filepath.Join(tr.cfg.Paths.Inbox, "big.toml"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30)
	f.Close()
	tr.drop(t, "big.onnx", testmodels.TinyCNN)
	r := tr.waitReport(t, "big.onnx", 30*time.Second, report.OutcomeRejected)
	if !strings.Contains(r.Reason, "settings file big.toml is 2147483648 bytes (limit 65536)") {
		t.Errorf("reason %q", r.Reason)
	}
	if _, err := os.Stat(r.KeptModel); err != nil {
		t.Errorf("model not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.KeptModel), "big.toml")); err != nil {
		t.Errorf("sidecar not kept beside the model: %v", err)
	}
}
