package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/device"
)

func init() {
	Renderers = append(Renderers, Renderer{".report.html", HTML})
}

// HTML writes the self-contained page of a report: inline CSS and a
// hand-built SVG memory plot, no script and nothing fetched from a network.
func HTML(w io.Writer, r *Report) error {
	v := htmlView{R: r, Headline: headline(r), Tone: tone(r.Outcome)}
	v.Plot, v.NoPlot = memoryPlot(r)
	v.Device = deviceRows(r.Device)
	v.Model = modelRows(r)
	for i := range r.Attempts {
		v.Attempts = append(v.Attempts, attemptView(i, &r.Attempts[i]))
	}
	return htmlTmpl.Execute(w, v)
}

type htmlView struct {
	R        *Report
	Headline string
	Tone     string
	Plot     template.HTML
	NoPlot   string
	Device   []kv
	Model    []kv
	Attempts []attView
}

type kv struct{ K, V string }

type attView struct {
	N                                int
	Name, Kind, Outcome, Tone        string
	Duration, PeakRSS, SwapUsed, Low string
	Reason, Settings, Memory         string
	SettingsWhat                     string
	Skipped                          []string
	Validation                       string
	Int8                             string
	MemUsage                         []string
	Calls                            []string
	LogTail                          string
}

func tone(outcome string) string {
	switch outcome {
	case OutcomeBuilt, OutcomeReused, string(protocol.ClassOK):
		return "good"
	case OutcomeBuilderUnavailable, "skipped":
		return "wait"
	}
	return "bad"
}

func attemptView(i int, a *Attempt) attView {
	v := attView{N: i + 1, Name: a.Stage, Kind: a.Kind, Outcome: strings.ReplaceAll(string(a.Outcome), "_", " "),
		Tone: tone(string(a.Outcome)), Duration: dur(a.DurationMs), PeakRSS: "—", SwapUsed: "—", Low: "—", Reason: a.Reason}
	if a.Part > 0 {
		v.Name = fmt.Sprintf("%s part %d", a.Stage, a.Part)
	}
	if a.Applied != nil {
		v.Settings, v.Skipped, v.SettingsWhat = strings.Join(a.Applied, ", "), a.Skipped, "Settings applied"
	} else {
		v.Settings, v.SettingsWhat = requested(a.Settings), "Settings requested"
	}
	if m := a.Memory; m != nil {
		v.PeakRSS, v.SwapUsed, v.Low = bytesize.Format(m.Peak.WorkerRSS), bytesize.Format(m.Peak.SwapUsed), bytesize.Format(m.Peak.MemAvailable)
		mem := fmt.Sprintf("Peak worker RSS %s, lowest MemAvailable %s, swap used up to %s", bytesize.Format(m.Peak.WorkerRSS), bytesize.Format(m.Peak.MemAvailable), bytesize.Format(m.Peak.SwapUsed))
		if m.SwapVerdict != "" {
			mem += " (" + m.SwapVerdict + ")"
		}
		mem += "."
		if m.Killed {
			mem += fmt.Sprintf(" The memory guard killed the worker after %s: %s.", dur(m.KilledAtMs), m.KillReason)
		}
		if m.CgroupOOM {
			mem += " The kernel OOM-killed the worker in its memory cgroup."
		}
		v.Memory = mem
	}
	for _, m := range a.MemUsage {
		v.MemUsage = append(v.MemUsage, fmt.Sprintf("%s: CPU %+.0f MiB, GPU %+.0f MiB", m.Phase, m.CPUMiB, m.GPUMiB))
	}
	if val := a.Validation; val != nil {
		v.Validation = fmt.Sprintf("%d runs, latency p50 %.2f ms, p99 %.2f ms%s, device memory %s", val.Runs, val.P50Ms, val.P99Ms, LatencyNote(val), bytesize.Format(val.DeviceMemUsed))
		if line := AccuracyLine(val); line != "" {
			v.Validation += ". " + strings.TrimSuffix(line, ".") // the error per output
		} else if val.AccuracyOK != nil {
			if *val.AccuracyOK {
				v.Validation += "; outputs match the expected samples"
			} else {
				v.Validation += "; outputs DO NOT match the expected samples"
			}
		}
	}
	v.Int8 = a.Int8
	v.Calls = a.Calls
	v.LogTail = strings.Join(a.LogTail, "\n")
	return v
}

