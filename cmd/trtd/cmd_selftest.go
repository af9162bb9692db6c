package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/daemon/selftest"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "selftest",
		Summary: "build a tiny built-in model through every backend and say what works, with fixes",
		Usage: `Usage: trtd selftest [--json] [--config PATH] [--root DIR] [--dev DIR] [--tmp DIR]

Run this first after installing trtd, and paste its output into an issue.

It builds a tiny model that trtd carries (Add and Relu on 64 floats)
through each backend present — the cgo worker matching the installed
TensorRT, and trtexec — as the service's worker user (run it with sudo),
in a private temporary directory: the inbox and outbox are never touched.
It prints the board, L4T, JetPack, TensorRT and CUDA versions, which worker
the daemon runs and why, the worker's groups and the GPU device nodes it
can open, whether swap, zram and the memory cgroup are usable, the build
time and peak memory of each backend, and a PASS or FAIL line per check
with the fix for each FAIL. Exit status 0 when every check passes, 1 when
one fails.

--root reads another system's /proc, /sys, /etc and /usr under DIR (as
trtd diagnose does); --dev looks for the GPU device nodes in DIR.

Examples:
  sudo trtd selftest
  sudo trtd selftest --json | jq '.checks[] | select(.pass == false)'`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("selftest", e)
			cfgPath := fs.String("config", "", "config file")
			asJSON := fs.Bool("json", false, "print JSON")
			root := fs.String("root", "", "read the system tree under `DIR` instead of this machine's")
			dev := fs.String("dev", "", "GPU device nodes in `DIR` (default /dev)")
			tmp := fs.String("tmp", "", "make the private build directory in `DIR` (default $TMPDIR or /tmp)")
			if code, done := parse(fs, args); done {
				return code
			}
			if len(fs.Args()) > 0 {
				cliout.Fprintln(e.Stderr, "trtd selftest: takes no arguments")
				return 2
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd selftest: %v\n", err)
				return 2
			}
			o := selftest.Options{Config: cfg, DevDir: *dev, TempDir: *tmp, Timeout: 2 * time.Minute}
			if *root != "" {
				o.Roots = sysinfo.RootsAt(*root)
			}
			r, err := selftest.Run(ctx, daemon.Version, o)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd selftest: %v\n", err)
				return 1
			}
			if *asJSON {
				enc := json.NewEncoder(e.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return 1
				}
			} else if err := r.WriteText(e.Stdout); err != nil {
				return 1
			}
			if !r.Pass {
				return 1
			}
			return 0
		},
	})
}
