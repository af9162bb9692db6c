package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/device"
)

func init() {
	Renderers = append(Renderers, Renderer{".report.html", HTML})
}

// Plot colours. The HTML test looks for the fills in a screenshot, so they
// are opaque colours, never blended.
const (
	colRAMFill   = "#9ecae9"
	colRAMLine   = "#3182bd"
	colSwapFill  = "#fdae6b"
	colSwapLine  = "#e6550d"
	colGPU       = "#31a354"
	colRSS       = "#756bb1"
	colLimit     = "#d62728"
	colRAMSize   = "#888888"
	colBandA     = "#f6f8fa"
	colBandB     = "#edf1f5"
	colGrid      = "#d0d7de"
	colAxisLabel = "#57606a"
)

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
	Validation                       string
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
	s := a.Settings
	set := []string{"precision " + orDefault(s.Precision), fmt.Sprintf("workspace %d MiB", s.WorkspaceMiB)}
	if s.TacticSources != nil {
		set = append(set, "tactic sources ["+strings.Join(s.TacticSources, ", ")+"]")
	}
	if s.OptimizationLevel != nil {
		set = append(set, fmt.Sprintf("optimization level %d", *s.OptimizationLevel))
	}
	if s.MaxAuxStreams != nil {
		set = append(set, fmt.Sprintf("aux streams %d", *s.MaxAuxStreams))
	}
	if s.TacticDRAMMiB > 0 {
		set = append(set, fmt.Sprintf("tactic DRAM %d MiB", s.TacticDRAMMiB))
	}
	if s.DLACore != nil {
		set = append(set, fmt.Sprintf("DLA core %d", *s.DLACore))
	}
	v.Settings = strings.Join(set, ", ")
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
		v.Validation = fmt.Sprintf("%d runs, latency p50 %.2f ms, p99 %.2f ms, device memory %s", val.Runs, val.P50Ms, val.P99Ms, bytesize.Format(val.DeviceMemUsed))
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

// span is one attempt's place on the plot's time axis.
type span struct {
	a      *Attempt
	x0, x1 float64 // ms from the plot's start
}

