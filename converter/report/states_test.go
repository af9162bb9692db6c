package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
)

// nanoDeviceJSON is a Jetson Nano's device diagnosis, as daemon/sysinfo
// writes it, with the recommendations it makes.
const nanoDeviceJSON = `{"platform":"jetson-nano","mem_total":4154654720,"mem_available":2906477107,"swap_total":2147483648,"swap_free":2147483648,
"swaps":[{"path":"/var/lib/trtd/swap/trtd.swap","type":"file","size":2147483648,"used":0,"priority":-1,"medium":"sd"}],
"jetson":{"model":"NVIDIA Jetson Nano Developer Kit","soc":"tegra210","l4t":"32.7.4","jetpack":"4.6.4","compute_capability":"5.3"},
"gpu":{"name":"NVIDIA Tegra X1","mem_total":4154654720,"mem_used":512000000,"unified":true,"compute_capability":"5.3"},
"cgroup":{"version":1,"memory_max":-1},"tensorrt":"8.2.1","desktop":["gnome-shell","Xorg"],
"swap_dir":"/var/lib/trtd/swap","swap_dir_medium":"sd"}`

// rampSamples is a memory timeline that climbs to the guard's kill line.
func rampSamples(n int, gpu bool) []Sample {
	var s []Sample
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		x := Sample{AtMs: int64(i) * 250, MemTotal: 4154654720,
			MemAvailable: int64((2800 - 2600*f) * (1 << 20)), SwapUsed: int64(900 * f * (1 << 20)), SwapFree: int64((2048 - 900*f) * (1 << 20)),
			WorkerRSS: int64((250 + 2300*f) * (1 << 20))}
		if gpu {
			x.GPUUsed = int64((100 + 1200*f) * (1 << 20))
		}
		s = append(s, x)
	}
	return s
}

func killed(stage string, t0 time.Time, n int, s protocol.Settings) Attempt {
	smp := rampSamples(n, true)
	last := smp[len(smp)-1]
	return Attempt{Stage: stage, Kind: "build", Settings: s, Start: t0, DurationMs: last.AtMs, Outcome: protocol.ClassOutOfMemory,
		Reason: "the memory guard stopped the build: MemAvailable+SwapFree fell below the 192 MiB floor", ExitCode: -1, Signal: "killed",
		LogTail: []string{"[11/30/2026-10:02:11] [I] [TRT] [MemUsageChange] Init cuDNN: CPU +241, GPU +384, now: CPU 1461, GPU 2712 (MiB)"},
		Memory: &Timeline{IntervalMs: 250, FloorBytes: 192 << 20, Samples: smp, Peak: last, Killed: true,
			KillReason: "MemAvailable+SwapFree below the floor", KilledAtMs: last.AtMs, SwapUsedDelta: last.SwapUsed, SwapVerdict: "swap was used: 900 MiB paged out"}}
}

var nanoRecs = []string{
	"A desktop session is running (gnome-shell, Xorg): stopping it frees about 800 MB for builds. Now: sudo systemctl isolate multi-user.target; for good: sudo systemctl set-default multi-user.target.",
	"Swap is on the SD card (trtd's swap directory /var/lib/trtd/swap): it is slow and wears the card; an NVMe or USB 3 disk is better if you have one.",
}

