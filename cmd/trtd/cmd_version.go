package main

import (
	"context"
	"runtime"

	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "version",
		Summary: "print trtd's version",
		Usage: `Usage: trtd version [--config PATH]

Prints the version of trtd, the Go toolchain it was built with, and its
platform; then the build workers installed (one cgo worker per TensorRT
major version, and the trtexec worker), the one that matches the TensorRT
installed here, and the one the daemon uses, with the reason.

Example:
  trtd version`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("version", e)
			cfgPath := fs.String("config", "", "config file")
			if code, done := parse(fs, args); done {
				return code
			}
			cliout.Fprintf(e.Stdout, "trtd %s (%s, %s/%s)\n", daemon.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				cliout.Fprintf(e.Stdout, "workers: unknown (%v)\n", err)
				return 0
			}
			collectWorkers(cfg).writeText(e.Stdout)
			return 0
		},
	})
}
