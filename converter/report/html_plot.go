package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/trtd/trtd/internal/bytesize"
)

// The memory plot of the HTML page: a hand-built SVG of every attempt's
// memory timeline, with its geometry, scales and tick labels.

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

// span is one attempt's place on the plot's time axis.
type span struct {
	a      *Attempt
	x0, x1 float64 // ms from the plot's start
}

// memoryPlot draws every attempt's memory timeline on one time axis, or
// returns a sentence saying why there is none.
func memoryPlot(r *Report) (template.HTML, string) {
	spans, samples := spansOf(r.Attempts)
	switch {
	case len(r.Attempts) == 0 && r.Reuse != nil:
		return "", "No build ran: the engine of an identical earlier build was reused, so there is no memory timeline."
	case len(r.Attempts) == 0 && r.Outcome == OutcomeBuilderUnavailable:
		return "", "No build ran yet: no builder is available on this machine, so there is no memory timeline."
	case len(r.Attempts) == 0:
		return "", "No build ran, so there is no memory timeline."
	case samples == 0:
		return "", "The memory guard recorded no samples for these attempts (it was not active, or every attempt ended before its first reading), so there is no memory plot."
	}
	pl := &plot{spans: spans}
	// The device's RAM size, for samples that lack it.
	if r.Device != nil {
		pl.memTotal = r.Device.MemTotal
	}
	if !pl.scale() {
		return "", "The memory guard's samples hold no memory figures, so there is no memory plot."
	}
	pl.p(`<svg class="plot" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="memory during the build" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, -apple-system, 'DejaVu Sans', sans-serif" font-size="12">`, plotW, plotH)
	pl.p(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`, plotW, plotH)
	pl.bands()
	pl.axes()
	for _, s := range spans {
		pl.series(s)
	}
	pl.kills() // on top of everything
	pl.p(`</svg>`)
	pl.legend()
	return template.HTML(pl.b.String()), ""
}

// spansOf places each attempt on the plot's time axis and counts the
// memory samples.
func spansOf(atts []Attempt) (spans []span, samples int) {
	var t0 time.Time
	for i := range atts {
		a := &atts[i]
		if a.DurationMs <= 0 && (a.Memory == nil || len(a.Memory.Samples) == 0) {
			continue
		}
		if t0.IsZero() || (!a.Start.IsZero() && a.Start.Before(t0)) {
			t0 = a.Start
		}
	}
	var cursor float64
	for i := range atts {
		a := &atts[i]
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
	return spans, samples
}

// The plot's geometry, in SVG units: the picture, its margins (left,
// right, top, bottom) and the plotting area between them.
const (
	plotW, plotH   = 1000.0, 360.0
	ml, mr, mt, mb = 70.0, 18.0, 40.0, 40.0
	pw, ph         = plotW - ml - mr, plotH - mt - mb
)

// plot is the memory plot being drawn.
type plot struct {
	spans    []span
	memTotal int64 // the device's RAM, for samples without one
	b        strings.Builder

	total, ytop, ystep, ydiv                  float64
	yunit                                     string
	hasGPU, hasRSS, hasLimit, hasRAM, hasSwap bool
	sizeShown                                 bool
}

func (pl *plot) p(format string, a ...any) { fmt.Fprintf(&pl.b, format, a...) }

func (pl *plot) X(ms float64) float64 { return ml + ms/pl.total*pw }
func (pl *plot) Y(b float64) float64  { return mt + ph - b/pl.ytop*ph }

// ramOf is a sample's RAM size, or the device's.
func (pl *plot) ramOf(q Sample) int64 {
	if q.MemTotal == 0 {
		return pl.memTotal
	}
	return q.MemTotal
}

// scale finds the y range and which series there are; false when the
// samples hold no figure at all.
func (pl *plot) scale() bool {
	pl.total = pl.spans[len(pl.spans)-1].x1
	var ymax float64
	for _, s := range pl.spans {
		if s.a.Memory == nil {
			continue
		}
		for _, p := range s.a.Memory.Samples {
			if tot := pl.ramOf(p); tot > 0 {
				pl.hasRAM = true
				// RAM size is not in the scale: on a big machine it would
				// squash what matters (used vs the guard's kill line).
				ymax = math.Max(ymax, float64(tot-p.MemAvailable+p.SwapUsed))
				if s.a.Memory.FloorBytes > 0 {
					pl.hasLimit = true
					ymax = math.Max(ymax, float64(tot+p.SwapUsed+p.SwapFree-s.a.Memory.FloorBytes))
				}
			}
			ymax = math.Max(ymax, float64(p.SwapUsed))
			ymax = math.Max(ymax, float64(p.WorkerRSS))
			ymax = math.Max(ymax, float64(p.GPUUsed))
			pl.hasGPU = pl.hasGPU || p.GPUUsed > 0
			pl.hasSwap = pl.hasSwap || p.SwapUsed > 0 || p.SwapFree > 0
			pl.hasRSS = pl.hasRSS || p.WorkerRSS > 0
		}
	}
	if ymax <= 0 {
		return false
	}
	pl.ystep, pl.yunit, pl.ydiv = niceBytes(ymax * 1.06 / 5)
	pl.ytop = math.Ceil(ymax*1.06/pl.ystep) * pl.ystep
	// The RAM size line is drawn only where it falls inside the plot.
	pl.sizeShown = pl.hasRAM
	for _, s := range pl.spans {
		if s.a.Memory == nil {
			continue
		}
		for _, q := range s.a.Memory.Samples {
			if float64(pl.ramOf(q)) > pl.ytop {
				pl.sizeShown = false
			}
		}
	}
	return true
}

// bands shades each attempt's stretch of time, labelled with its stage
// and outcome.
func (pl *plot) bands() {
	for i, s := range pl.spans {
		fill := colBandA
		if i%2 == 1 {
			fill = colBandB
		}
		pl.p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, pl.X(s.x0), mt, math.Max(pl.X(s.x1)-pl.X(s.x0), 1), ph, fill)
		label := s.a.Stage
		if s.a.Part > 0 {
			label = fmt.Sprintf("%s part %d", s.a.Stage, s.a.Part)
		}
		oc := strings.ReplaceAll(string(s.a.Outcome), "_", " ")
		col := "#1a7f37"
		if tone(string(s.a.Outcome)) != "good" {
			col = "#b42318"
		}
		w := pl.X(s.x1) - pl.X(s.x0)
		if w > 60 {
			pl.p(`<text x="%.1f" y="%.1f" font-weight="600" fill="#24292f">%s <tspan fill="%s" font-weight="400">· %s</tspan></text>`, pl.X(s.x0)+6, mt-8, esc(label), col, esc(oc))
		}
		pl.p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#8c959f" stroke-width="1"/>`, pl.X(s.x0), mt-20, pl.X(s.x0), mt+ph)
		if (s.a.Memory == nil || len(s.a.Memory.Samples) == 0) && w > 120 {
			pl.p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" font-style="italic">no memory samples for this attempt</text>`, (pl.X(s.x0)+pl.X(s.x1))/2, mt+ph/2, colAxisLabel)
		}
	}
}

