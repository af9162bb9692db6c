// Package report is the diagnostic report trtd writes beside every result:
// a versioned JSON document (the contract scripts rely on), a Markdown view
// for terminals, and an HTML page with the memory plot. The model here is
// plain data; renderers never compute decisions.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/device"
)

// SchemaVersion of the JSON report. Bump on incompatible changes.
const SchemaVersion = 1

// Outcomes of a job.
const (
	OutcomeBuilt              = "built"
	OutcomeReused             = "reused"
	OutcomeFailed             = "failed"
	OutcomeBuilderUnavailable = "builder_unavailable"
	OutcomeRejected           = "rejected"
)

// Report is everything trtd knows about one job.
type Report struct {
	Schema          int               `json:"schema"`
	Tool            Tool              `json:"tool"`
	Generated       time.Time         `json:"generated"`
	Job             string            `json:"job,omitempty"`
	Model           Model             `json:"model"`
	Outcome         string            `json:"outcome"`
	Reason          string            `json:"reason,omitempty"`
	Engine          *Engine           `json:"engine,omitempty"`
	Builder         *protocol.Builder `json:"builder,omitempty"`
	Device          *device.Device    `json:"device,omitempty"`
	Plan            *Plan             `json:"plan,omitempty"`
	Attempts        []Attempt         `json:"attempts"`
	Reuse           *Reuse            `json:"reuse,omitempty"`
	Recommendations []string          `json:"recommendations,omitempty"`
	Portability     string            `json:"portability,omitempty"`
	Waiting         *Waiting          `json:"waiting,omitempty"`
	KeptModel       string            `json:"kept_model,omitempty"`
	Fleet           *Fleet            `json:"fleet,omitempty"`
}

// Fleet says how the fleet's OCI registry took part in the job.
type Fleet struct {
	Registry string `json:"registry"`
	// Pulled is set when the engine came from the registry.
	Pulled *FleetOrigin `json:"pulled,omitempty"`
	// Pull says why no engine was pulled when the registry could not be
	// used or what it held was refused ("" = it had none).
	Pull string `json:"pull,omitempty"`
	// Start is the stage peers of this device kind found first, where the
	// ladder started.
	Start string `json:"start,omitempty"`
	// Push says what became of this device's engine ("queued for ...").
	Push string `json:"push,omitempty"`
}

// FleetOrigin is where a pulled engine came from.
type FleetOrigin struct {
	Tag     string    `json:"tag"`
	Digest  string    `json:"digest"`
	BuiltBy string    `json:"built_by,omitempty"`
	Built   time.Time `json:"built"`
	Stage   string    `json:"stage,omitempty"`
	// Checked lists what was verified before publishing.
	Checked string `json:"checked"`
}

