package sysinfo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var fixtures = []string{"nano-4gb", "nano-2gb", "orin-nano-8gb", "agx-orin", "x86-dgpu"}

// fakeSMI is a test double of nvidia-smi: it prints the fixture's
// nvidia-smi.csv, or fails as when the tool is missing.
func fakeSMI(dir string) Option {
	return WithNvidiaSMI(func(ctx context.Context, args ...string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, "nvidia-smi.csv"))
		if err != nil {
			return nil, errors.New("nvidia-smi not found")
		}
		return b, nil
	})
}

func collectFixture(t *testing.T, name string) *Device {
	t.Helper()
	dir := filepath.Join("testdata", name)
	d, err := Collect(context.Background(), RootsAt(dir), fakeSMI(dir), WithSwapDir("/var/lib/trtd/swap"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGolden(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			d := collectFixture(t, name)
			var txt bytes.Buffer
			if err := d.WriteText(&txt); err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			for ext, got := range map[string][]byte{".txt": txt.Bytes(), ".json": append(js, '\n')} {
				golden := filepath.Join("testdata", "golden", name+ext)
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./daemon/sysinfo -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", golden, got)
				}
			}
		})
	}
}

func TestFixtureFacts(t *testing.T) {
	has := func(list []string, sub string) bool {
		for _, s := range list {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	t.Run("nano-4gb", func(t *testing.T) {
		d := collectFixture(t, "nano-4gb")
		if d.Jetson == nil || d.Jetson.L4T != "32.7.1" || d.Jetson.JetPack != "4.6.1" || d.Jetson.ComputeCapability != "5.3" {
			t.Errorf("jetson %+v", d.Jetson)
		}
		if len(d.Zram) != 4 || !d.Zram[0].Swap || d.Zram[0].Priority != 5 || d.Zram[0].Algorithm != "lz4" {
			t.Errorf("zram %+v", d.Zram)
		}
		if d.TensorRT != "8.2.1" || !strings.HasPrefix(d.TensorRTSource, "library") {
			t.Errorf("tensorrt %q from %q", d.TensorRT, d.TensorRTSource)
		}
		if d.GPU == nil || !d.GPU.Unified || d.GPU.MemUsed != d.MemTotal-d.MemAvailable {
			t.Errorf("gpu %+v", d.GPU)
		}
		if d.CGroup.Version != 1 || d.CGroup.Path != "/sys/fs/cgroup/memory/system.slice/trtd.service" || d.CGroup.MemoryMax != -1 {
			t.Errorf("cgroup %+v", d.CGroup)
		}
		if !has(d.Recommendations, "frees about 800 MB") || !has(d.Recommendations, "no disk swap") {
			t.Errorf("recommendations: %q", d.Recommendations)
		}
		if d.SwapDirMedium != "sd" || !has(d.Recommendations, "SD card") {
			t.Errorf("swap dir on SD not flagged: %s %q", d.SwapDirMedium, d.Recommendations)
		}
		if d.Platform() != "nano" {
			t.Errorf("platform %s", d.Platform())
		}
	})
	t.Run("nano-2gb", func(t *testing.T) {
		d := collectFixture(t, "nano-2gb")
		if !has(d.Recommendations, "about 250 MB") {
			t.Errorf("LXDE desktop: %q", d.Recommendations)
		}
		if !has(d.Recommendations, "/var/swapfile") || has(d.Recommendations, "NVMe drive instead") {
			t.Errorf("SD swap without NVMe: %q", d.Recommendations)
		}
	})
	t.Run("orin-nano-8gb", func(t *testing.T) {
		d := collectFixture(t, "orin-nano-8gb")
		if d.Jetson.JetPack != "6.0" || d.Jetson.ComputeCapability != "8.7" || d.CGroup.Version != 2 || d.SwapDirMedium != "nvme" {
			t.Errorf("%+v %+v %s", d.Jetson, d.CGroup, d.SwapDirMedium)
		}
		if d.TensorRT != "8.6.2" {
			t.Errorf("tensorrt %s", d.TensorRT)
		}
	})
	t.Run("agx-orin", func(t *testing.T) {
		d := collectFixture(t, "agx-orin")
		if d.Jetson.JetPack != "5.1.2" || d.CGroup.MemoryMax != 48<<30 || !has(d.Recommendations, "capped at") {
			t.Errorf("%+v %+v %q", d.Jetson, d.CGroup, d.Recommendations)
		}
		if has(d.Recommendations, "desktop") {
			t.Errorf("headless board told to stop the desktop")
		}
	})
	t.Run("x86-dgpu", func(t *testing.T) {
		d := collectFixture(t, "x86-dgpu")
		g := d.GPU
		if d.Jetson != nil || g == nil || g.Unified || g.Name != "NVIDIA GeForce RTX 3060" || g.MemTotal != 12288<<20 ||
			g.MemUsed != 415<<20 || g.Driver != "550.120" || g.ComputeCapability != "8.6" {
			t.Errorf("gpu %+v", g)
		}
		if d.CGroup.MemoryMax != 24<<30 || d.CGroup.SwapMax != 0 || d.Platform() != "dgpu" {
			t.Errorf("cgroup %+v platform %s", d.CGroup, d.Platform())
		}
		// Without nvidia-smi the GPU is still named, and the gap is said.
		dir := filepath.Join("testdata", "x86-dgpu")
		d2, err := Collect(context.Background(), RootsAt(dir), WithNvidiaSMI(func(context.Context, ...string) ([]byte, error) {
			return nil, errors.New("nvidia-smi not found")
		}))
		if err != nil {
			t.Fatal(err)
		}
		if d2.GPU == nil || d2.GPU.Name != "NVIDIA GeForce RTX 3060" || d2.GPU.MemTotal != 0 || !has(d2.Notes, "GPU memory could not be read") {
			t.Errorf("no nvidia-smi: %+v %q", d2.GPU, d2.Notes)
		}
	})
}

func TestFingerprint(t *testing.T) {
	seen := map[string]string{}
	for _, name := range fixtures {
		fp := collectFixture(t, name).Fingerprint()
		if other, dup := seen[fp]; dup {
			t.Errorf("%s and %s share fingerprint %s", name, other, fp)
		}
		seen[fp] = name
	}
	a, b := collectFixture(t, "nano-4gb"), collectFixture(t, "nano-4gb")
	b.MemAvailable /= 2
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("fingerprint depends on free memory")
	}
	b.TensorRT = "8.2.2"
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("fingerprint ignores the TensorRT version")
	}
}

func TestMissingMeminfo(t *testing.T) {
	_, err := Collect(context.Background(), RootsAt(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "meminfo") {
		t.Errorf("got %v", err)
	}
}

func TestRealMachine(t *testing.T) {
	d, err := Collect(context.Background(), Roots{})
	if err != nil {
		t.Fatal(err)
	}
	if d.MemTotal <= 0 || d.MemAvailable <= 0 || len(d.Recommendations) == 0 {
		t.Errorf("%+v", d)
	}
	var b bytes.Buffer
	d.WriteText(&b)
	t.Log("\n" + b.String())
}
