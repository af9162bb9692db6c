package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/device"
)

// richSample is sampleReport with what a Jetson Nano run adds: the device
// diagnosis and a memory timeline for the successful attempt too (with
// GPU/unified memory figures).
func richSample() *Report {
	r := sampleReport()
	r.Device = &device.Device{Kind: "jetson-nano", MemTotal: 4154654720, MemAvailable: 3006477107, SwapTotal: 4294967296, SwapFree: 4294967296,
		Swaps: []device.SwapDevice{{Path: "/dev/zram0", Type: "partition", Size: 519634944, Priority: 5, Medium: "zram"},
			{Path: "/var/lib/trtd/swap/trtd.swap", Type: "file", Size: 2147483648, Priority: -1, Medium: "nvme"}},
		Jetson: &device.Jetson{Model: "NVIDIA Jetson Nano Developer Kit", SoC: "tegra210", L4T: "32.7.4", JetPack: "4.6.4", ComputeCapability: "5.3"},
		GPU:    &device.GPU{Name: "NVIDIA Tegra X1", MemTotal: 4154654720, MemUsed: 512000000, Unified: true, ComputeCapability: "5.3", Source: "unified"},
		CGroup: device.CGroup{Version: 2, MemoryMax: -1, SwapMax: -1}, TensorRT: "8.2.1", Desktop: []string{"gnome-shell", "Xorg"}}
	var s []Sample
	for i := 0; i <= 168; i++ {
		f := float64(i) / 168
		up := f * 1.6
		if up > 1 {
			up = 1
		}
		s = append(s, Sample{AtMs: int64(i) * 250, MemTotal: 4 << 30,
			MemAvailable: int64((2900 - 2300*up + 150*float64(i%5)/5) * (1 << 20)),
			SwapUsed:     int64((40 + 900*up) * (1 << 20)), SwapFree: int64((2048 - 40 - 900*up) * (1 << 20)),
			WorkerRSS: int64((300 + 1500*up) * (1 << 20)), GPUUsed: int64((100 + 800*up) * (1 << 20))})
	}
	r.Attempts[1].Memory = &Timeline{IntervalMs: 250, FloorBytes: 192 << 20, Samples: s,
		Peak: Sample{MemAvailable: 600 << 20, SwapUsed: 940 << 20, WorkerRSS: 1800 << 20, GPUUsed: 900 << 20}, SwapUsedDelta: 900 << 20,
		SwapVerdict: "swap was used: 900 MiB paged out"}
	for i := range r.Attempts[0].Memory.Samples {
		r.Attempts[0].Memory.Samples[i].GPUUsed = int64(150+40*i) << 20
	}
	return r
}

func TestHTMLGolden(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.report.html", b.Bytes())
}

func TestHTMLIsRegistered(t *testing.T) {
	for _, r := range Renderers {
		if r.Ext == ".report.html" {
			return
		}
	}
	t.Fatal("no .report.html renderer in Renderers")
}

