package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/filehash"
)

func init() {
	register(&command{
		Name:    "fleet",
		Summary: "list, push and pull engines in the fleet's OCI registry",
		Usage: `Usage: trtd fleet ls [--all] [--config PATH]
       trtd fleet push NAME [--config PATH]
       trtd fleet pull MODEL.onnx [--out DIR] [--config PATH]

Engines built by one device are shared with identical devices through the
OCI registry named in [fleet] registry (docs/FLEET.md). A device matches
when its TensorRT version, GPU, compute capability, SoC, L4T release and
plugin libraries equal the builder's, as the engine's provenance records.

ls    lists what the registry holds for this device (--all: for every device).
push  shares the outbox engine NAME (NAME.engine with NAME.engine.json and
      NAME.report.json) now, instead of waiting for the daemon's queue.
pull  fetches an engine built from MODEL.onnx for this device into --out
      (default: the current directory) as MODEL.engine and MODEL.engine.json,
      after checking its sha256 and its provenance against this device.

This device's builder is asked of the worker, as 'trtd rebuild' does.
Exit status: 0 on success, 1 when nothing matched or the registry failed,
2 on a usage or configuration error.

Examples:
  trtd fleet ls
  sudo trtd fleet push resnet50
  trtd fleet pull resnet50.onnx --out /var/lib/trtd/outbox`,
		Run: runFleet,
	})
}

func runFleet(ctx context.Context, e *Env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			cliout.Fprintln(e.Stdout, strings.TrimSpace(commands["fleet"].Usage))
			return 0
		}
		cliout.Fprintln(e.Stderr, "trtd fleet: say ls, push or pull (see trtd fleet -h)")
		return 2
	}
	sub := args[0]
	fs := newFlagSet("fleet", e)
	cfgPath := fs.String("config", "", "config file")
	all := fs.Bool("all", false, "ls: list engines for every device")
	out := fs.String("out", ".", "pull: directory for the engine")
	if code, done := parse(fs, args[1:]); done {
		return code
	}
	want := map[string]int{"ls": 0, "push": 1, "pull": 1}
	n, ok := want[sub]
	if !ok || fs.NArg() != n {
		cliout.Fprintf(e.Stderr, "trtd fleet: %q: say ls, push NAME or pull MODEL.onnx (see trtd fleet -h)\n", sub)
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet: %v\n", err)
		return 2
	}
	if !cfg.Fleet.Enabled() {
		cliout.Fprintf(e.Stderr, "trtd fleet: no registry: set [fleet] registry in %s\n", orDefaultPath(cfg.File))
		return 2
	}
	c, err := fleet.New(fleet.OptionsFrom(cfg, "trtd "+daemon.Version))
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet: %v\n", err)
		return 2
	}
	dev, err := probeDevice(ctx, cfg, e)
	if err != nil && !(sub == "ls" && *all) {
		cliout.Fprintf(e.Stderr, "trtd fleet: %v\n", err)
		return 1
	}
	switch sub {
	case "ls":
		return fleetLs(ctx, e, c, dev, *all)
	case "push":
		return fleetPush(ctx, e, c, cfg, dev, fs.Arg(0))
	default:
		return fleetPull(ctx, e, c, dev, fs.Arg(0), *out)
	}
}

func orDefaultPath(p string) string {
	if p == "" {
		return config.DefaultPath
	}
	return p
}

// probeDevice asks the worker for this device's builder and reads the
// Jetson release and SoC.
func probeDevice(ctx context.Context, cfg *config.Config, e *Env) (fleet.Device, error) {
	tmp, err := os.MkdirTemp("", "trtd-probe-")
	if err != nil {
		return fleet.Device{}, err
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			e.Log.Warn("temporary probe directory not removed", "dir", tmp, "err", err)
		}
	}()
	w := &converter.Worker{Path: cfg.Paths.Worker, Timeout: time.Minute, StderrLimit: 64 << 10, Log: e.Log}
	b, class, reason := w.Probe(ctx, cfg.Worker.Backend, cfg.Worker.Trtexec, tmp)
	if class != protocol.ClassOK {
		return fleet.Device{}, fmt.Errorf("no builder on this machine (%s): cannot tell which engines fit it", reason)
	}
	d, err := sysinfo.Collect(ctx, sysinfo.Roots{})
	if err != nil {
		e.Log.Debug("device diagnosis incomplete", "err", err)
	}
	return fleet.DeviceOf(b, d), nil
}

