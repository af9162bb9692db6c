package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/swap"
	"github.com/trtd/trtd/internal/cliout"
)

func init() {
	register(&command{
		Name:    "swap",
		Summary: "show, provide or release trtd's own swapfile",
		Usage: `Usage: trtd swap status|ensure SIZE|release [--json] [--config PATH]

status   lists trtd's swapfiles and every swap device of the system.
ensure   makes trtd's active swap at least SIZE (e.g. 4G), creating a swapfile
         in swap.dir or growing by replacement, below the priority of every
         other swap device (zram first). Refuses tmpfs, overlayfs, NFS, vfat,
         btrfs without NOCOW, and too little free disk (SIZE + swap.reserve).
release  swaps off and removes trtd's swapfiles (refused while a build runs).

trtd never touches zram, swap it did not create, or /etc/fstab. ensure and
release need root.

Examples:
  trtd swap status
  sudo trtd swap ensure 4G
  sudo trtd swap release`,
		Run: runSwap,
	})
}

func runSwap(ctx context.Context, e *Env, args []string) int {
	fs := newFlagSet("swap", e)
	cfgPath := fs.String("config", "", "config file")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code, done := parse(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		cliout.Fprintln(e.Stderr, "trtd swap: want status, ensure SIZE or release (trtd swap -h)")
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd swap: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := swap.New(cfg.Swap, cfg.Paths.State, log)
	var st swap.Status
	switch rest[0] {
	case "status":
		if len(rest) != 1 {
			cliout.Fprintln(e.Stderr, "trtd swap status: takes no arguments")
			return 2
		}
		st, err = m.Status(ctx)
	case "ensure":
		if len(rest) != 2 {
			cliout.Fprintln(e.Stderr, "trtd swap ensure: want one SIZE, e.g. 4G")
			return 2
		}
		size, perr := config.ParseSize(rest[1])
		if perr != nil || size <= 0 {
			cliout.Fprintf(e.Stderr, "trtd swap ensure: %q is not a size (use e.g. 2G, 512M)\n", rest[1])
			return 2
		}
		st, err = m.Ensure(ctx, int64(size))
	case "release":
		if len(rest) != 1 {
			cliout.Fprintln(e.Stderr, "trtd swap release: takes no arguments")
			return 2
		}
		if err = m.Release(ctx); err == nil {
			st, err = m.Status(ctx)
		}
	default:
		cliout.Fprintf(e.Stderr, "trtd swap: unknown operation %q (want status, ensure or release)\n", rest[0])
		return 2
	}
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd swap %s: %v\n", rest[0], err)
		switch {
		case errors.Is(err, swap.ErrBusy), errors.Is(err, swap.ErrNotEnoughMem):
			return 3 // try again later
		case errors.Is(err, swap.ErrNotRoot):
			return 4
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return 1
		}
		return 0
	}
	cliout.Fprint(e.Stdout, st.String())
	return 0
}
