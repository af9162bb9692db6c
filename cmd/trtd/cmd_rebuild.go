package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "rebuild",
		Summary: "rebuild engines that a JetPack or TensorRT upgrade invalidated",
		Usage: `Usage: trtd rebuild --stale [--dry-run] [--config PATH]
       trtd rebuild --fingerprint [--config PATH]

Reads every <name>.engine.json in the outbox and compares the TensorRT
version, GPU, compute capability, L4T release and plugin libraries it
records with this device's builder (asked of the worker). Each stale
engine is rebuilt from the model trtd kept of its job: the model (with its
settings file) is placed in the inbox, where the running daemon builds it
again and replaces the engine. The daemon does the same by itself at start.

--fingerprint prints, as JSON, the builder fingerprint engines are compared
against (TensorRT version, GPU, compute capability, L4T release); offload
peers are asked for it over ssh before a model is sent to them.

Exit status: 0 when nothing is stale or every stale engine was requeued,
1 when some could not be (the reason is printed), 2 on a usage error.

Examples:
  trtd rebuild --stale --dry-run
  sudo trtd rebuild --stale
  trtd rebuild --fingerprint`,
		Run: runRebuild,
	})
}

func runRebuild(ctx context.Context, e *Env, args []string) int {
	fs := newFlagSet("rebuild", e)
	cfgPath := fs.String("config", "", "config file")
	stale := fs.Bool("stale", false, "rebuild every engine this device's TensorRT can no longer run")
	dry := fs.Bool("dry-run", false, "list stale engines, change nothing")
	fingerprint := fs.Bool("fingerprint", false, "print this device's builder fingerprint as JSON")
	if code, done := parse(fs, args); done {
		return code
	}
	if *stale == *fingerprint || fs.NArg() > 0 {
		cliout.Fprintln(e.Stderr, "trtd rebuild: say --stale or --fingerprint (see trtd rebuild -h)")
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd rebuild: %v\n", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "trtd-probe-")
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd rebuild: %v\n", err)
		return 1
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			e.Log.Warn("temporary probe directory not removed", "dir", tmp, "err", err)
		}
	}()
	w := &converter.Worker{Path: cfg.Paths.Worker, Timeout: time.Minute, StderrLimit: 64 << 10, Log: e.Log}
	b, class, reason := w.Probe(ctx, cfg.Worker.Backend, cfg.Worker.Trtexec, tmp)
	if class != protocol.ClassOK {
		cliout.Fprintf(e.Stderr, "trtd rebuild: cannot tell which engines are stale: no builder on this machine (%s)\n", reason)
		return 1
	}
	l4t, err := provenance.ReadL4T("/")
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd rebuild: warning: %v; the L4T release is not compared\n", err)
	}
	cur := provenance.Current{Builder: b, L4T: l4t, Plugins: provenance.PluginHashes(b)}
	if *fingerprint {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Builder     protocol.Builder  `json:"builder"`
			L4T         string            `json:"l4t,omitempty"`
			Plugins     map[string]string `json:"plugins,omitempty"`
			Fingerprint string            `json:"fingerprint"`
		}{b, l4t, cur.Plugins, b.Fingerprint()}); err != nil {
			cliout.Fprintf(e.Stderr, "trtd rebuild: %v\n", err)
			return 1
		}
		return 0
	}
	dirs := provenance.Dirs{Inbox: cfg.Paths.Inbox, Outbox: cfg.Paths.Outbox, State: cfg.Paths.State}
	acts, err := provenance.RequeueStale(e.Log, dirs, cur, *dry)
	code := 0
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd rebuild: %v\n", err)
		code = 1
	}
	cliout.Fprintf(e.Stdout, "This device builds with TensorRT %s on %s (compute capability %s)%s.\n",
		b.TensorRT, b.GPU, b.ComputeCapability, orEmptyf(", L4T %s", l4t))
	if len(acts) == 0 {
		cliout.Fprintf(e.Stdout, "No stale engines in %s.\n", cfg.Paths.Outbox)
		return code
	}
	for _, a := range acts {
		cliout.Fprintf(e.Stdout, "\n%s (model %s, job %s, built %s)\n", a.Name, a.Model, a.Job, a.Built.Format("2006-01-02"))
		for _, r := range a.Reasons {
			cliout.Fprintf(e.Stdout, "  stale: %s\n", r)
		}
		switch {
		case a.Skipped != "":
			cliout.Fprintf(e.Stdout, "  not rebuilt: %s\n", a.Skipped)
			if !strings.Contains(a.Skipped, "already requested") {
				code = 1
			}
		case *dry:
			cliout.Fprintf(e.Stdout, "  would rebuild from %s\n", a.KeptModel)
		default:
			cliout.Fprintf(e.Stdout, "  rebuilding: %s placed in %s\n", a.Model, cfg.Paths.Inbox)
		}
	}
	return code
}

func orEmptyf(format, s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(format, s)
}