func dur(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d < time.Hour {
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

func modelRows(r *Report) []kv {
	rows := []kv{{"file", r.Model.Name}, {"size", bytesize.Format(r.Model.Size)}}
	if r.Model.SHA256 != "" {
		rows = append(rows, kv{"sha256", r.Model.SHA256})
	}
	if r.Model.Sidecar != "" {
		rows = append(rows, kv{"settings file", r.Model.Sidecar})
	}
	if sum := r.Model.Summary; sum != nil {
		rows = append(rows, kv{"producer", strings.TrimSpace(sum.Producer.Name + " " + sum.Producer.Version)},
			kv{"opset", fmt.Sprint(sum.Opset[""])}, kv{"nodes", fmt.Sprint(sum.NodeCount)},
			kv{"weights", fmt.Sprintf("%s in %d initializers", bytesize.Format(sum.Initializers.Bytes), sum.Initializers.Count)})
		for _, in := range sum.Inputs {
			rows = append(rows, kv{"input " + in.Name, fmt.Sprintf("%s %v", in.DType(), in.ShapeValues())})
		}
	}
	return rows
}

// deviceRows shows the fields of the device diagnosis a person looks for.
func deviceRows(d *device.Device) []kv {
	if d == nil {
		return nil
	}
	var rows []kv
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, kv{k, v})
		}
	}
	add("platform", d.Kind)
	if j := d.Jetson; j != nil {
		add("board", strings.TrimSpace(j.Model+" "+paren(j.SoC)))
		if j.L4T != "" {
			add("L4T", strings.TrimSpace(j.L4T+" "+paren(orEmpty("JetPack ", j.JetPack))))
		}
		add("compute capability", j.ComputeCapability)
	}
	if d.MemTotal > 0 {
		add("RAM", fmt.Sprintf("%s, %s available", bytesize.Format(d.MemTotal), bytesize.Format(d.MemAvailable)))
	}
	if d.SwapTotal > 0 || len(d.Swaps) > 0 {
		add("swap", fmt.Sprintf("%s, %s free", bytesize.Format(d.SwapTotal), bytesize.Format(d.SwapFree)))
	} else {
		add("swap", "none")
	}
	for _, s := range d.Swaps {
		add("  "+s.Path, strings.TrimSpace(fmt.Sprintf("%s, %s used, priority %d %s", bytesize.Format(s.Size), bytesize.Format(s.Used), s.Priority, paren(s.Medium))))
	}
	if g := d.GPU; g != nil {
		v := g.Name
		if g.MemTotal > 0 {
			v += fmt.Sprintf(", %s (%s used)", bytesize.Format(g.MemTotal), bytesize.Format(g.MemUsed))
		}
		if g.Unified {
			v += ", memory shared with the CPU"
		}
		add("GPU", v)
		if d.Jetson == nil {
			add("compute capability", g.ComputeCapability)
		}
	}
	add("TensorRT", d.TensorRT)
	if d.CGroup.MemoryMax > 0 {
		add("service memory limit", bytesize.Format(d.CGroup.MemoryMax))
	}
	if len(d.Desktop) > 0 {
		add("desktop running", strings.Join(d.Desktop, ", "))
	}
	for _, n := range d.Notes {
		add("note", n)
	}
	return rows
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"human":     bytesize.Format,
	"reuseLine": func(u *Reuse, atts []attView) string { return reuseLine(u, len(atts) > 0) },
	"short":     short,
	"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"planDecision": func(s PlanStage) string {
		switch {
		case s.Skip:
			return "skip: " + s.Reason
		case s.Reason != "":
			return "try (" + s.Reason + ")"
		}
		return "try"
	},
}).Parse(htmlPage))
