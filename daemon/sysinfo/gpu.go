package sysinfo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trtd/trtd/internal/dpkg"
)

var libRe = regexp.MustCompile(`^libnvinfer\.so\.(\d+\.\d+\.\d+)$`)

func (c *collector) tensorRT() {
	var found []string
	for _, d := range []string{"usr/lib/aarch64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/local/cuda/lib64",
		"usr/local/cuda/targets/aarch64-linux/lib", "usr/lib64", "usr/local/lib", "usr/lib", "opt/tensorrt/lib"} {
		ents, err := os.ReadDir(filepath.Join(c.r.Root, d))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if m := libRe.FindStringSubmatch(e.Name()); m != nil {
				found = append(found, m[1]+"\x00/"+d+"/"+e.Name())
			}
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return versionLess(found[j], found[i]) })
		v, where, _ := strings.Cut(found[0], "\x00")
		c.d.TensorRT, c.d.TensorRTSource = v, "library "+where
		return
	}
	if v := dpkgVersion(filepath.Join(c.r.Root, "var/lib/dpkg/status"),
		"libnvinfer10", "libnvinfer8", "libnvinfer7", "tensorrt", "nvidia-tensorrt"); v != "" {
		c.d.TensorRT, c.d.TensorRTSource = v, "dpkg"
		c.note("TensorRT %s is installed per dpkg, but no libnvinfer.so.* was found in the usual library directories", v)
		return
	}
	c.note("TensorRT was not found (no libnvinfer.so.* and no libnvinfer package)")
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(strings.Split(a, "\x00")[0], "."), strings.Split(strings.Split(b, "\x00")[0], ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// dpkgVersion returns the upstream version of the first installed package
// of names in a dpkg status file ("8.2.1-1+cuda10.2" -> "8.2.1").
func dpkgVersion(status string, names ...string) string {
	versions, err := dpkg.Installed(status)
	if err != nil {
		return ""
	}
	for _, n := range names {
		if v, ok := versions[n]; ok {
			v, _, _ = strings.Cut(v, "-")
			if i := strings.IndexByte(v, ':'); i >= 0 {
				v = v[i+1:]
			}
			return v
		}
	}
	return ""
}

func (c *collector) gpu(ctx context.Context) {
	if j := c.d.Jetson; j != nil {
		name := "integrated GPU"
		if v, ok := socNames[j.SoC]; ok {
			name = fmt.Sprintf("%s (%s, sm_%s)", v[0], v[2], strings.ReplaceAll(v[1], ".", ""))
		}
		c.d.GPU = &GPU{Name: name, Unified: true, MemTotal: c.d.MemTotal, MemUsed: c.d.MemTotal - c.d.MemAvailable,
			ComputeCapability: j.ComputeCapability, Source: "/proc/meminfo (unified memory: the GPU shares RAM with the CPU)"}
		return
	}
	drv, derr := readFile(filepath.Join(c.r.Proc, "driver", "nvidia", "version"))
	infos, _ := filepath.Glob(filepath.Join(c.r.Proc, "driver", "nvidia", "gpus", "*", "information"))
	if derr != nil && len(infos) == 0 {
		return // no NVIDIA driver loaded: no GPU to report
	}
	g := &GPU{}
	if m := regexp.MustCompile(`Kernel Module\s+(?:for \S+\s+)?([\d.]+)`).FindStringSubmatch(drv); m != nil {
		g.Driver = m[1]
	}
	sort.Strings(infos)
	if len(infos) > 0 {
		s, _ := readFile(infos[0])
		for _, l := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(l, "Model:"); ok {
				g.Name = strings.TrimSpace(v)
			}
		}
		if len(infos) > 1 {
			c.note("%d NVIDIA GPUs found: the diagnosis describes the first", len(infos))
		}
	}
	if c.smi == nil {
		g.Source = "driver /proc files only"
		c.note("GPU memory could not be read: nvidia-smi is not used here (NVML needs cgo, which the daemon does not use)")
		c.d.GPU = g
		return
	}
	out, err := c.smi(ctx, "--query-gpu=name,memory.total,memory.used,driver_version,compute_cap", "--format=csv,noheader,nounits")
	if err != nil {
		g.Source = "driver /proc files only"
		c.note("GPU memory could not be read: nvidia-smi: %v (NVML needs cgo, which the daemon does not use)", err)
		c.d.GPU = g
		return
	}
	line := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	f := strings.Split(line, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if len(f) >= 3 {
		if g.Name == "" {
			g.Name = f[0]
		}
		tot, e1 := strconv.ParseInt(f[1], 10, 64)
		used, e2 := strconv.ParseInt(f[2], 10, 64)
		if e1 == nil && e2 == nil {
			g.MemTotal, g.MemUsed = tot<<20, used<<20
			g.Source = "nvidia-smi"
		} else {
			c.note("GPU memory could not be read: nvidia-smi said %q", line)
		}
		if len(f) >= 4 && g.Driver == "" {
			g.Driver = f[3]
		}
		if len(f) >= 5 && f[4] != "[N/A]" {
			g.ComputeCapability = f[4]
		}
	} else {
		c.note("GPU memory could not be read: unexpected nvidia-smi output %q", line)
	}
	c.d.GPU = g
}

// runNvidiaSMI runs nvidia-smi from the usual places (never from PATH alone).
func runNvidiaSMI(ctx context.Context, args ...string) ([]byte, error) {
	for _, p := range []string{"/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi", "/usr/sbin/nvidia-smi"} {
		if _, err := os.Stat(p); err == nil {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, p, args...).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) && len(ee.Stderr) > 0 {
					return nil, fmt.Errorf("%s: %v: %s", p, err, strings.TrimSpace(string(ee.Stderr)))
				}
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return out, nil
		}
	}
	return nil, errors.New("nvidia-smi not found")
}
