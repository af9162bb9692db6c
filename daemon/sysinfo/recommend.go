package sysinfo

import (
	"fmt"
	"strings"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/bytesize"
)

// DefaultOverheads are the fixed memory costs of a TensorRT build per
// platform (research figures from TensorRT's [MemUsageChange] log lines:
// Nano/TensorRT 8.2 CUDA init ~200-230 MiB, cuBLAS ~160 MiB CPU + 150-280
// MiB GPU, cuDNN ~240 MiB CPU + 240-410 MiB GPU; Xavier NX/TensorRT 8.5
// cuDNN ~620 MiB CPU + 590 MiB GPU). On unified memory CPU and GPU figures
// add up. The dGPU row counts host plus device memory of the context.
func DefaultOverheads(platform string) config.Overheads {
	switch platform {
	case "nano", "tx2":
		return config.Overheads{CUDAContext: 230 << 20, CUDNN: 480 << 20, CUBLAS: 310 << 20, Builder: 150 << 20}
	case "xavier", "orin", "thor", "jetson":
		return config.Overheads{CUDAContext: 350 << 20, CUDNN: 1200 << 20, CUBLAS: 400 << 20, Builder: 200 << 20}
	case "dgpu":
		return config.Overheads{CUDAContext: 500 << 20, CUDNN: 600 << 20, CUBLAS: 400 << 20, Builder: 200 << 20}
	}
	return config.Default().Overheads
}

// EffectiveOverheads returns the configured overheads when the user changed
// them from the built-in defaults, else the platform's row.
func EffectiveOverheads(cfg config.Overheads, platform string) config.Overheads {
	if cfg != config.Default().Overheads {
		return cfg
	}
	return DefaultOverheads(platform)
}

func recommend(d *Device, over config.Overheads) []string {
	var r []string
	small := d.Jetson != nil || d.MemTotal < 16<<30
	if len(d.Desktop) > 0 && small {
		freed := "about 800 MB"
		lx := true
		for _, p := range d.Desktop {
			if desktopProcs[p] == "gnome" {
				lx = false
			}
		}
		if lx {
			freed = "about 250 MB"
		}
		r = append(r, fmt.Sprintf("A desktop session is running (%s): stopping it frees %s for builds. "+
			"Now: sudo systemctl isolate multi-user.target; for good: sudo systemctl set-default multi-user.target.",
			strings.Join(d.Desktop, ", "), freed))
	}
	var diskSwap, zram int64
	var sdSwap []string
	for _, s := range d.Swaps {
		if s.Medium == "zram" {
			zram += s.Size
			continue
		}
		diskSwap += s.Size
		if s.Medium == "sd" {
			sdSwap = append(sdSwap, s.Path)
		}
	}
	if d.SwapDirMedium == "sd" {
		sdSwap = append(sdSwap, "trtd's swap directory "+d.SwapDir)
	}
	if len(sdSwap) > 0 {
		if d.HasNVMe {
			r = append(r, fmt.Sprintf("Swap is on the SD card (%s): put it on the NVMe drive instead (swap.dir in /etc/trtd/config.toml); it is much faster and spares the card.",
				strings.Join(sdSwap, ", ")))
		} else {
			r = append(r, fmt.Sprintf("Swap is on the SD card (%s): it is slow and wears the card; an NVMe or USB 3 disk is better if you have one.",
				strings.Join(sdSwap, ", ")))
		}
	}
	if d.Jetson != nil && diskSwap == 0 {
		s := "There is no disk swap"
		if zram > 0 {
			s += fmt.Sprintf(", only zram (%s of compressed RAM, which competes with the build for the same RAM)", bytesize.MiB(zram))
		}
		r = append(r, s+". trtd adds a swapfile below zram's priority when a plan needs one (swap.enabled). "+
			"Swap only helps the CPU side of a build: on Jetson, GPU allocations share RAM and never go to swap.")
	}
	r = append(r, fitAdvice(d, over))
	if cg := d.CGroup; cg.Version == 0 {
		r = append(r, "No memory cgroup is usable ("+cg.Problem+"): builds run without a memory cap; the memory guard still kills a build before the board thrashes.")
	} else if cg.MemoryMax > 0 && cg.MemoryMax < d.MemTotal {
		r = append(r, fmt.Sprintf("trtd's service is capped at %s by its cgroup (MemoryMax=): builds cannot use more than that.", bytesize.MiB(cg.MemoryMax)))
	}
	if d.TensorRT == "" {
		if d.Jetson != nil {
			r = append(r, "TensorRT was not found: it comes with JetPack (sudo apt install nvidia-tensorrt). Until then trtd can inspect models but not build engines.")
		} else {
			r = append(r, "TensorRT was not found: install NVIDIA's libnvinfer packages (or set worker.backend = \"trtexec\" with a trtexec). Until then trtd can inspect models but not build engines.")
		}
	} else if j := d.Jetson; j != nil {
		r = append(r, fmt.Sprintf("Engines built here run only on %s-class boards (compute capability %s) with TensorRT %s: building on another machine works only on the same board kind and JetPack.",
			socOrModel(j), orUnknown(j.ComputeCapability), d.TensorRT))
	}
	return r
}

func socOrModel(j *Jetson) string {
	if v, ok := socNames[j.SoC]; ok {
		return v[0]
	}
	return j.Model
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// fitAdvice says what the memory free right now allows.
func fitAdvice(d *Device, over config.Overheads) string {
	over = EffectiveOverheads(over, d.Platform())
	avail := d.MemAvailable
	what := "available now"
	if g := d.GPU; g != nil && !g.Unified && g.MemTotal > 0 {
		avail = min(avail, g.MemTotal-g.MemUsed)
		what = "free on the GPU (and in RAM) now"
	}
	lean := int64(over.CUDAContext + over.Builder)
	libs := int64(over.CUDNN + over.CUBLAS)
	left := avail - lean
	if left <= 0 {
		return fmt.Sprintf("Only %s is %s: less than TensorRT's fixed start-up cost (~%s for the CUDA context and the builder). Free memory before building.",
			bytesize.MiB(avail), what, bytesize.MiB(lean))
	}
	// A build holds about 2.5 copies of FP16 weights (parser, network,
	// engine) plus workspace: see docs/MEMORY.md.
	leanW := (left - 64<<20) * 2 / 5
	fastW := (left - libs - 256<<20) * 2 / 5
	s := fmt.Sprintf("With %s %s, about %s is left after TensorRT's start-up (~%s for the CUDA context and builder): "+
		"enough for models of up to about %s of weights at the lean stage (no cuDNN/cuBLAS tactics)",
		bytesize.MiB(avail), what, bytesize.MiB(left), bytesize.MiB(lean), bytesize.MiB(max(leanW, 0)))
	if fastW > 0 {
		s += fmt.Sprintf(", or %s at the fast stage (cuDNN/cuBLAS take ~%s more)", bytesize.MiB(fastW), bytesize.MiB(libs))
	} else {
		s += fmt.Sprintf("; the fast stage (cuDNN/cuBLAS take ~%s more) does not fit", bytesize.MiB(libs))
	}
	return s + ". These are estimates."
}
