package selftest

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/trtd/trtd/internal/bytesize"
)

// WriteText prints the result for people: the facts a bug report needs,
// then one PASS/FAIL line per check, each FAIL with its fix, then the verdict.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("trtd selftest %s (%s)\n", r.Version, r.Platform)
	board := r.Board
	if r.L4T != "" {
		board += ", L4T " + r.L4T
	}
	if r.JetPack != "" {
		board += ", JetPack " + r.JetPack
	}
	p("board:     %s\n", board)
	p("TensorRT:  %s\n", r.TensorRT)
	p("CUDA:      %s\n", r.CUDA)
	p("workers:   %s\n", r.Workers.PresentNames())
	if r.Workers.Chosen.Path != "" {
		p("worker:    %s\n", r.Workers.Line())
	} else {
		p("worker:    none: %s\n", r.Workers.Reason)
	}
	p("user:      %s (uid %d; groups %s)\n", r.Identity.User, r.Identity.UID, strings.Join(r.Identity.Groups, ", "))
	if r.Identity.Note != "" {
		p("           %s\n", r.Identity.Note)
	}
	for _, d := range r.Devices {
		ok := "ok"
		if !d.OK {
			ok = "NOT OPEN TO " + r.Identity.User
		}
		p("device:    %s %s %s %s\n", d.Path, d.Mode, d.Owner, ok)
	}
	p("swap:      %s\n", r.Swap)
	p("zram:      %s\n", r.Zram)
	p("cgroup:    %s\n", r.CGroup)
	for _, bk := range r.Backends {
		if bk.Pass {
			p("backend:   %-8s %s: built in %.2f s, peak RSS %s\n", bk.Backend, filepath.Base(bk.Worker), bk.Seconds, bytesize.Format(bk.PeakRSS))
		} else {
			p("backend:   %-8s %s: FAILED after %.2f s (peak RSS %s)\n", bk.Backend, filepath.Base(bk.Worker), bk.Seconds, bytesize.Format(bk.PeakRSS))
		}
	}
	p("\n")
	failed := 0
	for _, c := range r.Checks {
		if c.Pass {
			p("PASS  %s: %s\n", c.Name, c.Detail)
			continue
		}
		failed++
		p("FAIL  %s: %s\n      fix: %s\n", c.Name, c.Detail, c.Fix)
	}
	if r.Pass {
		p("\nselftest: PASS (%d checks, %.1f s)\n", len(r.Checks), r.Seconds)
	} else {
		p("\nselftest: FAIL (%d of %d checks failed, %.1f s): paste this output into an issue if the fixes do not help\n", failed, len(r.Checks), r.Seconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
