package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/trtd/trtd/daemon"
)

func init() {
	register(&command{
		Name:    "version",
		Summary: "print trtd's version",
		Usage: `Usage: trtd version

Prints the version of trtd, the Go toolchain it was built with, and its platform.

Example:
  trtd version`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("version", e)
			if code, done := parse(fs, args); done {
				return code
			}
			fmt.Fprintf(e.Stdout, "trtd %s (%s, %s/%s)\n", daemon.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return 0
		},
	})
}