// Tool identifies the trtd that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Model describes the uploaded model.
type Model struct {
	Name     string        `json:"name"`
	SHA256   string        `json:"sha256,omitempty"`
	Size     int64         `json:"size"`
	Sidecar  string        `json:"sidecar,omitempty"`
	Summary  *onnx.Summary `json:"summary,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// Engine is what was published.
type Engine struct {
	File     string       `json:"file"`
	Bytes    int64        `json:"bytes"`
	SHA256   string       `json:"sha256"`
	Stage    string       `json:"stage"`
	Parts    []EnginePart `json:"parts,omitempty"`
	Manifest string       `json:"manifest,omitempty"`
}

// EnginePart is one engine of a segmented build.
type EnginePart struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Reuse says an identical earlier build was reused. The report then
// carries that build's attempts, plan and builder: what made the engine.
type Reuse struct {
	FromJob  string    `json:"from_job"`
	CacheKey string    `json:"cache_key"`
	Built    time.Time `json:"built,omitempty"`
}

// Waiting explains a job parked for lack of a builder.
type Waiting struct {
	Missing   string    `json:"missing"`
	WouldDo   []string  `json:"would_do"`
	NextRetry time.Time `json:"next_retry"`
}

// Plan is the planner's view, as reported.
type Plan struct {
	Start     string      `json:"start"`
	SwapBytes int64       `json:"swap_bytes"`
	Stages    []PlanStage `json:"stages"`
	Notes     []string    `json:"notes,omitempty"`
}

// PlanStage is one stage's prediction.
type PlanStage struct {
	Name      string `json:"name"`
	PeakBytes int64  `json:"peak_bytes"`
	Skip      bool   `json:"skip,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Attempt is one stage's run of the worker.
type Attempt struct {
	Stage    string            `json:"stage"`
	Kind     string            `json:"kind"`
	Settings protocol.Settings `json:"settings"`
	// Applied lists the settings the installed TensorRT applied; Skipped
	// those it did not, each with why ("optimization level 3: exists from
	// TensorRT 8.6; this is TensorRT 8.2.1"). Both are empty when no
	// TensorRT release was known (no builder ran).
	Applied    []string             `json:"settings_applied,omitempty"`
	Skipped    []string             `json:"settings_skipped,omitempty"`
	Start      time.Time            `json:"start"`
	DurationMs int64                `json:"duration_ms"`
	Outcome    protocol.Class       `json:"outcome"`
	Reason     string               `json:"reason,omitempty"`
	ExitCode   int                  `json:"exit_code"`
	Signal     string               `json:"signal,omitempty"`
	LogTail    []string             `json:"log_tail,omitempty"`
	MemUsage   []protocol.MemUsage  `json:"mem_usage,omitempty"`
	Validation *protocol.Validation `json:"validation,omitempty"`
	Calls      []string             `json:"calls,omitempty"`
	Memory     *Timeline            `json:"memory,omitempty"`
	Part       int                  `json:"part,omitempty"` // segmented builds: 1-based part
	// Int8 says where an int8 stage's scales came from: one of the
	// Int8* values; "" when the stage did not ask for int8 or no builder
	// ran.
	Int8 string `json:"int8,omitempty"`
}

// Where an int8 stage's scales came from (Attempt.Int8).
const (
	Int8Calibrated = "calibrated from the uploaded calibration data"
	Int8FromCache  = "calibrated from a calibration cache"
	Int8QDQ        = "scales from the model's Q/DQ nodes"
	Int8Refused    = "refused (built fp16; the reason is among the settings not applied)"
)

// Int8Text is what a report says of a backend's int8 decision: one of the
// Int8* values, "" for none (a build without int8, or a source this trtd
// does not know).
func Int8Text(s protocol.Int8Source) string {
	switch s {
	case protocol.Int8Calibrated:
		return Int8Calibrated
	case protocol.Int8FromCache:
		return Int8FromCache
	case protocol.Int8QDQ:
		return Int8QDQ
	case protocol.Int8Refused:
		return Int8Refused
	}
	return ""
}

// Timeline is the memory guard's record of one attempt.
type Timeline struct {
	IntervalMs    int64    `json:"interval_ms"`
	FloorBytes    int64    `json:"floor_bytes"`
	Samples       []Sample `json:"samples"`
	Peak          Sample   `json:"peak"`
	Killed        bool     `json:"killed,omitempty"`
	KillReason    string   `json:"kill_reason,omitempty"`
	KilledAtMs    int64    `json:"killed_at_ms,omitempty"`
	SwapUsedDelta int64    `json:"swap_used_delta"`
	SwapVerdict   string   `json:"swap_verdict,omitempty"`
	CgroupOOM     bool     `json:"cgroup_oom,omitempty"`
}

// Sample is one memory reading.
type Sample struct {
	AtMs         int64   `json:"at_ms"`
	MemAvailable int64   `json:"mem_available"`
	MemTotal     int64   `json:"mem_total,omitempty"`
	SwapUsed     int64   `json:"swap_used"`
	SwapFree     int64   `json:"swap_free"`
	WorkerRSS    int64   `json:"worker_rss"`
	GPUUsed      int64   `json:"gpu_used,omitempty"`
	PSISomeAvg10 float64 `json:"psi_some_avg10,omitempty"`
}

// Renderer writes one view of a report.
type Renderer struct {
	Ext    string // ".report.json", ...
	Render func(w io.Writer, r *Report) error
}

// Renderers are the views written by Publish. The HTML renderer adds
// itself from html.go.
var Renderers = []Renderer{
	{".report.json", JSON},
	{".report.md", Markdown},
}

// JSON writes the report as indented JSON.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Publish writes every view of r as dir/base<ext>, each atomically, and
// returns the paths written. The JSON report is written last, so a script
// that waits for it finds every other view already in place.
func Publish(dir, base string, r *Report) ([]string, error) {
	if r.Schema == 0 {
		r.Schema = SchemaVersion
	}
	r.Complete()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	ordered := make([]Renderer, 0, len(Renderers))
	for _, rd := range Renderers {
		if rd.Ext != ".report.json" {
			ordered = append(ordered, rd)
		}
	}
	for _, rd := range Renderers {
		if rd.Ext == ".report.json" {
			ordered = append(ordered, rd)
		}
	}
	for _, rd := range ordered {
		p := filepath.Join(dir, base+rd.Ext)
		if err := atomicfile.Write(p, 0o644, func(w io.Writer) error { return rd.Render(w, r) }); err != nil {
			return out, fmt.Errorf("write report %s: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Final returns the last attempt, or nil.
func (r *Report) Final() *Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}
