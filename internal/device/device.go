// Package device holds the device diagnosis as data: memory and swap,
// the Jetson board, the GPU and the daemon's cgroup limits. daemon/sysinfo
// fills it; reports carry it typed.
package device

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/trtd/trtd/internal/bytesize"
)

// Device is the diagnosis.
type Device struct {
	Hostname     string       `json:"-"`
	MemTotal     int64        `json:"mem_total"`
	MemAvailable int64        `json:"mem_available"`
	SwapTotal    int64        `json:"swap_total"`
	SwapFree     int64        `json:"swap_free"`
	Swaps        []SwapDevice `json:"swaps"`
	Zram         []Zram       `json:"zram"`
	Jetson       *Jetson      `json:"jetson,omitempty"`
	GPU          *GPU         `json:"gpu,omitempty"`
	CGroup       CGroup       `json:"cgroup"`
	TensorRT     string       `json:"tensorrt,omitempty"`
	// TensorRTSource says where the version came from (library or dpkg).
	TensorRTSource string `json:"tensorrt_source,omitempty"`
	// Desktop lists running desktop-session processes.
	Desktop []string `json:"desktop,omitempty"`
	// SwapDir is where trtd would put its swapfile, and its medium.
	SwapDir       string `json:"swap_dir,omitempty"`
	SwapDirMedium string `json:"swap_dir_medium,omitempty"`
	HasNVMe       bool   `json:"has_nvme"`
	// ID is Fingerprint() and Kind is Platform(), filled by Collect.
	ID   string `json:"fingerprint"`
	Kind string `json:"platform"`
	// Notes list what could not be read, in plain words.
	Notes           []string `json:"notes,omitempty"`
	Recommendations []string `json:"recommendations"`
}

// SwapDevice is one active swap area.
type SwapDevice struct {
	Path     string `json:"path"`
	Type     string `json:"type"` // file | partition
	Size     int64  `json:"size"`
	Used     int64  `json:"used"`
	Priority int    `json:"priority"`
	// Medium: zram, nvme, sd, emmc, usb/sata disk ("disk"), or "" unknown.
	Medium string `json:"medium,omitempty"`
}

// Zram is one zram block device.
type Zram struct {
	Name      string `json:"name"`
	DiskSize  int64  `json:"disk_size"`
	OrigData  int64  `json:"orig_data"`
	ComprData int64  `json:"compr_data"`
	MemUsed   int64  `json:"mem_used"`
	Algorithm string `json:"algorithm,omitempty"`
	// Swap is true when the device is an active swap area.
	Swap     bool `json:"swap"`
	Priority int  `json:"priority,omitempty"`
}

// Jetson identifies a Jetson board.
type Jetson struct {
	Model             string `json:"model"`
	SoC               string `json:"soc,omitempty"`
	L4T               string `json:"l4t,omitempty"`
	JetPack           string `json:"jetpack,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
}

// GPU describes the GPU as far as can be seen without a CUDA context.
type GPU struct {
	Name              string `json:"name"`
	MemTotal          int64  `json:"mem_total"`
	MemUsed           int64  `json:"mem_used"`
	Unified           bool   `json:"unified"`
	Driver            string `json:"driver,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	// Source says where the memory figures came from.
	Source string `json:"source"`
}

// CGroup describes the daemon's own cgroup (the unit's limits).
type CGroup struct {
	Version int    `json:"version"` // 0 = no memory controller
	Path    string `json:"path,omitempty"`
	// MemoryMax and SwapMax are -1 when unlimited, 0 when unknown.
	MemoryMax      int64  `json:"memory_max"`
	SwapMax        int64  `json:"swap_max"`
	SwapAccounting bool   `json:"swap_accounting"`
	Problem        string `json:"problem,omitempty"`
}