// memoryPlot draws every attempt's memory timeline on one time axis, or
// returns a sentence saying why there is none.
func memoryPlot(r *Report) (template.HTML, string) {
	var spans []span
	var t0 time.Time
	for i := range r.Attempts {
		a := &r.Attempts[i]
		if a.DurationMs <= 0 && (a.Memory == nil || len(a.Memory.Samples) == 0) {
			continue
		}
		if t0.IsZero() || (!a.Start.IsZero() && a.Start.Before(t0)) {
			t0 = a.Start
		}
	}
	samples := 0
	var cursor float64
	for i := range r.Attempts {
		a := &r.Attempts[i]
		length := float64(a.DurationMs)
		if a.Memory != nil {
			samples += len(a.Memory.Samples)
			if n := len(a.Memory.Samples); n > 0 {
				length = math.Max(length, float64(a.Memory.Samples[n-1].AtMs))
			}
			length = math.Max(length, float64(a.Memory.KilledAtMs))
		}
		if length <= 0 {
			continue
		}
		x0 := cursor
		if !a.Start.IsZero() && !t0.IsZero() {
			x0 = math.Max(float64(a.Start.Sub(t0).Milliseconds()), cursor)
		}
		spans = append(spans, span{a, x0, x0 + length})
		cursor = x0 + length
	}
	switch {
	case len(r.Attempts) == 0 && r.Reuse != nil:
		return "", "No build ran: the engine of an identical earlier build was reused, so there is no memory timeline."
	case len(r.Attempts) == 0 && r.Outcome == OutcomeBuilderUnavailable:
		return "", "No build ran yet: TensorRT is not available on this machine, so there is no memory timeline."
	case len(r.Attempts) == 0:
		return "", "No build ran, so there is no memory timeline."
	case samples == 0:
		return "", "The memory guard recorded no samples for these attempts (it was not active, or every attempt ended before its first reading), so there is no memory plot."
	}
	// The device's RAM size, for samples that lack it.
	var dev device.Device
	if r.Device != nil {
		dev = *r.Device
	}

	const W, H = 1000.0, 360.0
	const ml, mr, mt, mb = 70.0, 18.0, 40.0, 40.0
	pw, ph := W-ml-mr, H-mt-mb
	total := spans[len(spans)-1].x1
	var ymax float64
	hasGPU, hasRSS, hasLimit, hasRAM, hasSwap := false, false, false, false, false
	for _, s := range spans {
		if s.a.Memory == nil {
			continue
		}
		for _, p := range s.a.Memory.Samples {
			tot := p.MemTotal
			if tot == 0 {
				tot = dev.MemTotal
			}
			if tot > 0 {
				hasRAM = true
				// RAM size is not in the scale: on a big machine it would
				// squash what matters (used vs the guard's kill line).
				ymax = math.Max(ymax, float64(tot-p.MemAvailable+p.SwapUsed))
				if s.a.Memory.FloorBytes > 0 {
					hasLimit = true
					ymax = math.Max(ymax, float64(tot+p.SwapUsed+p.SwapFree-s.a.Memory.FloorBytes))
				}
			}
			ymax = math.Max(ymax, float64(p.SwapUsed))
			ymax = math.Max(ymax, float64(p.WorkerRSS))
			ymax = math.Max(ymax, float64(p.GPUUsed))
			hasGPU = hasGPU || p.GPUUsed > 0
			hasSwap = hasSwap || p.SwapUsed > 0 || p.SwapFree > 0
			hasRSS = hasRSS || p.WorkerRSS > 0
		}
	}
	if ymax <= 0 {
		return "", "The memory guard's samples hold no memory figures, so there is no memory plot."
	}
	ystep, yunit, ydiv := niceBytes(ymax * 1.06 / 5)
	ytop := math.Ceil(ymax*1.06/ystep) * ystep
	// The RAM size line is drawn only where it falls inside the plot.
	sizeShown := hasRAM
	for _, s := range spans {
		if s.a.Memory == nil {
			continue
		}
		for _, q := range s.a.Memory.Samples {
			tot := q.MemTotal
			if tot == 0 {
				tot = dev.MemTotal
			}
			if float64(tot) > ytop {
				sizeShown = false
			}
		}
	}
	xstep := niceTime(total / 8)
	X := func(ms float64) float64 { return ml + ms/total*pw }
	Y := func(b float64) float64 { return mt + ph - b/ytop*ph }

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg class="plot" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="memory during the build" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, -apple-system, 'DejaVu Sans', sans-serif" font-size="12">`, W, H)
	p(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`, W, H)
	// Stage bands and boundaries.
	for i, s := range spans {
		fill := colBandA
		if i%2 == 1 {
			fill = colBandB
		}
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, X(s.x0), mt, math.Max(X(s.x1)-X(s.x0), 1), ph, fill)
		label := s.a.Stage
		if s.a.Part > 0 {
			label = fmt.Sprintf("%s part %d", s.a.Stage, s.a.Part)
		}
		oc := strings.ReplaceAll(string(s.a.Outcome), "_", " ")
		col := "#1a7f37"
		if tone(string(s.a.Outcome)) != "good" {
			col = "#b42318"
		}
		w := X(s.x1) - X(s.x0)
		if w > 60 {
			p(`<text x="%.1f" y="%.1f" font-weight="600" fill="#24292f">%s <tspan fill="%s" font-weight="400">· %s</tspan></text>`, X(s.x0)+6, mt-8, esc(label), col, esc(oc))
		}
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#8c959f" stroke-width="1"/>`, X(s.x0), mt-20, X(s.x0), mt+ph)
		if (s.a.Memory == nil || len(s.a.Memory.Samples) == 0) && w > 120 {
			p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" font-style="italic">no memory samples for this attempt</text>`, (X(s.x0)+X(s.x1))/2, mt+ph/2, colAxisLabel)
		}
	}
	// Grid and axes.
	for v := 0.0; v <= ytop+ystep/2; v += ystep {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="0.6"/>`, ml, Y(v), ml+pw, Y(v), colGrid)
		p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text>`, ml-6, Y(v)+4, colAxisLabel, trimNum(v/ydiv)+" "+yunit)
	}
	for t := 0.0; t <= total+1; t += xstep {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, X(t), mt+ph, X(t), mt+ph+5, colAxisLabel)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`, X(t), mt+ph+18, colAxisLabel, timeLabel(t, xstep))
	}
	p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">time since the first attempt started</text>`, ml+pw, H-4, colAxisLabel)
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#57606a" stroke-width="1"/>`, ml, mt+ph, ml+pw, mt+ph)
	// Series, per attempt.
	for _, s := range spans {
		m := s.a.Memory
		if m == nil || len(m.Samples) == 0 {
			continue
		}
		var ram, top, rss, gpu, limit, size []string
		for _, q := range m.Samples {
			x := X(s.x0 + float64(q.AtMs))
			mtot := q.MemTotal
			if mtot == 0 {
				mtot = dev.MemTotal
			}
			if mtot > 0 {
				used := float64(mtot - q.MemAvailable)
				ram = append(ram, pt(x, Y(used)))
				top = append(top, pt(x, Y(used+float64(q.SwapUsed))))
				size = append(size, pt(x, Y(float64(mtot))))
				if m.FloorBytes > 0 {
					limit = append(limit, pt(x, Y(float64(mtot+q.SwapUsed+q.SwapFree-m.FloorBytes))))
				}
			} else {
				top = append(top, pt(x, Y(float64(q.SwapUsed))))
			}
			rss = append(rss, pt(x, Y(float64(q.WorkerRSS))))
			gpu = append(gpu, pt(x, Y(float64(q.GPUUsed))))
		}
		xa, xb := X(s.x0+float64(m.Samples[0].AtMs)), X(s.x0+float64(m.Samples[len(m.Samples)-1].AtMs))
		base := Y(0)
		if hasRAM {
			// Swap used, stacked on RAM used; then RAM used.
			p(`<polygon points="%s %s" fill="%s" stroke="none"/>`, strings.Join(top, " "), strings.Join(reverse(ram), " "), colSwapFill)
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(top, " "), colSwapLine)
			p(`<polygon points="%s %s %s" fill="%s" stroke="none"/>`, pt(xa, base), strings.Join(ram, " "), pt(xb, base), colRAMFill)
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(ram, " "), colRAMLine)
			if sizeShown {
				p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1" stroke-dasharray="2 3"/>`, strings.Join(size, " "), colRAMSize)
			}
		} else {
			p(`<polygon points="%s %s %s" fill="%s" stroke="none"/>`, pt(xa, base), strings.Join(top, " "), pt(xb, base), colSwapFill)
		}
		if len(limit) > 0 {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="7 4"/>`, strings.Join(limit, " "), colLimit)
		}
		if hasRSS {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="5 3"/>`, strings.Join(rss, " "), colRSS)
		}
		if hasGPU {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(gpu, " "), colGPU)
		}
	}
	// Kill markers on top of everything.
	for _, s := range spans {
		m := s.a.Memory
		if m == nil {
			continue
		}
		var at float64
		var what string
		switch {
		case m.Killed:
			at, what = s.x0+float64(m.KilledAtMs), "guard killed the worker"
		case m.CgroupOOM:
			at, what = s.x1, "kernel OOM kill"
		default:
			continue
		}
		x := X(at)
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`, x, mt, x, mt+ph, colLimit)
		p(`<circle cx="%.1f" cy="%.1f" r="9" fill="%s"/><path d="M%.1f %.1fl8 8m0 -8l-8 8" stroke="#ffffff" stroke-width="2.2"/>`, x, mt+12, colLimit, x-4, mt+8)
		anchor, dx := "start", 14.0
		if x > ml+pw*0.7 {
			anchor, dx = "end", -14
		}
		p(`<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s" font-weight="600">%s at %s</text>`, x+dx, mt+16, anchor, colLimit, what, dur(int64(at-s.x0)))
	}
	p(`</svg>`)
	// Legend, in HTML so it wraps.
	b.WriteString(`<div class="legend">`)
	sw := func(kind, col, text string) {
		p(`<span><i class="sw %s" style="--c:%s"></i>%s</span>`, kind, col, text)
	}
	if hasRAM {
		sw("area", colRAMFill, "RAM used (total − MemAvailable)")
		if hasSwap {
			sw("area", colSwapFill, "swap used (stacked on RAM)")
		}
		if sizeShown {
			sw("dot", colRAMSize, "RAM size")
		}
	} else if hasSwap {
		sw("area", colSwapFill, "swap used")
	}
	if hasLimit {
		sw("dash", colLimit, "guard's kill line: RAM + swap − floor")
	}
	if hasRSS {
		sw("dash", colRSS, "worker RSS")
	}
	if hasGPU {
		sw("line", colGPU, "GPU / unified memory used")
	}
	sw("mark", colLimit, "OOM kill")
	b.WriteString(`</div>`)
	for _, s := range spans {
		if m := s.a.Memory; m != nil && m.FloorBytes > 0 {
			p(`<p class="note">The memory guard stops the build when MemAvailable + SwapFree falls below its floor of %s: that is when the stack of RAM and swap used reaches the red dashed line.</p>`, bytesize.Format(m.FloorBytes))
			break
		}
	}
	return template.HTML(b.String()), ""
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func pt(x, y float64) string { return fmt.Sprintf("%.1f,%.1f", x, y) }

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// niceBytes picks a round tick step near target bytes, with its unit.
func niceBytes(target float64) (step float64, unit string, div float64) {
	unit, div = "MiB", 1<<20
	if target >= 256<<20 {
		unit, div = "GiB", 1<<30
	}
	if target < 1<<20 {
		unit, div = "KiB", 1<<10
	}
	return niceNum(target/div) * div, unit, div
}