// The page must open on a device without network access: nothing is
// fetched, nothing runs.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, richSample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href="} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must not load anything", bad)
		}
	}
	for _, want := range []string{"<svg class=\"plot\"", "engine built", "Tegra X1", "32.7.4", "gnome-shell", "guard killed the worker", "Stop the desktop"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHTMLEscapesUploadedNames(t *testing.T) {
	r := sampleReport()
	r.Model.Name = `<script>alert(1)</script>.onnx`
	r.Attempts[0].Stage = `"><b>x`
	r.Attempts[0].LogTail = []string{"</pre><script>x</script>"}
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script") || strings.Contains(b.String(), `"><b>x`) {
		t.Errorf("uploaded names reach the page unescaped")
	}
}

// Without samples there is no plot, and a sentence says why.
func TestHTMLWithoutTimeline(t *testing.T) {
	noSamples := sampleReport()
	noSamples.Attempts[0].Memory = nil
	reused := sampleReport()
	reused.Attempts, reused.Outcome, reused.Reuse = []Attempt{}, OutcomeReused, &Reuse{FromJob: "j1", CacheKey: "k"}
	waiting := sampleReport()
	waiting.Attempts, waiting.Outcome, waiting.Engine = []Attempt{}, OutcomeBuilderUnavailable, nil
	waiting.Waiting = &Waiting{Missing: "libnvinfer.so.8 not found", WouldDo: []string{"stage fast"}}
	rejected := &Report{Model: Model{Name: "x.onnx"}, Outcome: OutcomeRejected, Reason: "not an ONNX model"}
	for _, tc := range []struct {
		name string
		r    *Report
		want string
	}{
		{"no samples", noSamples, "recorded no samples"},
		{"reused", reused, "identical earlier build was reused"},
		{"waiting", waiting, "no builder is available"},
		{"rejected", rejected, "No build ran"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := HTML(&b, tc.r); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "<svg") {
				t.Error("a plot was drawn without samples")
			}
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("page lacks %q", tc.want)
			}
		})
	}
}

// chromium flags from the issue, plus a throw-away profile.
func chromiumArgs(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + profile}
}

func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs no external tools (Chromium)")
	}
	p := os.Getenv("TRTD_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("headless Chromium not found at %s (install Debian's chromium package, or set TRTD_CHROMIUM): %v", p, err)
	}
	return p
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// TestHTMLInChromium renders the page the way a person sees it: headless
// Chromium lays it out (measured through a probe script added to a copy of
// the page, never to the report itself) and takes a screenshot, whose
// pixels must show the plot's fills and the outcome banner.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	var b bytes.Buffer
	if err := HTML(&b, richSample()); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "resnet18.report.html")
	os.WriteFile(page, b.Bytes(), 0o644)

	// 1. Layout and visible text, as Chromium computed them.
	const width = 1100
	probe := `<script>(function(){var o=document.getElementById('outcome').getBoundingClientRect(),p=document.querySelector('svg.plot');
var pr=p?p.getBoundingClientRect():{width:0,height:0,top:0};
document.body.setAttribute('data-probe',JSON.stringify({outcomeText:document.getElementById('outcome').innerText,outcomeTop:o.top,outcomeH:o.height,
plotW:pr.width,plotH:pr.height,plotTop:pr.top,scrollW:document.documentElement.scrollWidth,pageH:document.documentElement.scrollHeight,
text:document.body.innerText}));})();</script>`
	probed := filepath.Join(dir, "probe.html")
	os.WriteFile(probed, []byte(strings.Replace(b.String(), "</body>", probe+"</body>", 1)), 0o644)
	dom := runChromium(t, bin, append(chromiumArgs(filepath.Join(dir, "p1")), fmt.Sprintf("--window-size=%d,900", width), "--dump-dom", "file://"+probed)...)
	m := regexp.MustCompile(`data-probe="([^"]*)"`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the probe did not run; DOM:\n%.2000s", dom)
	}
	var got struct {
		OutcomeText           string
		OutcomeTop, OutcomeH  float64
		PlotW, PlotH, PlotTop float64
		ScrollW, PageH        float64
		Text                  string
	}
	js := strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(string(m[1]))
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("probe: %v: %s", err, js)
	}
	if !strings.Contains(got.OutcomeText, "engine built") || !strings.Contains(got.OutcomeText, "stage lean") {
		t.Errorf("outcome banner reads %q", got.OutcomeText)
	}
	if got.OutcomeTop > 150 || got.OutcomeH < 30 {
		t.Errorf("outcome banner is not at the top of the page: top %.0f, height %.0f", got.OutcomeTop, got.OutcomeH)
	}
	if got.PlotW < 800 || got.PlotH < 250 {
		t.Errorf("plot laid out at %.0fx%.0f px, want at least 800x250", got.PlotW, got.PlotH)
	}
	if got.ScrollW > width {
		t.Errorf("page is %.0f px wide in a %d px window: it scrolls sideways", got.ScrollW, width)
	}
	for _, want := range []string{"Attempts", "out of memory", "Recommendations", "NVIDIA Jetson Nano Developer Kit", "RAM used", "guard killed the worker"} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("visible text lacks %q", want)
		}
	}

	// 2. The screenshot: the whole page at that width.
	height := int(got.PageH) + 20
	if height > 8000 {
		height = 8000
	}
	shot := filepath.Join(dir, "resnet18.report.png")
	runChromium(t, bin, append(chromiumArgs(filepath.Join(dir, "p2")), fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+shot, "file://"+page)...)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Count pixels of each plot fill inside the plot's rows, and of the
	// outcome banner's green in its rows (device pixels may be scaled).
	scale := float64(img.Bounds().Dy()) / float64(height)
	plotRows := [2]int{int(got.PlotTop * scale), int((got.PlotTop + got.PlotH) * scale)}
	bannerRows := [2]int{int(got.OutcomeTop * scale), int((got.OutcomeTop + got.OutcomeH) * scale)}
	ram := countColour(img, plotRows, colRAMFill)
	swp := countColour(img, plotRows, colSwapFill)
	green := countColour(img, bannerRows, "#dafbe1")
	t.Logf("screenshot %dx%d: RAM fill %d px, swap fill %d px, banner %d px", img.Bounds().Dx(), img.Bounds().Dy(), ram, swp, green)
	if ram < 40000 {
		t.Errorf("the plot shows %d pixels of RAM used, want a visible area (≥ 40000)", ram)
	}
	if swp < 5000 {
		t.Errorf("the plot shows %d pixels of swap used, want a visible area (≥ 5000)", swp)
	}
	if green < 20000 {
		t.Errorf("the outcome banner shows %d pixels of its green, want ≥ 20000", green)
	}
	if *update {
		data, _ := os.ReadFile(shot)
		os.WriteFile(filepath.Join("testdata", "sample.report.png"), data, 0o644)
		os.WriteFile(filepath.Join("testdata", "sample-rich.report.html"), b.Bytes(), 0o644)
	}
}

func countColour(img image.Image, rows [2]int, hex string) int {
	v, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	wr, wg, wb := int(v>>16), int(v>>8&0xff), int(v&0xff)
	near := func(a, b int) bool { return a-b <= 3 && b-a <= 3 }
	n := 0
	bd := img.Bounds()
	for y := max(rows[0], bd.Min.Y); y < min(rows[1], bd.Max.Y); y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(int(r>>8), wr) && near(int(g>>8), wg) && near(int(b>>8), wb) {
				n++
			}
		}
	}
	return n
}

// Where an int8 attempt's scales came from is on the page, as in the
// Markdown report, and only for attempts that say it.
func TestHTMLShowsInt8Source(t *testing.T) {
	r := sampleReport()
	r.Attempts[len(r.Attempts)-1].Int8 = Int8QDQ
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<p>int8: "+template.HTMLEscapeString(Int8QDQ)+".</p>"); n != 1 {
		t.Errorf("int8 line %d times on the page, want 1", n)
	}
}

// Int8Text: each backend decision has its own sentence, and nothing else
// has one.
func TestInt8Text(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range []protocol.Int8Source{protocol.Int8Calibrated, protocol.Int8FromCache, protocol.Int8QDQ, protocol.Int8Refused} {
		txt := Int8Text(s)
		if txt == "" || seen[txt] {
			t.Errorf("%q: %q", s, txt)
		}
		seen[txt] = true
	}
	for _, s := range []protocol.Int8Source{"", "dummy"} {
		if txt := Int8Text(s); txt != "" {
			t.Errorf("%q: %q, want none", s, txt)
		}
	}
}
