package report

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/safetext"
)

// Every string in the Markdown view that can come from an upload goes
// through one of these: txt escapes Markdown and raw HTML, code quotes.
var txt, code = safetext.Markdown, safetext.MarkdownCode

// Markdown writes the terminal view of a report.
func Markdown(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	// bufio.Writer keeps its first write error and Flush returns it, so
	// the Flush below reports a failure of any of these writes.
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(b, format, a...) }
	for _, section := range []func(mdf, *Report){mdOutcome, mdWaiting, mdModel, mdPlan, mdAttempts, mdBuilder, mdTail} {
		section(p, r)
	}
	return b.Flush()
}

// mdf prints one piece of a Markdown report.
type mdf func(format string, a ...any)

func mdOutcome(p mdf, r *Report) {
	p("# trtd report: %s\n\n", txt(r.Model.Name))
	p("**Outcome: %s**", headline(r))
	if r.Reason != "" {
		p(" — %s", txt(r.Reason))
	}
	p("\n\n")
	if r.Engine != nil {
		p("Engine: %s (%s, sha256 %s), built by stage **%s**.\n", code(r.Engine.File), bytesize.Format(r.Engine.Bytes), txt(short(r.Engine.SHA256)), txt(r.Engine.Stage))
		for i, part := range r.Engine.Parts {
			p("- part %d: %s (%s)\n", i+1, code(part.File), bytesize.Format(part.Bytes))
		}
		if r.Engine.Manifest != "" {
			p("\nThe model was built in %d parts; `%s` lists them in the order to run them, each part's inputs coming from earlier parts' outputs.\n", len(r.Engine.Parts), code(r.Engine.Manifest))
		}
		p("\n")
	}
	if r.Reuse != nil {
		p("%s\n\n", txt(reuseLine(r.Reuse, len(r.Attempts) > 0)))
	}
}

func mdWaiting(p mdf, r *Report) {
	if r.Waiting != nil {
		p("## Waiting for a builder\n\n%s\n\nWhat trtd will do once a builder is available:\n\n", txt(r.Waiting.Missing))
		for _, s := range r.Waiting.WouldDo {
			p("- %s\n", txt(s))
		}
		if !r.Waiting.NextRetry.IsZero() {
			p("\nNext retry: %s.\n", r.Waiting.NextRetry.Format("2006-01-02 15:04:05 MST"))
		}
		p("\n")
	}
	if r.Portability != "" {
		p("%s\n\n", txt(r.Portability))
	}
}

func mdModel(p mdf, r *Report) {
	p("## Model\n\n| | |\n|---|---|\n")
	p("| file | %s |\n| size | %s |\n", code(r.Model.Name), bytesize.Format(r.Model.Size))
	if r.Model.SHA256 != "" {
		p("| sha256 | %s |\n", code(r.Model.SHA256))
	}
	if r.Model.Sidecar != "" {
		p("| settings | %s |\n", code(r.Model.Sidecar))
	}
	if sum := r.Model.Summary; sum != nil {
		p("| producer | %s %s |\n| opset | %d |\n| nodes | %d |\n| weights | %s in %d initializers |\n",
			txt(sum.Producer.Name), txt(sum.Producer.Version), sum.Opset[""], sum.NodeCount, bytesize.Format(sum.Initializers.Bytes), sum.Initializers.Count)
		for _, in := range sum.Inputs {
			shape := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(in.ShapeValues()), "["), "]")
			p("| input %s | %s [%s] |\n", code(in.Name), txt(in.DType()), txt(shape))
		}
	}
	p("\n")
	for _, w := range r.Model.Warnings {
		p("- warning: %s\n", txt(w))
	}
	if len(r.Model.Warnings) > 0 {
		p("\n")
	}
}

func mdPlan(p mdf, r *Report) {
	if r.Plan == nil || len(r.Plan.Stages) == 0 {
		return
	}
	p("## Plan\n\nStarting stage: **%s**; swap planned: %s.\n\n| stage | predicted peak | decision |\n|---|---|---|\n", r.Plan.Start, bytesize.Format(r.Plan.SwapBytes))
	for _, s := range r.Plan.Stages {
		d := "try"
		if s.Skip {
			d = "skip: " + s.Reason
		} else if s.Reason != "" {
			d = "try (" + s.Reason + ")"
		}
		p("| %s | %s | %s |\n", txt(s.Name), bytesize.Format(s.PeakBytes), txt(d))
	}
	for _, n := range r.Plan.Notes {
		p("\n- %s", txt(n))
	}
	p("\n\n")
}