// niceTime picks a round tick step (ms) near target ms.
func niceTime(target float64) float64 {
	for _, s := range []float64{100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3} {
		if s >= target {
			return s
		}
	}
	return math.Ceil(target/3600e3) * 3600e3
}

func niceNum(x float64) float64 {
	if x <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= x {
			return m * e
		}
	}
	return 10 * e
}

func trimNum(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func timeLabel(ms, step float64) string {
	switch {
	case step < 1000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case step < 60e3:
		return fmt.Sprintf("%.0f s", ms/1000)
	case step < 3600e3:
		return fmt.Sprintf("%.0f min", ms/60e3)
	}
	return fmt.Sprintf("%.1f h", ms/3600e3)
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"human": bytesize.Format,
	"short": short,
	"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
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

const htmlPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trtd report: {{.R.Model.Name}} — {{.Headline}}</title>
<style>
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #24292f; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { font-size: 22px; margin: 0 0 12px; font-weight: 600; }
header h1 small { color: #57606a; font-weight: 400; font-size: 15px; }
.outcome { border-radius: 8px; padding: 14px 18px; margin-bottom: 18px; border: 1px solid; }
.outcome strong { font-size: 20px; display: block; }
.outcome.good { background: #dafbe1; border-color: #4ac26b; color: #0f5323; }
.outcome.wait { background: #fff8c5; border-color: #d4a72c; color: #5c4100; }
.outcome.bad { background: #ffebe9; border-color: #ff8182; color: #82071e; }
.outcome p { margin: 4px 0 0; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-bottom: 18px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 18px; margin-bottom: 18px; }
.grid section { margin-bottom: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: #57606a; font-size: 13px; }
table.kv th { width: 34%; font-weight: 500; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; word-break: break-all; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 13px; font-weight: 600; white-space: nowrap; }
.pill.good { background: #dafbe1; color: #1a7f37; } .pill.bad { background: #ffebe9; color: #b42318; } .pill.wait { background: #fff8c5; color: #7d4e00; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; color: #24292f; margin-top: 6px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 22px; height: 12px; }
.sw.area { background: var(--c); border: 1px solid rgba(0,0,0,.25); }
.sw.line { height: 0; border-top: 3px solid var(--c); }
.sw.dash { height: 0; border-top: 3px dashed var(--c); }
.sw.dot { height: 0; border-top: 2px dotted var(--c); }
.sw.mark { width: 12px; border-radius: 6px; background: var(--c); }
.note { color: #57606a; font-size: 13px; margin: 8px 0 0; }
.muted { color: #57606a; }
pre { background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 6px; padding: 8px 10px; overflow-x: auto; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
details { margin: 4px 0 10px; }
summary { cursor: pointer; color: #0969da; }
ul { margin: 6px 0; padding-left: 22px; }
footer { color: #57606a; font-size: 13px; text-align: center; }
</style>
</head>
<body>
<main>
<header>
<h1>trtd report <small>· {{.R.Model.Name}}{{if .R.Job}} · job {{.R.Job}}{{end}}</small></h1>
<div class="outcome {{.Tone}}" id="outcome">
<strong>{{.Headline}}{{with .R.Engine}}{{if .Stage}} — stage {{.Stage}}{{end}}{{end}}</strong>
{{if .R.Reason}}<p>{{.R.Reason}}</p>{{end}}
{{with .R.Engine}}<p>Engine <code>{{.File}}</code>{{if .Bytes}}, {{human .Bytes}}{{end}}{{if .SHA256}}, sha256 <code>{{short .SHA256}}</code>{{end}}.</p>{{end}}
{{with .R.Reuse}}<p>An identical model was built earlier with the same settings, TensorRT and GPU (job {{.FromJob}}); its engine was reused.</p>{{end}}
{{if .R.Portability}}<p>{{.R.Portability}}</p>{{end}}
</div>
</header>
{{with .R.Waiting}}<section><h2>Waiting for a builder</h2><p>{{.Missing}}</p>
<p>What trtd will do once a builder is available:</p><ul>{{range .WouldDo}}<li>{{.}}</li>{{end}}</ul>
{{if not .NextRetry.IsZero}}<p class="muted">Next retry: {{utc .NextRetry}}.</p>{{end}}</section>{{end}}
<section id="memory">
<h2>Memory during the build</h2>
{{if .Plot}}{{.Plot}}{{else}}<p class="muted" id="noplot">{{.NoPlot}}</p>{{end}}
</section>
{{if .Attempts}}<section id="attempts">
<h2>Attempts</h2>
<table>
<thead><tr><th>#</th><th>stage</th><th>outcome</th><th class="num">duration</th><th class="num">peak worker RSS</th><th class="num">swap used</th><th>reason</th></tr></thead>
<tbody>
{{range .Attempts}}<tr><td>{{.N}}</td><td>{{.Name}}{{if and .Kind (ne .Kind "build")}} <span class="muted">({{.Kind}})</span>{{end}}</td><td><span class="pill {{.Tone}}">{{.Outcome}}</span></td><td class="num">{{.Duration}}</td><td class="num">{{.PeakRSS}}</td><td class="num">{{.SwapUsed}}</td><td>{{.Reason}}</td></tr>
{{end}}</tbody>
</table>
{{range .Attempts}}<h3>Attempt {{.N}}: {{.Name}}</h3>
<p>Settings: {{.Settings}}.</p>
{{if .Memory}}<p>{{.Memory}}</p>{{end}}
{{if .Validation}}<p>Validation: {{.Validation}}.</p>{{end}}
{{if .MemUsage}}<p>TensorRT's own memory accounting:</p><ul>{{range .MemUsage}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Calls}}<details><summary>builder calls</summary><pre>{{range .Calls}}{{.}}
{{end}}</pre></details>{{end}}
{{if .LogTail}}<details><summary>last log lines</summary><pre>{{.LogTail}}</pre></details>{{end}}
{{end}}
</section>{{end}}
<div class="grid">
<section id="model"><h2>Model</h2>
<table class="kv">{{range .Model}}<tr><th>{{.K}}</th><td{{if eq .K "sha256"}} class="mono"{{end}}>{{.V}}</td></tr>{{end}}</table>
{{with .R.Model.Warnings}}<ul>{{range .}}<li>warning: {{.}}</li>{{end}}</ul>{{end}}
</section>
<section id="device"><h2>Device</h2>
{{if .Device}}<table class="kv">{{range .Device}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>{{else}}<p class="muted">No device diagnosis was recorded.</p>{{end}}
{{with .R.Builder}}<h3>Builder</h3><table class="kv">
<tr><th>backend</th><td>{{.Backend}}</td></tr>
{{if .TensorRT}}<tr><th>TensorRT</th><td>{{.TensorRT}}</td></tr>{{end}}
{{if .GPU}}<tr><th>GPU</th><td>{{.GPU}} (compute capability {{.ComputeCapability}})</td></tr>{{end}}
{{if .CUDARuntime}}<tr><th>CUDA runtime</th><td>{{.CUDARuntime}}</td></tr>{{end}}
</table>{{end}}
</section>
</div>
{{with .R.Plan}}{{if .Stages}}<section id="plan"><h2>Plan</h2>
<p>Starting stage: <b>{{.Start}}</b>; swap planned: {{human .SwapBytes}}.</p>
<table><thead><tr><th>stage</th><th class="num">predicted peak</th><th>decision</th></tr></thead><tbody>
{{range .Stages}}<tr><td>{{.Name}}</td><td class="num">{{human .PeakBytes}}</td><td>{{planDecision .}}</td></tr>
{{end}}</tbody></table>
{{with .Notes}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>{{end}}{{end}}
{{with .R.Recommendations}}<section id="recommendations"><h2>Recommendations</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul></section>{{end}}
{{with .R.KeptModel}}<p class="muted">The uploaded model is kept at <code>{{.}}</code>.</p>{{end}}
<footer>{{.R.Tool.Name}} {{.R.Tool.Version}} · report schema {{.R.Schema}} · {{utc .R.Generated}}</footer>
</main>
</body>
</html>
`
