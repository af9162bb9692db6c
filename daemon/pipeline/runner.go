package pipeline

import (
	"log/slog"
	"sync"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/metrics"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/status"
)

// Runner takes jobs from claim to a terminal state, one at a time.
type Runner struct {
	Cfg    *config.Config
	Log    *slog.Logger
	Store  *jobs.Store
	Worker *converter.Worker
	Mem    memory.Memory
	Status *status.Board
	Outbox *outbox.Outbox
	// Version is trtd's version for the reports.
	Version string
	// Fleet shares engines through the fleet's registry (nil: off).
	Fleet *fleet.Service
	// Metrics are the textfile counters (nil: none).
	Metrics *metrics.Counters
	// Inspector reads each upload once, for the inbox's check, the claim
	// and the job (required; the inbox's Inspect is its Check).
	Inspector *Inspector

	mu         sync.Mutex
	builder    *protocol.Builder
	builderErr string
	lastProbe  time.Time
	// fallback says why no cgo worker runs (daemon/workers), for the
	// builder_unavailable reason; "" when one does.
	fallback string
	// outboxRetry is when to retry publishing engines kept because the
	// outbox could not be written (zero: none waits).
	outboxRetry time.Time
}
