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

// Markdown writes the terminal view of a report.
func Markdown(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	// Every string that can come from an upload goes through one of these.
	txt, code := safetext.Markdown, safetext.MarkdownCode
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
		p("An identical model was built earlier with the same settings, TensorRT and GPU (job %s); its engine was reused.\n\n", txt(r.Reuse.FromJob))
	}
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
	if r.Plan != nil && len(r.Plan.Stages) > 0 {
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
	if len(r.Attempts) > 0 {
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
		for i, a := range r.Attempts {
			p("### Attempt %d: %s\n\n", i+1, txt(a.Stage))
			p("Settings: precision %s, workspace %d MiB", txt(orDefault(a.Settings.Precision)), a.Settings.WorkspaceMiB)
			if a.Settings.TacticSources != nil {
				p(", tactic sources [%s]", txt(strings.Join(a.Settings.TacticSources, ", ")))
			}
			if a.Settings.OptimizationLevel != nil {
				p(", optimization level %d", *a.Settings.OptimizationLevel)
			}
			if a.Settings.MaxAuxStreams != nil {
				p(", aux streams %d", *a.Settings.MaxAuxStreams)
			}
			p(".\n\n")
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
				p("Validation: %d runs, latency p50 %.2f ms, p99 %.2f ms, device memory %s.\n\n", v.Runs, v.P50Ms, v.P99Ms, bytesize.Format(v.DeviceMemUsed))
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
	}
	if r.Builder != nil {
		p("## Builder\n\n")
		bd := r.Builder
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
		p("\n")
	}
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
	p("---\n%s %s, report schema %d, %s\n", txt(r.Tool.Name), txt(r.Tool.Version), r.Schema, r.Generated.UTC().Format("2006-01-02 15:04:05 UTC"))
	return b.Flush()
}

func headline(r *Report) string {
	switch r.Outcome {
	case OutcomeBuilt:
		return "engine built"
	case OutcomeReused:
		return "engine reused"
	case OutcomeBuilderUnavailable:
		return "waiting: TensorRT not available"
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
