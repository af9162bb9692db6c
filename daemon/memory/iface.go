// Package memory is everything the daemon does about memory: the device
// diagnosis, the planner and its history, the swapfile, a memory cgroup per
// worker run and the memory guard.
package memory

import (
	"context"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/planner"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/device"
)

// PlanInput is what the planner needs to know of a model.
type PlanInput struct {
	Model  planner.ModelFacts
	Stages []config.Stage
}

// PlanOutput is the planner's decision for one job.
type PlanOutput struct {
	Start int
	Skip  map[string]string
	// Report is the plan as the report shows it.
	Report *report.Plan
	// SwapBytes is the swap "ensure" stages make sure of.
	SwapBytes int64
}

// Memory is everything the daemon does about memory: the swapfile, the
// worker's cgroup and memory guard, the planner and the device diagnosis.
// New returns the real one; tests may pass their own.
type Memory interface {
	// Reconcile repairs swap state after a restart.
	Reconcile(ctx context.Context) error
	// Plan picks the starting stage and the stages to skip.
	Plan(in PlanInput) PlanOutput
	// BeforeStage provides swap and drops caches as the stage asks.
	BeforeStage(ctx context.Context, st converter.Stage, plan PlanOutput) error
	// Sandbox wraps one worker run in a cgroup and the memory guard.
	Sandbox(st converter.Stage) converter.Sandbox
	// Busy tells the swap manager a build is running (never swapoff then).
	Busy(busy bool)
	// Idle runs periodic housekeeping (release an idle swapfile).
	Idle(ctx context.Context)
	// Record remembers the first stage that worked for a model on this device.
	Record(modelSHA, stage string)
	// Device is the device diagnosis for reports, and its recommendations.
	Device(ctx context.Context) (*device.Device, []string)
	// Now is the current reading for the status file (nil if unknown).
	Now() *status.MemoryNow
}
