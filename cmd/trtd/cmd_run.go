package main

import (
	"context"
	"fmt"
	"os"

	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/notify"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "run",
		Summary: "run the daemon in the foreground (what systemd starts)",
		Usage: `Usage: trtd run [--config PATH]

Watches the inbox, builds a TensorRT engine for every complete model that
arrives (one at a time), and writes engines and reports to the outbox.
Under systemd it reports READY, STATUS and WATCHDOG and logs to the journal
with structured fields (TRTD_JOB, TRTD_MODEL, TRTD_STAGE, TRTD_EVENT).

Example:
  trtd run --config /etc/trtd/config.toml`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("run", e)
			cfgPath := fs.String("config", "", "config file (default /etc/trtd/config.toml, or built-in defaults)")
			if code, done := parse(fs, args); done {
				return code
			}
			if fs.NArg() > 0 {
				cliout.Fprintf(e.Stderr, "trtd run: unexpected argument %q\n", fs.Arg(0))
				return 2
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd run: %v\n", err)
				return 2
			}
			log := logging.New(cfg.LogFormat, logging.ParseLevel(cfg.LogLevel), e.Stderr)
			if err := daemon.Run(ctx, cfg, daemon.Options{Log: log, Notify: notify.FromEnv()}); err != nil {
				log.Error("trtd stopped with an error", "err", err)
				fmt.Fprintf(os.Stderr, "trtd run: %v\n", err)
				return 1
			}
			return 0
		},
	})
}
