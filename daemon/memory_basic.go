package daemon

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
)

// newMemory builds the memory subsystem from the config.
func newMemory(cfg *config.Config, log *slog.Logger) Memory {
	return &basicMemory{cfg: cfg, log: log}
}

// basicMemory plans every stage and provides no swap, cgroup or guard.
type basicMemory struct {
	cfg *config.Config
	log *slog.Logger
}

func (m *basicMemory) Reconcile(context.Context) error { return nil }
func (m *basicMemory) Plan(in PlanInput) PlanOutput {
	p := &report.Plan{Start: in.Stages[0].Name}
	for _, s := range in.Stages {
		p.Stages = append(p.Stages, report.PlanStage{Name: s.Name})
	}
	return PlanOutput{Report: p}
}
func (m *basicMemory) BeforeStage(context.Context, config.Stage, PlanOutput) error { return nil }
func (m *basicMemory) Sandbox(config.Stage) converter.Sandbox                      { return converter.NopSandbox{} }
func (m *basicMemory) Busy(bool)                                                   {}
func (m *basicMemory) Idle(context.Context)                                        {}
func (m *basicMemory) Record(string, string)                                       {}
func (m *basicMemory) Device(context.Context) (json.RawMessage, []string)          { return nil, nil }
func (m *basicMemory) Now() *MemoryNow                                             { return nil }