// Fingerprint identifies what an engine built here is tied to, as far as
// the daemon can see without CUDA: board model, SoC / GPU and compute
// capability, L4T release and TensorRT version.
func (d *Device) Fingerprint() string {
	var parts []string
	if j := d.Jetson; j != nil {
		parts = append(parts, "jetson", j.Model, j.SoC, j.ComputeCapability, j.L4T)
	}
	if g := d.GPU; g != nil && !g.Unified {
		parts = append(parts, "gpu", g.Name, g.ComputeCapability, strconv.FormatInt(g.MemTotal>>30, 10)+"G")
	}
	parts = append(parts, "trt", d.TensorRT)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// Platform is the planner's platform key: nano, xavier, orin, thor,
// tx2, dgpu or cpu (no GPU seen).
func (d *Device) Platform() string {
	if j := d.Jetson; j != nil {
		return PlatformOfSoC(j.SoC)
	}
	if d.GPU != nil {
		return "dgpu"
	}
	return "cpu"
}

// WriteText writes the diagnosis for people.
func (d *Device) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("Memory")
	p("  RAM          %s total, %s available", bytesize.Format(d.MemTotal), bytesize.Format(d.MemAvailable))
	p("  swap         %s total, %s free", bytesize.Format(d.SwapTotal), bytesize.Format(d.SwapFree))
	for _, s := range d.Swaps {
		med := ""
		if s.Medium != "" {
			med = ", " + s.Medium
		}
		p("    %-34s %s%s, %s, %s used, priority %d", s.Path, s.Type, med, bytesize.Format(s.Size), bytesize.Format(s.Used), s.Priority)
	}
	if len(d.Swaps) == 0 {
		p("    (no swap devices)")
	}
	if len(d.Zram) > 0 {
		var size, orig, compr, used int64
		active := 0
		algs := map[string]bool{}
		for _, z := range d.Zram {
			size += z.DiskSize
			orig += z.OrigData
			compr += z.ComprData
			used += z.MemUsed
			if z.Swap {
				active++
			}
			if z.Algorithm != "" {
				algs[z.Algorithm] = true
			}
		}
		var al []string
		for a := range algs {
			al = append(al, a)
		}
		p("  zram         %d device(s) (%d as swap), %s, %s; holds %s compressed to %s, %s of RAM",
			len(d.Zram), active, bytesize.Format(size), strings.Join(al, "/"), bytesize.Format(orig), bytesize.Format(compr), bytesize.Format(used))
	} else {
		p("  zram         none")
	}
	if j := d.Jetson; j != nil {
		p("Board          %s", j.Model)
		p("  SoC          %s, compute capability %s", orUnknown(j.SoC), orUnknown(j.ComputeCapability))
		if j.JetPack != "" {
			p("  L4T          %s (JetPack %s)", j.L4T, j.JetPack)
		} else {
			p("  L4T          %s", orUnknown(j.L4T))
		}
	} else {
		p("Board          not a Jetson")
	}
	if g := d.GPU; g != nil {
		if g.Unified {
			p("GPU            %s: unified memory, %s in use of %s", g.Name, bytesize.Format(g.MemUsed), bytesize.Format(g.MemTotal))
		} else if g.MemTotal > 0 {
			p("GPU            %s: %s in use of %s", orUnknown(g.Name), bytesize.Format(g.MemUsed), bytesize.Format(g.MemTotal))
		} else {
			p("GPU            %s: memory unknown", orUnknown(g.Name))
		}
		extra := []string{"read from " + g.Source}
		if g.Driver != "" {
			extra = append(extra, "driver "+g.Driver)
		}
		if g.ComputeCapability != "" && !g.Unified {
			extra = append(extra, "compute capability "+g.ComputeCapability)
		}
		p("  %s", strings.Join(extra, ", "))
	} else {
		p("GPU            none found (no Jetson, no NVIDIA driver)")
	}
	if d.TensorRT != "" {
		p("TensorRT       %s (%s)", d.TensorRT, d.TensorRTSource)
	} else {
		p("TensorRT       not found")
	}
	cg := d.CGroup
	if cg.Version == 0 {
		p("cgroup         no memory controller usable: %s", cg.Problem)
	} else {
		sw := bytesize.Limit(cg.SwapMax)
		if !cg.SwapAccounting {
			sw = "not accounted"
		} else if cg.SwapMax == 0 {
			sw = "0 B"
		}
		p("cgroup         v%d %s: memory %s, swap %s", cg.Version, cg.Path, bytesize.Limit(cg.MemoryMax), sw)
	}
	if len(d.Desktop) > 0 {
		p("Desktop        running (%s)", strings.Join(d.Desktop, ", "))
	} else {
		p("Desktop        not running")
	}
	if d.SwapDir != "" {
		p("Swap dir       %s (%s)", d.SwapDir, orUnknown(d.SwapDirMedium))
	}
	p("Fingerprint    %s", d.Fingerprint())
	if len(d.Notes) > 0 {
		p("\nCould not read:")
		for _, n := range d.Notes {
			p("  - %s", n)
		}
	}
	p("\nRecommendations:")
	for i, r := range d.Recommendations {
		p("  %d. %s", i+1, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// PlatformOfSoC is the planner's platform key of a Jetson SoC ("tegra210"
// is "nano"); "jetson" for a SoC it does not know.
func PlatformOfSoC(soc string) string {
	switch soc {
	case "tegra210":
		return "nano"
	case "tegra186":
		return "tx2"
	case "tegra194":
		return "xavier"
	case "tegra234":
		return "orin"
	case "tegra264":
		return "thor"
	}
	return "jetson"
}
