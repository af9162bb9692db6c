package report

import (
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

func TestLatencyNote(t *testing.T) {
	if got := LatencyNote(&protocol.Validation{LatencyIncludesTransfers: true}); !strings.Contains(got, "host-device copies") {
		t.Errorf("trtexec latency not labelled: %q", got)
	}
	if got := LatencyNote(&protocol.Validation{}); got != "" {
		t.Errorf("API latency labelled: %q", got)
	}
	if got := LatencyNote(nil); got != "" {
		t.Errorf("nil: %q", got)
	}
}
