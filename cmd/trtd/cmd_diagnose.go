package main

import (
	"context"
	"encoding/json"

	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "diagnose",
		Summary: "describe the device's memory, swap, GPU and TensorRT, with advice",
		Usage: `Usage: trtd diagnose [--json] [--config PATH] [--root DIR]

Reports RAM and every swap device (zram included, with priorities), the
Jetson model and L4T/JetPack release, the TensorRT version the worker would
load, the build workers installed, the one matching that TensorRT and the
one the daemon uses (with the reason, e.g. why it fell back to trtexec),
the cgroup limits of trtd's service, and the GPU: unified memory from
/proc/meminfo on Jetson, nvidia-smi on a dGPU. trtd never creates a CUDA
context for this. It ends with recommendations in plain words (stop the
desktop, put swap on NVMe, what the memory free now allows) and lists what
could not be read.

--root reads a copy of another system's /proc, /sys, /etc and /usr laid out
under DIR (as in daemon/sysinfo/testdata).

Examples:
  trtd diagnose
  trtd diagnose --json | jq .recommendations`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("diagnose", e)
			cfgPath := fs.String("config", "", "config file")
			asJSON := fs.Bool("json", false, "print JSON")
			root := fs.String("root", "", "diagnose the system tree under `DIR` instead of this machine")
			if code, done := parse(fs, args); done {
				return code
			}
			if len(fs.Args()) > 0 {
				cliout.Fprintln(e.Stderr, "trtd diagnose: takes no arguments")
				return 2
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd diagnose: %v\n", err)
				return 2
			}
			var r sysinfo.Roots
			if *root != "" {
				r = sysinfo.RootsAt(*root)
			}
			opts := []sysinfo.Option{sysinfo.WithSwapDir(cfg.Swap.Dir), sysinfo.WithOverheads(cfg.Overheads)}
			d, err := sysinfo.Collect(ctx, r, opts...)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd diagnose: %v\n", err)
				return 1
			}
			wi := collectWorkers(cfg)
			if *asJSON {
				enc := json.NewEncoder(e.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					*sysinfo.Device
					Workers workerInfo `json:"workers"`
				}{d, wi}); err != nil {
					return 1
				}
				return 0
			}
			if err := d.WriteText(e.Stdout); err != nil {
				return 1
			}
			cliout.Fprintln(e.Stdout)
			cliout.Fprintln(e.Stdout, "Workers")
			wi.writeText(e.Stdout)
			return 0
		},
	})
}
