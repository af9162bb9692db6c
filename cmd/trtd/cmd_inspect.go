package main

import (
	"bufio"
	"context"
	"io"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/opsupport"
	"github.com/trtd/trtd/daemon/planner"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/safetext"
)

func init() {
	register(&command{
		Name:    "inspect",
		Summary: "summarize an ONNX model without loading its weights",
		Usage: `Usage: trtd inspect MODEL [--json] [--trt VERSION] [--platform NAME] [--config PATH]

Reads MODEL's structure without loading its weights (memory follows the
nodes, not the file: about 11 MiB for a 528 MB vgg16, 30 MiB for 30,000
nodes; a model whose structure needs over 16 MiB is refused) and prints the
producer, opsets, inputs and outputs (dynamic dims marked with *), parameter
count, weight bytes, op histogram and external data.
It then lists the ops that the ONNX parser of the TensorRT installed here
(or of --trt VERSION) cannot import, before a build fails on them, and the
planner's estimate of each build stage's peak memory (stages from the config,
fixed costs of this board, or of --platform nano|tx2|xavier|orin|thor|dgpu).

With --json the same as one JSON object. These fields are stable:
ir_version, opset (domain -> version, "" = ai.onnx), producer {name, version},
inputs and outputs ([{name, dtype, shape}], shape items are integers for fixed
dims, strings for symbolic ones, null for unknown ones), node_count, op_counts,
initializers {count, bytes}; plus weight_bytes, parameters, dynamic_inputs,
external_data, tensorrt {version, table, exact, unsupported, opset_warning}
and build_memory {platform, stages [{name, kind, device_bytes, host_bytes,
peak_bytes}]}.

Exit status: 0 ok, 1 the model is unreadable, 2 usage error.

Example:
  trtd inspect resnet50.onnx
  trtd inspect --trt 8.2 yolov8n.onnx
  trtd inspect model.onnx --json | jq .inputs`,
		Run: runInspect,
	})
}

// trtCheck is the op-support part of `trtd inspect`.
type trtCheck struct {
	Version      string              `json:"version"`           // requested or detected
	Detected     bool                `json:"detected"`          // found on this machine (not --trt)
	Table        string              `json:"table"`             // operator table used
	Exact        bool                `json:"exact"`             // table is of that very minor version
	Unsupported  []opsupport.Problem `json:"unsupported"`       // ops the parser cannot (or may not) import
	OpsetWarning string              `json:"opset_warning"`     // default opset outside the documented range
	Error        string              `json:"error,omitempty"`   // why no check was made
	Sources      []string            `json:"sources,omitempty"` // where the table came from
}

type inspectJSON struct {
	onnx.Summary
	TensorRT    *trtCheck    `json:"tensorrt"`
	BuildMemory *buildMemory `json:"build_memory"`
}

// buildMemory is the planner's estimate of each stage's peak.
type buildMemory struct {
	Platform string        `json:"platform"`
	Stages   []stageMemory `json:"stages"`
	Notes    []string      `json:"notes"`
	Error    string        `json:"error,omitempty"`
}

type stageMemory struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	DeviceBytes int64  `json:"device_bytes"` // must stay in RAM / GPU memory
	HostBytes   int64  `json:"host_bytes"`   // may be paged out to swap
	PeakBytes   int64  `json:"peak_bytes"`
}

func runInspect(ctx context.Context, e *Env, args []string) int {
	fs := newFlagSet("inspect", e)
	asJSON := fs.Bool("json", false, "print one JSON object")
	trt := fs.String("trt", "", "check op support against this TensorRT `VERSION` (e.g. 8.2, 8.6.1, 10.3) instead of the installed one")
	platform := fs.String("platform", "", "estimate build memory with the fixed costs of this `NAME` (nano, tx2, xavier, orin, thor, dgpu) instead of this machine's")
	cfgPath := fs.String("config", "", "config file whose stages are estimated (default /etc/trtd/config.toml or built-in defaults)")
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		cliout.Fprintln(e.Stderr, "trtd inspect: want exactly one MODEL argument (trtd inspect -h for help)")
		return 2
	}
	path := fs.Arg(0)
	m, err := onnx.Open(path)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd inspect: %v\n", err)
		return 1
	}
	s := m.Summary()
	m = nil // the summary is all that is printed: the nodes may go before the output is made
	check := checkOps(s, *trt, "/")
	if check.Error != "" && *trt != "" {
		cliout.Fprintf(e.Stderr, "trtd inspect: --trt %s: %s\n", *trt, check.Error)
		return 2
	}
	mem := estimateMemory(s, check, *platform, *cfgPath, "/")
	if *asJSON {
		if err := writeJSONIndented(e.Stdout, inspectJSON{Summary: s, TensorRT: check, BuildMemory: mem}); err != nil {
			cliout.Fprintf(e.Stderr, "trtd inspect: %v\n", err)
			return 1
		}
		return 0
	}
	// Names in the model are the model author's: shown, never sent raw.
	// Line by line through the escaping writer, then buffered: the text
	// is never held whole, and a model of many ops costs few writes.
	bw := bufio.NewWriter(e.Stdout)
	out := safetext.TerminalWriter(bw)
	cliout.Fprintf(out, "model:        %s\n", path)
	err = s.WriteText(out)
	if err == nil {
		writeCheck(out, check)
		writeMemory(out, mem)
		err = bw.Flush()
	}
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd inspect: %v\n", safetext.Terminal(err.Error()))
		return 1
	}
	return 0
}