// axes draws the grid, the ticks and their labels.
func (pl *plot) axes() {
	for v := 0.0; v <= pl.ytop+pl.ystep/2; v += pl.ystep {
		pl.p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="0.6"/>`, ml, pl.Y(v), ml+pw, pl.Y(v), colGrid)
		pl.p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text>`, ml-6, pl.Y(v)+4, colAxisLabel, trimNum(v/pl.ydiv)+" "+pl.yunit)
	}
	xstep := niceTime(pl.total / 8)
	for t := 0.0; t <= pl.total+1; t += xstep {
		pl.p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, pl.X(t), mt+ph, pl.X(t), mt+ph+5, colAxisLabel)
		pl.p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`, pl.X(t), mt+ph+18, colAxisLabel, timeLabel(t, xstep))
	}
	pl.p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">time since the first attempt started</text>`, ml+pw, plotH-4, colAxisLabel)
	pl.p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#57606a" stroke-width="1"/>`, ml, mt+ph, ml+pw, mt+ph)
}

// series draws one attempt's memory: RAM and swap used, the guard's kill
// line, the worker's RSS and GPU memory.
func (pl *plot) series(s span) {
	m := s.a.Memory
	if m == nil || len(m.Samples) == 0 {
		return
	}
	var ram, top, rss, gpu, limit, size []string
	for _, q := range m.Samples {
		x := pl.X(s.x0 + float64(q.AtMs))
		if mtot := pl.ramOf(q); mtot > 0 {
			used := float64(mtot - q.MemAvailable)
			ram = append(ram, pt(x, pl.Y(used)))
			top = append(top, pt(x, pl.Y(used+float64(q.SwapUsed))))
			size = append(size, pt(x, pl.Y(float64(mtot))))
			if m.FloorBytes > 0 {
				limit = append(limit, pt(x, pl.Y(float64(mtot+q.SwapUsed+q.SwapFree-m.FloorBytes))))
			}
		} else {
			top = append(top, pt(x, pl.Y(float64(q.SwapUsed))))
		}
		rss = append(rss, pt(x, pl.Y(float64(q.WorkerRSS))))
		gpu = append(gpu, pt(x, pl.Y(float64(q.GPUUsed))))
	}
	xa, xb := pl.X(s.x0+float64(m.Samples[0].AtMs)), pl.X(s.x0+float64(m.Samples[len(m.Samples)-1].AtMs))
	base := pl.Y(0)
	if pl.hasRAM {
		// Swap used, stacked on RAM used; then RAM used.
		pl.p(`<polygon points="%s %s" fill="%s" stroke="none"/>`, strings.Join(top, " "), strings.Join(reverse(ram), " "), colSwapFill)
		pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(top, " "), colSwapLine)
		pl.p(`<polygon points="%s %s %s" fill="%s" stroke="none"/>`, pt(xa, base), strings.Join(ram, " "), pt(xb, base), colRAMFill)
		pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(ram, " "), colRAMLine)
		if pl.sizeShown {
			pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1" stroke-dasharray="2 3"/>`, strings.Join(size, " "), colRAMSize)
		}
	} else {
		pl.p(`<polygon points="%s %s %s" fill="%s" stroke="none"/>`, pt(xa, base), strings.Join(top, " "), pt(xb, base), colSwapFill)
	}
	if len(limit) > 0 {
		pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="7 4"/>`, strings.Join(limit, " "), colLimit)
	}
	if pl.hasRSS {
		pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="5 3"/>`, strings.Join(rss, " "), colRSS)
	}
	if pl.hasGPU {
		pl.p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(gpu, " "), colGPU)
	}
}