func mdAttempts(p mdf, r *Report) {
	if len(r.Attempts) == 0 {
		return
	}
	p("## Attempts\n\n| # | stage | outcome | duration | peak worker RSS | swap used | reason |\n|---|---|---|---|---|---|---|\n")
	for i, a := range r.Attempts {
		rss, swp := "—", "—"
		if a.Memory != nil {
			rss = bytesize.Format(a.Memory.Peak.WorkerRSS)
			swp = bytesize.Format(a.Memory.Peak.SwapUsed)
		}
		name := a.Stage
		if a.Part > 0 {
			name = fmt.Sprintf("%s part %d", a.Stage, a.Part)
		}
		p("| %d | %s | %s | %.1fs | %s | %s | %s |\n", i+1, txt(name), txt(string(a.Outcome)), float64(a.DurationMs)/1000, rss, swp, txt(oneLine(a.Reason)))
	}
	p("\n")
	for i := range r.Attempts {
		mdAttempt(p, i, &r.Attempts[i])
	}
}

func mdAttempt(p mdf, i int, a *Attempt) {
	p("### Attempt %d: %s\n\n", i+1, txt(a.Stage))
	if a.Applied != nil {
		p("Settings applied: %s.\n\n", txt(strings.Join(a.Applied, ", ")))
		for _, sk := range a.Skipped {
			p("- not applied: %s\n", txt(sk))
		}
		if len(a.Skipped) > 0 {
			p("\n")
		}
	} else {
		p("Settings requested: %s.\n\n", txt(requested(a.Settings)))
	}
	if a.Int8 != "" {
		p("int8: %s.\n\n", txt(a.Int8))
	}
	if a.Memory != nil {
		m := a.Memory
		p("Memory: peak worker RSS %s, lowest MemAvailable %s, swap used up to %s (%s).", bytesize.Format(m.Peak.WorkerRSS), bytesize.Format(m.Peak.MemAvailable), bytesize.Format(m.Peak.SwapUsed), txt(m.SwapVerdict))
		if m.Killed {
			p(" The memory guard killed the worker after %.1fs: %s.", float64(m.KilledAtMs)/1000, txt(m.KillReason))
		}
		if m.CgroupOOM {
			p(" The kernel OOM-killed the worker in its memory cgroup.")
		}
		p("\n\n")
	}
	if len(a.MemUsage) > 0 {
		p("TensorRT memory accounting:\n\n")
		for _, m := range a.MemUsage {
			p("- %s: CPU %+.0f MiB, GPU %+.0f MiB\n", txt(m.Phase), m.CPUMiB, m.GPUMiB)
		}
		p("\n")
	}
	if v := a.Validation; v != nil {
		p("Validation: %d runs, latency p50 %.2f ms, p99 %.2f ms%s, device memory %s.\n\n", v.Runs, v.P50Ms, v.P99Ms, LatencyNote(v), bytesize.Format(v.DeviceMemUsed))
		if line := AccuracyLine(v); line != "" {
			p("%s\n\n", txt(line))
		}
	}
	if len(a.LogTail) > 0 {
		lines := make([]string, len(a.LogTail))
		for i, l := range a.LogTail {
			lines[i] = safetext.CodeBlockLine(l)
		}
		fence := safetext.MarkdownFence(lines)
		p("Last log lines:\n\n%s\n%s\n%s\n\n", fence, strings.Join(lines, "\n"), fence)
	}
}

func mdBuilder(p mdf, r *Report) {
	bd := r.Builder
	if bd == nil {
		return
	}
	p("## Builder\n\n")
	p("- backend: %s\n", txt(bd.Backend))
	if bd.TensorRT != "" {
		p("- TensorRT: %s\n", txt(bd.TensorRT))
	}
	if bd.GPU != "" {
		p("- GPU: %s (compute capability %s)\n", txt(bd.GPU), txt(bd.ComputeCapability))
	}
	if bd.CUDARuntime != "" {
		p("- CUDA runtime: %s\n", txt(bd.CUDARuntime))
	}
	if bd.Worker != "" {
		p("- worker: %s (%s)\n", txt(bd.Worker), txt(bd.WorkerReason))
	}
	p("\n")
}

