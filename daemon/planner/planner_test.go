package planner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/sysinfo"
)

func fixture(t *testing.T, name string) *sysinfo.Device {
	t.Helper()
	dir := filepath.Join("..", "..", "daemon", "sysinfo", "testdata", name)
	d, err := sysinfo.Collect(context.Background(), sysinfo.RootsAt(dir),
		sysinfo.WithNvidiaSMI(func(context.Context, ...string) ([]byte, error) {
			return os.ReadFile(filepath.Join(dir, "nvidia-smi.csv"))
		}))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const mb = 1 << 20

func names(p *Plan) (start string, skipped []string) {
	for _, s := range p.Stages {
		if s.Skip {
			skipped = append(skipped, s.Stage.Name)
		}
	}
	return p.StartName(), skipped
}

func TestPlans(t *testing.T) {
	resnet18 := ModelFacts{WeightBytes: 45 * mb, InputBytes: 600 << 10, SHA256: "r18"}
	big := ModelFacts{WeightBytes: 1500 * mb, InputBytes: 2 * mb, SHA256: "big"}
	huge := ModelFacts{WeightBytes: 10 << 30, InputBytes: 2 * mb, SHA256: "huge"}
	for _, tc := range []struct {
		name, device string
		m            ModelFacts
		mutate       func(*sysinfo.Device, *config.Config)
		start        string
		skipped      string // comma-joined
		swap         bool
		note         string
	}{
		{name: "small model on Nano 4GB starts fast", device: "nano-4gb", m: resnet18, start: "fast"},
		{name: "big model on Nano 4GB: fast hopeless, segmented fits now", device: "nano-4gb", m: big,
			start: "segmented", skipped: "fast,lean,minimal"},
		{name: "big model on Nano 4GB after the desktop is stopped", device: "nano-4gb", m: big,
			mutate: func(d *sysinfo.Device, _ *config.Config) { d.MemAvailable = 3300 * mb },
			start:  "lean", skipped: "fast", swap: true},
		{name: "huge model on Nano 2GB: all hopeless, the last runs anyway", device: "nano-2gb", m: huge,
			start: "segmented", skipped: "fast,lean,minimal", note: "last local attempt"},
		{name: "big model on AGX Orin starts fast", device: "agx-orin", m: big, start: "fast"},
		{name: "dGPU: huge model misses the 12 GiB GPU", device: "x86-dgpu", m: ModelFacts{WeightBytes: 9 << 30, InputBytes: 2 * mb},
			start: "segmented", skipped: "fast,lean,minimal"},
		{name: "skip_hopeless off keeps every stage", device: "nano-4gb", m: big,
			mutate: func(_ *sysinfo.Device, c *config.Config) { c.Planner.SkipHopeless = false; c.Planner.Enabled = true },
			start:  "fast", skipped: "", swap: true, note: "skip_hopeless is off"},
		{name: "planner disabled", device: "nano-2gb", m: huge,
			mutate: func(_ *sysinfo.Device, c *config.Config) { c.Planner.Enabled = false },
			start:  "fast", note: "disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fixture(t, tc.device)
			cfg := config.Default()
			if tc.mutate != nil {
				tc.mutate(d, cfg)
			}
			p := New(tc.m, d, cfg, nil)
			start, skipped := names(p)
			if start != tc.start || strings.Join(skipped, ",") != tc.skipped {
				for _, s := range p.Stages {
					t.Logf("%-9s dev %5d MiB host %5d MiB fits %v skip %v: %s", s.Stage.Name, s.DeviceBytes>>20, s.HostBytes>>20, s.FitsNow, s.Skip, s.Reason)
				}
				t.Errorf("start %s skipped %v; want %s, %s", start, skipped, tc.start, tc.skipped)
			}
			if tc.swap != (p.SwapBytes > 0) {
				t.Errorf("swap %d MiB, want swap: %v", p.SwapBytes>>20, tc.swap)
			}
			if p.SwapBytes > int64(cfg.Swap.MaxSize) || p.SwapBytes%(256*mb) != 0 {
				t.Errorf("swap %d not a 256 MiB step within max_size", p.SwapBytes)
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
			for _, s := range p.Stages {
				if s.Skip && s.Reason == "" {
					t.Errorf("stage %s skipped without a reason", s.Stage.Name)
				}
			}
		})
	}
}

func TestEstimateMonotone(t *testing.T) {
	m := ModelFacts{WeightBytes: 300 * mb, InputBytes: mb}
	over := sysinfo.DefaultOverheads("nano")
	var prev int64 = 1 << 62
	for _, st := range config.DefaultStages() {
		dev, host := Estimate(m, st, over, "8.2.1")
		if dev+host >= prev {
			t.Errorf("stage %s peak %d MiB is not below the previous stage's %d MiB", st.Name, (dev+host)>>20, prev>>20)
		}
		prev = dev + host
	}
	// Default tactic sources (fast names none): 8.x turns cuBLAS and cuDNN
	// on; 10.0 only cuBLASLt; 10.1+ none.
	fast := config.DefaultStages()[0]
	d8, _ := Estimate(m, fast, over, "8.2.1")
	d100, _ := Estimate(m, fast, over, "10.0.1")
	d103, _ := Estimate(m, fast, over, "10.3.0")
	if d100 >= d8 || d103 >= d100 {
		t.Errorf("default tactics: 8.2 %d, 10.0 %d, 10.3 %d MiB; want each below the one before", d8>>20, d100>>20, d103>>20)
	}
	if want := int64(over.CUBLAS) / 2; d100-d103 != want {
		t.Errorf("10.0 over 10.3: %d bytes, want cuBLASLt's %d (device half)", d100-d103, want)
	}
	// The empty set: nothing, on every release.
	minimal := config.DefaultStages()[2]
	m8, _ := Estimate(m, minimal, over, "8.2.1")
	m10, _ := Estimate(m, minimal, over, "10.0.1")
	if m8 != m10 {
		t.Errorf("minimal (no tactic sources) differs between 8.2 and 10.0: %d vs %d", m8, m10)
	}
}

func TestHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "planner.json")
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := fixture(t, "nano-4gb")
	m := ModelFacts{WeightBytes: 45 * mb, InputBytes: mb, SHA256: "abc"}
	h.Record(m.SHA256, d.Fingerprint(), "minimal", time.Now())
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	h2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := New(m, d, config.Default(), h2)
	if p.StartName() != "minimal" || !strings.Contains(strings.Join(p.Notes, " "), "worked for this model") {
		t.Errorf("history ignored: start %s notes %q", p.StartName(), p.Notes)
	}
	// Another device: no history.
	if p := New(m, fixture(t, "orin-nano-8gb"), config.Default(), h2); p.StartName() != "fast" {
		t.Errorf("history leaked to another device: %s", p.StartName())
	}
	os.WriteFile(path, []byte("{"), 0o644)
	if _, err := Load(path); !errors.Is(err, ErrHistoryCorrupt) {
		t.Errorf("corrupt: %v", err)
	}
}

func TestConfiguredOverheadsWin(t *testing.T) {
	d := fixture(t, "nano-4gb")
	m := ModelFacts{WeightBytes: 45 * mb, InputBytes: mb}
	cfg := config.Default()
	cfg.Overheads.CUDNN = 3 << 30 // a user who measured a huge cuDNN start-up
	p := New(m, d, cfg, nil)
	if p.StartName() == "fast" {
		t.Errorf("configured cuDNN overhead ignored: %+v", p.Stages[0])
	}
}