// kills marks where the guard (or the kernel) killed a worker.
func (pl *plot) kills() {
	for _, s := range pl.spans {
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
		x := pl.X(at)
		pl.p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`, x, mt, x, mt+ph, colLimit)
		pl.p(`<circle cx="%.1f" cy="%.1f" r="9" fill="%s"/><path d="M%.1f %.1fl8 8m0 -8l-8 8" stroke="#ffffff" stroke-width="2.2"/>`, x, mt+12, colLimit, x-4, mt+8)
		// The label stays inside its attempt's band, left of the mark, so
		// the marks of neighbouring attempts never write over each other;
		// a narrow band gets only the time.
		label := what + " at " + dur(int64(at-s.x0))
		room := x - 14 - pl.X(s.x0)
		if room < 7*float64(len(label)) {
			label = dur(int64(at - s.x0))
		}
		if room >= 7*float64(len(label)) {
			pl.p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="%s" font-weight="600">%s</text>`, x-14, mt+16, colLimit, label)
		}
	}
}

// legend names the series drawn, in HTML so it wraps, and the guard's
// floor.
func (pl *plot) legend() {
	pl.b.WriteString(`<div class="legend">`)
	sw := func(kind, col, text string) {
		pl.p(`<span><i class="sw %s" style="--c:%s"></i>%s</span>`, kind, col, text)
	}
	if pl.hasRAM {
		sw("area", colRAMFill, "RAM used (total − MemAvailable)")
		if pl.hasSwap {
			sw("area", colSwapFill, "swap used (stacked on RAM)")
		}
		if pl.sizeShown {
			sw("dot", colRAMSize, "RAM size")
		}
	} else if pl.hasSwap {
		sw("area", colSwapFill, "swap used")
	}
	if pl.hasLimit {
		sw("dash", colLimit, "guard's kill line: RAM + swap − floor")
	}
	if pl.hasRSS {
		sw("dash", colRSS, "worker RSS")
	}
	if pl.hasGPU {
		sw("line", colGPU, "GPU / unified memory used")
	}
	for _, s := range pl.spans {
		if m := s.a.Memory; m != nil && (m.Killed || m.CgroupOOM) {
			sw("mark", colLimit, "OOM kill")
			break
		}
	}
	pl.b.WriteString(`</div>`)
	for _, s := range pl.spans {
		if m := s.a.Memory; m != nil && m.FloorBytes > 0 {
			pl.p(`<p class="note">The memory guard stops the build when MemAvailable + SwapFree falls below its floor of %s: that is when the stack of RAM and swap used reaches the red dashed line.</p>`, bytesize.Format(m.FloorBytes))
			break
		}
	}
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
