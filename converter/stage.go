package converter

import (
	"time"

	"github.com/trtd/trtd/converter/protocol"
)

// Kind says how a stage builds.
type Kind string

const (
	// KindBuild builds one engine from the whole model.
	KindBuild Kind = "build"
	// KindSegmented splits the graph into Parts and builds each.
	KindSegmented Kind = "segmented"
	// KindOffload hands the model to a matching peer.
	KindOffload Kind = "offload"
)

// SwapPolicy says what swap a stage wants before it runs.
type SwapPolicy string

const (
	// SwapNone leaves swap as it is.
	SwapNone SwapPolicy = "none"
	// SwapEnsure makes sure the planner's predicted size exists.
	SwapEnsure SwapPolicy = "ensure"
	// SwapMax grows swap to the configured maximum.
	SwapMax SwapPolicy = "max"
)

// Wants reports whether the policy asks for swap at all.
func (p SwapPolicy) Wants() bool { return p == SwapEnsure || p == SwapMax }

// Stage is one rung of the ladder as the converter runs it: resolved
// settings for the worker plus what the caller prepares around the run.
// The daemon's configuration converts its TOML stages into these.
type Stage struct {
	Name string
	// Kind is KindBuild when empty.
	Kind     Kind
	Settings protocol.Settings
	// Swap is what the caller's BeforeStage hook arranges ("" = none).
	Swap       SwapPolicy
	DropCaches bool
	// Parts is the number of sub-models of a segmented stage.
	Parts int
	// Timeout overrides the worker's timeout for this stage; 0 keeps it.
	Timeout time.Duration
}

// EffectiveKind is the stage's kind with the default filled in.
func (s Stage) EffectiveKind() Kind {
	if s.Kind == "" {
		return KindBuild
	}
	return s.Kind
}