// stateReports are the report states docs/REPORTS.md shows, as the daemon
// writes them (Complete applied).
func stateReports() map[string]*Report {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	base := func(name, outcome string) *Report {
		return &Report{Schema: SchemaVersion, Tool: Tool{"trtd", "1.0.0"}, Generated: t0.Add(20 * time.Minute), Job: "20261130T100000-" + name[:4],
			Model: Model{Name: name + ".onnx", SHA256: strings.Repeat("5e", 32), Size: 12 << 20,
				Summary: &onnx.Summary{Producer: onnx.Producer{Name: "pytorch", Version: "1.10.0"}, Opset: map[string]int64{"": 13}, NodeCount: 233,
					Initializers: onnx.InitStats{Count: 127, Bytes: 12582912}, Inputs: []onnx.ValueInfo{input("images", 1, 3, 640, 640)}}},
			Outcome: outcome, Device: devJSON(nanoDeviceJSON), Attempts: []Attempt{},
			Builder:         &protocol.Builder{Backend: "trtexec", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"},
			Recommendations: append([]string(nil), nanoRecs...),
			Plan: &Plan{Start: "fast", SwapBytes: 2 << 30, Stages: []PlanStage{{Name: "fast", PeakBytes: 3300 << 20}, {Name: "lean", PeakBytes: 2100 << 20},
				{Name: "minimal", PeakBytes: 1500 << 20}}}}
	}
	lvl := 3
	fast := protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024, OptimizationLevel: &lvl, TimingCache: true}
	lean := protocol.Settings{Precision: "fp16", WorkspaceMiB: 256, TacticSources: []string{"cublas", "jit_convolutions"}, TimingCache: true}
	minimal := protocol.Settings{Precision: "fp16", WorkspaceMiB: 64, TacticSources: []string{}, TimingCache: true}

	guard := base("yolov5s", OutcomeBuilt)
	ok := rampSamples(200, true)
	for i := range ok {
		ok[i].MemAvailable += 900 << 20
		ok[i].SwapUsed /= 2
		ok[i].WorkerRSS -= int64(i) * (5 << 20)
	}
	guard.Attempts = []Attempt{killed("fast", t0, 160, fast),
		{Stage: "lean", Kind: "build", Settings: lean, Start: t0.Add(45 * time.Second), DurationMs: 50000, Outcome: protocol.ClassOK,
			Memory:     &Timeline{IntervalMs: 250, FloorBytes: 192 << 20, Samples: ok, Peak: ok[len(ok)-1], SwapVerdict: "swap was used: 450 MiB paged out"},
			Validation: &protocol.Validation{Runs: 20, P50Ms: 41.2, P99Ms: 44.9, DeviceMemUsed: 61 << 20}}}
	guard.Engine = &Engine{File: "yolov5s.engine", Bytes: 17 << 20, SHA256: strings.Repeat("c4", 32), Stage: "lean"}
	guard.Portability = "This engine runs only with TensorRT 8.2.1 on a GPU of compute capability 5.3 (NVIDIA Tegra X1). Rebuild it after a JetPack or TensorRT upgrade; an engine cannot be built for a Jetson on another kind of GPU."

	oom := base("detr-r50", OutcomeFailed)
	oom.Model.Summary = &onnx.Summary{Producer: onnx.Producer{Name: "pytorch", Version: "1.10.0"}, Opset: map[string]int64{"": 13}, NodeCount: 1812,
		Initializers: onnx.InitStats{Count: 351, Bytes: 166723584}, Inputs: []onnx.ValueInfo{input("images", -1, 3, -1, -1)}}
	oom.Reason = "every stage ran out of memory"
	oom.Model.Size = 160 << 20
	oom.Attempts = []Attempt{killed("fast", t0, 120, fast), killed("lean", t0.Add(40*time.Second), 150, lean), killed("minimal", t0.Add(90*time.Second), 180, minimal)}

	unsup := base("pointpillars", OutcomeFailed)
	unsup.Reason = "the ONNX parser rejected the model: node 142 (op GridSample, name \"bev_sampler\")"
	unsup.Attempts = []Attempt{{Stage: "fast", Kind: "build", Settings: fast, Start: t0, DurationMs: 6200, Outcome: protocol.ClassUnsupportedModel,
		Reason: unsup.Reason, ExitCode: 1, LogTail: []string{"[E] [TRT] ModelImporter.cpp:773: While parsing node number 142 [GridSample -> \"bev\"]:",
			"[E] [TRT] ModelImporter.cpp:776: --- End node ---", "[E] [TRT] ModelImporter.cpp:779: ERROR: builtin_op_importers.cpp:4870 In function importFallbackPluginImporter: [8] Assertion failed: creator && \"Plugin not found, are the plugin name, version, and namespace correct?\""},
		Memory: &Timeline{IntervalMs: 250, FloorBytes: 192 << 20, Samples: rampSamples(24, false)[:25]}}}
	for i := range unsup.Attempts[0].Memory.Samples {
		s := &unsup.Attempts[0].Memory.Samples[i]
		s.MemAvailable, s.SwapUsed, s.WorkerRSS = 2800<<20-int64(i)*(12<<20), 0, 200<<20+int64(i)*(12<<20)
	}
	unsup.Attempts[0].Memory.Peak = unsup.Attempts[0].Memory.Samples[24]
	unsup.Attempts[0].Memory.SwapVerdict = "swap was not used"

	wait := base("resnet50", OutcomeBuilderUnavailable)
	wait.Builder, wait.Plan = nil, nil
	wait.Reason = "trtexec not found: looked for /usr/src/tensorrt/bin/trtexec and trtexec on PATH"
	wait.Waiting = &Waiting{Missing: wait.Reason, NextRetry: t0.Add(10 * time.Minute), WouldDo: []string{
		"stage fast (build): precision fp16, workspace 1024 MiB, swap ensure", "stage lean (build): precision fp16, workspace 256 MiB, swap ensure",
		"stage minimal (build): precision fp16, workspace 64 MiB, swap max"}}
	wait.KeptModel = "/var/lib/trtd/state/jobs/20261130T100000-resn/model/resnet50.onnx"

	rej := &Report{Schema: SchemaVersion, Tool: Tool{"trtd", "1.0.0"}, Generated: t0, Model: Model{Name: "mobilenet.onnx", Size: 7 << 20},
		Outcome: OutcomeRejected, Attempts: []Attempt{}, KeptModel: "/var/lib/trtd/inbox/mobilenet.onnx",
		Reason:          "mobilenet.onnx is not a complete ONNX model: field 7 (graph) runs past the end of the file at byte 7340032 (truncated upload?)",
		Recommendations: []string{"The file was left untouched in the inbox. If an upload is still in progress it is picked up once it completes; otherwise replace it with a complete ONNX model."}}

	reused := base("yolov5s-copy", OutcomeReused)
	reused.Attempts, reused.Engine, reused.Portability = guard.Attempts, &Engine{File: "yolov5s-copy.engine", Bytes: 17 << 20, SHA256: strings.Repeat("c4", 32), Stage: "lean"}, guard.Portability
	reused.Reuse = &Reuse{FromJob: guard.Job, CacheKey: strings.Repeat("9a", 32), Built: guard.Generated}

	out := map[string]*Report{"built-after-guard-kill": guard, "all-stages-oom": oom, "unsupported-op": unsup,
		"waiting-for-builder": wait, "rejected-upload": rej, "reused": reused}
	for _, r := range out {
		r.Complete()
	}
	return out
}