// platformOf names this machine's platform the way the planner does
// (sysinfo.QuickPlatform); "nano" (the smallest target) when neither a
// Jetson nor an NVIDIA driver is found.
func platformOf(root string) string {
	if p := sysinfo.QuickPlatform(sysinfo.RootsAt(root)); p != "" {
		return p
	}
	return "nano"
}

// estimateMemory runs the planner's per-stage estimate on the model.
// Dynamic input dims count as 1 (a sidecar gives the real sizes).
func estimateMemory(s onnx.Summary, check *trtCheck, platform, cfgPath, root string) *buildMemory {
	mem := &buildMemory{Platform: platform, Stages: []stageMemory{}, Notes: []string{}}
	if mem.Platform == "" {
		mem.Platform = platformOf(root)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		mem.Error = err.Error()
		return mem
	}
	// No sidecar here: dynamic dims count as 1, the daemon's default profile.
	facts := planner.Facts(s, nil, "")
	trt := ""
	if check != nil {
		trt = check.Version
	}
	over := sysinfo.EffectiveOverheads(cfg.Overheads, mem.Platform)
	for _, st := range cfg.Stages {
		if converter.Kind(st.Kind) == converter.KindOffload {
			continue
		}
		dev, host := planner.Estimate(facts, st, over, trt)
		mem.Stages = append(mem.Stages, stageMemory{Name: st.Name, Kind: st.Kind, DeviceBytes: dev, HostBytes: host, PeakBytes: dev + host})
	}
	if facts.Dynamic {
		mem.Notes = append(mem.Notes, "dynamic dims counted as 1: give their sizes in the model's sidecar .toml for a real estimate")
	}
	if trt == "" {
		mem.Notes = append(mem.Notes, "TensorRT version unknown: cuDNN/cuBLAS assumed on by default")
	}
	return mem
}

func writeMemory(w io.Writer, mem *buildMemory) {
	if mem.Error != "" {
		cliout.Fprintf(w, "build memory: not estimated: %s\n", mem.Error)
		return
	}
	cliout.Fprintf(w, "build memory (planner estimate, %s fixed costs):\n", mem.Platform)
	for _, st := range mem.Stages {
		cliout.Fprintf(w, "  %-10s peak %9s  (device %s + pageable host %s)\n", st.Name, bytesize.Format(st.PeakBytes), bytesize.Format(st.DeviceBytes), bytesize.Format(st.HostBytes))
	}
	for _, n := range mem.Notes {
		cliout.Fprintf(w, "  note: %s\n", n)
	}
}

// checkOps checks the model's ops against the TensorRT version given, or
// the one detected under root.
func checkOps(s onnx.Summary, version, root string) *trtCheck {
	c := &trtCheck{Version: version, Unsupported: []opsupport.Problem{}}
	if version == "" {
		v, err := opsupport.DetectVersion(root)
		if err != nil {
			c.Error = "no TensorRT found on this machine; pass --trt VERSION to check op support"
			return c
		}
		c.Version, c.Detected = v, true
	}
	t, exact, err := opsupport.For(c.Version)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Table, c.Exact, c.Sources = t.Version, exact, t.Source
	ops := make([]opsupport.Op, len(s.Ops))
	for i, o := range s.Ops {
		ops[i] = opsupport.Op{Domain: o.Domain, OpType: o.OpType, Count: o.Count}
	}
	if ps := t.Check(ops); ps != nil {
		c.Unsupported = ps
	}
	if v, ok := s.Opset[""]; ok {
		c.OpsetWarning = t.CheckOpset(v)
	}
	return c
}

func writeCheck(w io.Writer, c *trtCheck) {
	if c.Error != "" {
		cliout.Fprintf(w, "tensorrt:     %s\n", c.Error)
		return
	}
	how := "given with --trt"
	if c.Detected {
		how = "installed here"
	}
	cliout.Fprintf(w, "tensorrt:     %s (%s), operator table of %s", c.Version, how, c.Table)
	if !c.Exact {
		cliout.Fprintf(w, " (nearest documented release)")
	}
	cliout.Fprintln(w)
	if c.OpsetWarning != "" {
		cliout.Fprintf(w, "  warning: %s\n", c.OpsetWarning)
	}
	if len(c.Unsupported) == 0 {
		cliout.Fprintln(w, "  every op of the model is supported by its ONNX parser")
		return
	}
	cliout.Fprintln(w, "  ops its ONNX parser cannot import (a build would fail on them):")
	for _, p := range c.Unsupported {
		name := p.OpType
		if p.Domain != "" {
			name = p.Domain + "::" + p.OpType
		}
		cliout.Fprintf(w, "  %6d  %-24s %s\n", p.Count, name, p.Reason)
	}
}