func fleetLs(ctx context.Context, e *Env, c *fleet.Client, dev fleet.Device, all bool) int {
	es, skipped, err := c.List(ctx, "")
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet ls: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(e.Stdout, 2, 4, 2, ' ', 0)
	cliout.Fprintln(tw, "MODEL\tSTAGE\tTENSORRT\tGPU (CC)\tL4T\tBUILT BY\tCREATED\tSIZE")
	shown := 0
	for _, en := range es {
		if !all && !en.Fits(dev) {
			continue
		}
		a := en.Annotations
		cliout.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\n", orDash(a[fleet.AnnModelName]), orDash(a[fleet.AnnStage]),
			orDash(a[fleet.AnnTensorRT]), orDash(a[fleet.AnnGPU]), orDash(a[fleet.AnnCC]), orDash(a[fleet.AnnL4T]),
			orDash(a[fleet.AnnBuiltBy]), en.Created.Format("2006-01-02 15:04"), bytesize.Format(en.EngineSize))
		shown++
	}
	if err := tw.Flush(); err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet ls: %v\n", err)
		return 1
	}
	what := "for this device"
	if all {
		what = "in all"
	}
	cliout.Fprintf(e.Stdout, "%d engine(s) %s in %s", shown, what, c.Registry())
	if skipped > 0 {
		cliout.Fprintf(e.Stdout, "; %d artifact(s) that are not readable trtd engines skipped", skipped)
	}
	cliout.Fprintln(e.Stdout, ".")
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fleetPush(ctx context.Context, e *Env, c *fleet.Client, cfg *config.Config, dev fleet.Device, name string) int {
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".engine"), provenance.Suffix)
	if name != filepath.Base(name) {
		cliout.Fprintf(e.Stderr, "trtd fleet push: %q: give the engine's name in the outbox, not a path\n", name)
		return 2
	}
	base := filepath.Join(cfg.Paths.Outbox, name)
	pv, err := provenance.Read(base + provenance.Suffix)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet push: %v\n", err)
		return 1
	}
	if len(pv.Parts) > 0 || pv.Engine == "" {
		cliout.Fprintf(e.Stderr, "trtd fleet push: %s is a segmented engine; only single engines are shared\n", name)
		return 1
	}
	cur := provenance.Current{Builder: dev.Builder, L4T: dev.L4T, Plugins: dev.Plugins}
	if d := provenance.Differences(pv, cur); len(d) > 0 {
		cliout.Fprintf(e.Stderr, "trtd fleet push: %s was not built for this device's builder, not shared: %s\n", name, strings.Join(d, "; "))
		return 1
	}
	a := fleet.Artifact{Key: fleet.Key{CacheKey: pv.CacheKey, ModelSHA: pv.ModelSHA, Device: dev},
		Engine: filepath.Join(cfg.Paths.Outbox, pv.Engine), Provenance: base + provenance.Suffix,
		Model: pv.Model, Stage: pv.Stage, Built: pv.Built}
	if _, err := os.Stat(base + ".report.json"); err == nil {
		a.Report = base + ".report.json"
	}
	res, err := c.Push(ctx, a)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet push: %v\n", err)
		return 1
	}
	switch {
	case res.Kept != "":
		cliout.Fprintf(e.Stdout, "%s: not pushed: %s\n", name, res.Kept)
	case res.Pushed:
		cliout.Fprintf(e.Stdout, "%s: pushed to %s:%s (%s)\n", name, c.Registry(), res.Tag, res.Digest)
	default:
		cliout.Fprintf(e.Stdout, "%s: already in %s:%s (%s)\n", name, c.Registry(), res.Tag, res.Digest)
	}
	return 0
}

func fleetPull(ctx context.Context, e *Env, c *fleet.Client, dev fleet.Device, model, outDir string) int {
	sha, err := filehash.SHA256(model)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet pull: %v\n", err)
		return 2
	}
	es, _, err := c.List(ctx, sha)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd fleet pull: %v\n", err)
		return 1
	}
	stem := strings.TrimSuffix(filepath.Base(model), filepath.Ext(model))
	var reasons []string
	for _, en := range es {
		if !en.Fits(dev) || en.Model() != sha {
			continue
		}
		k := fleet.Key{CacheKey: en.Annotations[fleet.AnnCacheKey], ModelSHA: sha, Device: dev}
		if k.Tag() != en.Tag {
			reasons = append(reasons, en.Tag+": built with other plugin libraries")
			continue
		}
		p, err := c.Pull(ctx, k, outDir)
		if err != nil {
			reasons = append(reasons, err.Error())
			if errors.Is(err, fleet.ErrUnavailable) {
				break
			}
			continue
		}
		if err := placePulled(p, outDir, stem); err != nil {
			p.Remove()
			cliout.Fprintf(e.Stderr, "trtd fleet pull: %v\n", err)
			return 1
		}
		cliout.Fprintf(e.Stdout, "%s.engine: %s from %s (%s), built by %s at stage %s on %s; sha256 and provenance checked against this device\n",
			filepath.Join(outDir, stem), bytesize.Format(p.EngineSize), c.Registry(), p.Digest, orDash(p.BuiltBy), orDash(p.Stage), p.Built.Format(time.RFC3339))
		return 0
	}
	cliout.Fprintf(e.Stderr, "trtd fleet pull: no engine for this device (TensorRT %s, %s, compute capability %s) built from %s in %s\n",
		dev.Builder.TensorRT, dev.Builder.GPU, dev.Builder.ComputeCapability, model, c.Registry())
	for _, r := range reasons {
		cliout.Fprintf(e.Stderr, "  %s\n", r)
	}
	return 1
}

// placePulled renames the verified files to their final names; the
// engine goes last, so an engine is never visible without its provenance.
func placePulled(p *fleet.Pulled, dir, stem string) error {
	base := filepath.Join(dir, stem)
	if p.Report != "" {
		if err := os.Rename(p.Report, base+".report.json"); err != nil {
			return err
		}
	}
	if err := os.Rename(p.Provenance, base+provenance.Suffix); err != nil {
		return err
	}
	// Readable by the services that load engines, like the daemon's own.
	if err := os.Chmod(base+provenance.Suffix, 0o644); err != nil {
		return err
	}
	if err := os.Chmod(p.Engine, 0o644); err != nil {
		return err
	}
	if err := os.Rename(p.Engine, base+".engine"); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}