func mdTail(p mdf, r *Report) {
	if len(r.Recommendations) > 0 {
		p("## Recommendations\n\n")
		for _, s := range r.Recommendations {
			p("- %s\n", txt(s))
		}
		p("\n")
	}
	if r.KeptModel != "" {
		p("The uploaded model is kept at %s.\n\n", code(r.KeptModel))
	}
	fleetLines(p, r.Fleet)
	p("---\n%s %s, report schema %d, %s\n", txt(r.Tool.Name), txt(r.Tool.Version), r.Schema, r.Generated.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// fleetLines says how the fleet registry took part.
func fleetLines(p func(string, ...any), f *Fleet) {
	if f == nil {
		return
	}
	if o := f.Pulled; o != nil {
		p("Engine pulled from the fleet registry %s (%s), built by %s at stage %s on %s; %s.\n\n", code(oneLine(f.Registry)),
			code(oneLine(o.Digest)), txt(oneLine(o.BuiltBy)), txt(oneLine(o.Stage)), o.Built.UTC().Format("2006-01-02 15:04 UTC"), txt(oneLine(o.Checked)))
	}
	for _, l := range []struct{ what, v string }{{"Registry not used", f.Pull}, {"Ladder started where this device's peers succeeded", f.Start}, {"Sharing", f.Push}} {
		if l.v != "" {
			p("%s: %s.\n\n", l.what, txt(oneLine(l.v)))
		}
	}
}

func headline(r *Report) string {
	switch r.Outcome {
	case OutcomeBuilt:
		return "engine built"
	case OutcomeReused:
		if r.Fleet != nil && r.Fleet.Pulled != nil {
			return "engine pulled from the fleet registry"
		}
		return "engine reused"
	case OutcomeBuilderUnavailable:
		return "waiting for a builder"
	case OutcomeRejected:
		return "model rejected"
	case OutcomeFailed:
		return "build failed"
	}
	return r.Outcome
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// human formats a byte count with binary units.
// AccuracyLine sums up the accuracy gate of one attempt in a sentence:
// the verdict, then each output's largest absolute and relative error
// against the uploaded samples. It is empty when no samples were checked.
func AccuracyLine(v *protocol.Validation) string {
	if v == nil || len(v.Accuracy) == 0 {
		return ""
	}
	verdict := "within tolerance"
	if v.AccuracyOK != nil && !*v.AccuracyOK {
		verdict = "OUTSIDE tolerance, engine not published"
	}
	var outs []string
	for _, a := range v.Accuracy {
		o := fmt.Sprintf("%s max abs error %s, max rel error %s", a.Output, errNum(a.MaxAbsErr), errNum(a.MaxRelErr))
		if !a.OK {
			o += " (outside)"
		}
		outs = append(outs, o)
	}
	return fmt.Sprintf("Accuracy against the uploaded samples: %s — %s.", verdict, strings.Join(outs, "; "))
}

// errNum formats an error value; math.MaxFloat64 stands for an infinite
// error (NaN or an infinity where a number was expected).
func errNum(v float64) string {
	if v >= math.MaxFloat64 {
		return "inf"
	}
	return fmt.Sprintf("%.3g", v)
}

// reuseLine says where a reused engine came from.
func reuseLine(u *Reuse, attempts bool) string {
	s := fmt.Sprintf("An identical model was built earlier with the same settings, TensorRT and GPU (job %s", u.FromJob)
	if !u.Built.IsZero() {
		s += ", " + u.Built.UTC().Format("2006-01-02 15:04 UTC")
	}
	s += "); its engine was reused."
	if attempts {
		s += " The attempts and memory below are that build's."
	}
	return s
}

// LatencyNote labels trtexec's latency, which includes the host-to-device
// and device-to-host copies of every inference (its "Latency" is "the
// summation of H2D Latency, GPU Compute Time, and D2H Latency",
// samples/common/sampleReporting.cpp); the API backend times the engine
// alone.
func LatencyNote(v *protocol.Validation) string {
	if v != nil && v.LatencyIncludesTransfers {
		return " (trtexec: including host-device copies)"
	}
	return ""
}