// Every state has the sections a person needs: the outcome, what to do
// next, and the memory plot wherever an attempt ran.
func TestReportStatesHaveTheirSections(t *testing.T) {
	for name, r := range stateReports() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := HTML(&b, r); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			ran := len(r.Attempts) > 0
			if strings.Contains(page, `<svg class="plot"`) != ran {
				t.Errorf("plot drawn = %v, attempts ran = %v", !ran, ran)
			}
			if !strings.Contains(page, `id="recommendations"`) {
				t.Error("no recommendation section")
			}
			if strings.Contains(page, NoTensorRTAdvice) && r.Builder != nil {
				t.Error("a report whose build found TensorRT says TensorRT was not found")
			}
		})
	}
}

// TestReportStatesInChromium lays each state out in headless Chromium, at
// a desktop and a narrow (500 px, headless Chromium's smallest) width: nothing may overflow the page or its card,
// the plot must be drawn where an attempt ran and the recommendations must
// be there. With -update it writes the screenshots docs/REPORTS.md links
// (docs/images/report-<state>.png).
func TestReportStatesInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	probe := `<script>(function(){var o=[];var w=document.documentElement.clientWidth;
document.querySelectorAll('main *').forEach(function(e){var r=e.getBoundingClientRect();if(r.width>0&&(r.right>w+1||r.left<-1)&&!e.closest('pre,.scroll')){o.push(e.tagName+'#'+(e.id||'')+'.'+e.className+' '+Math.round(r.left)+'..'+Math.round(r.right))}});
document.querySelectorAll('section').forEach(function(s){if(s.scrollWidth>s.clientWidth+1){o.push('section#'+s.id+' content '+s.scrollWidth+' > '+s.clientWidth)}});
var p=document.querySelector('svg.plot'),pr=p?p.getBoundingClientRect():{width:0,height:0};
document.body.setAttribute('data-probe',JSON.stringify({overflow:o.slice(0,8),scrollW:document.documentElement.scrollWidth,plotW:pr.width,plotH:pr.height,
recs:!!document.getElementById('recommendations'),pageH:document.documentElement.scrollHeight}));})();</script>`
	for name, r := range stateReports() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := HTML(&b, r); err != nil {
				t.Fatal(err)
			}
			page := filepath.Join(dir, name+".html")
			os.WriteFile(page, b.Bytes(), 0o644)
			probed := filepath.Join(dir, name+".probe.html")
			os.WriteFile(probed, []byte(strings.Replace(b.String(), "</body>", probe+"</body>", 1)), 0o644)
			var pageH float64
			for _, width := range []int{1100, 500} {
				dom := runChromium(t, bin, append(chromiumArgs(filepath.Join(dir, fmt.Sprintf("p-%s-%d", name, width))),
					fmt.Sprintf("--window-size=%d,900", width), "--dump-dom", "file://"+probed)...)
				m := regexp.MustCompile(`data-probe="([^"]*)"`).FindSubmatch(dom)
				if m == nil {
					t.Fatalf("the probe did not run at %d px", width)
				}
				var got struct {
					Overflow     []string
					ScrollW      float64
					PlotW, PlotH float64
					Recs         bool
					PageH        float64
				}
				js := strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(string(m[1]))
				if err := json.Unmarshal([]byte(js), &got); err != nil {
					t.Fatalf("probe: %v: %s", err, js)
				}
				if got.ScrollW > float64(width) || len(got.Overflow) > 0 {
					t.Errorf("%d px: page %.0f px wide; overflowing: %q", width, got.ScrollW, got.Overflow)
				}
				if ran := len(r.Attempts) > 0; ran != (got.PlotW > 0) || (ran && got.PlotH < float64(width)/5) {
					t.Errorf("%d px: attempts ran = %v, plot %.0fx%.0f px", width, ran, got.PlotW, got.PlotH)
				}
				if !got.Recs {
					t.Errorf("%d px: no recommendation section laid out", width)
				}
				if width == 1100 {
					pageH = got.PageH
				}
			}
			if *update {
				shot := filepath.Join("..", "..", "docs", "images", "report-"+name+".png")
				os.MkdirAll(filepath.Dir(shot), 0o755)
				runChromium(t, bin, append(chromiumArgs(filepath.Join(dir, "shot-"+name)), fmt.Sprintf("--window-size=1100,%d", int(pageH)+10),
					"--screenshot="+shot, "file://"+page)...)
			}
		})
	}
}
