package sysinfo

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Human formats a byte count for people.
func Human(n int64) string {
	switch {
	case n < 0:
		return "unlimited"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// WriteText writes the diagnosis for people.
func (d *Device) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("Memory")
	p("  RAM          %s total, %s available", Human(d.MemTotal), Human(d.MemAvailable))
	p("  swap         %s total, %s free", Human(d.SwapTotal), Human(d.SwapFree))
	for _, s := range d.Swaps {
		med := ""
		if s.Medium != "" {
			med = ", " + s.Medium
		}
		p("    %-34s %s%s, %s, %s used, priority %d", s.Path, s.Type, med, Human(s.Size), Human(s.Used), s.Priority)
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
			len(d.Zram), active, Human(size), strings.Join(al, "/"), Human(orig), Human(compr), Human(used))
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
			p("GPU            %s: unified memory, %s in use of %s", g.Name, Human(g.MemUsed), Human(g.MemTotal))
		} else if g.MemTotal > 0 {
			p("GPU            %s: %s in use of %s", orUnknown(g.Name), Human(g.MemUsed), Human(g.MemTotal))
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
		sw := Human(cg.SwapMax)
		if !cg.SwapAccounting {
			sw = "not accounted"
		} else if cg.SwapMax == 0 {
			sw = "0 B"
		}
		p("cgroup         v%d %s: memory %s, swap %s", cg.Version, cg.Path, Human(cg.MemoryMax), sw)
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
