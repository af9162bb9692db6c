// Package sysinfo diagnoses the device's memory and build environment
// without cgo and without a CUDA context: RAM and every swap device (with
// zram details), the Jetson model and L4T release, the TensorRT version the
// worker would load, the cgroup limits of the daemon's unit, and the GPU
// (unified memory from /proc/meminfo on Jetson; on a dGPU the driver's
// /proc files and nvidia-smi, since NVML needs cgo). Everything it could not
// read is listed in Notes, and Recommendations say in plain words what to do.
//
// Every root is injectable, and testdata holds fixture trees of a Jetson
// Nano 4 GB, Nano 2 GB, Orin Nano 8 GB, AGX Orin and an x86 box with a dGPU.
package sysinfo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/daemon/cgroup"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/device"
	"github.com/trtd/trtd/internal/l4t"
	"github.com/trtd/trtd/internal/meminfo"
)

// Roots are the directories read instead of the real ones ("" = real).
type Roots struct {
	Proc       string // /proc
	Sys        string // /sys
	Etc        string // /etc
	DeviceTree string // /proc/device-tree
	// Root prefixes everything else: /usr (TensorRT libraries),
	// /var/lib/dpkg/status, and the cgroup mounts found in mountinfo.
	Root string
}

// RootsAt returns roots for a fixture tree laid out like a real system.
func RootsAt(dir string) Roots {
	return Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Etc: filepath.Join(dir, "etc"),
		DeviceTree: filepath.Join(dir, "proc", "device-tree"), Root: dir}
}

func (r Roots) withDefaults() Roots {
	if r.Proc == "" {
		r.Proc = "/proc"
	}
	if r.Sys == "" {
		r.Sys = "/sys"
	}
	if r.Etc == "" {
		r.Etc = "/etc"
	}
	if r.DeviceTree == "" {
		r.DeviceTree = filepath.Join(r.Proc, "device-tree")
	}
	if r.Root == "" {
		r.Root = "/"
	}
	return r
}

// The diagnosis' types live in internal/device so reports can carry them
// typed; these aliases keep sysinfo's callers unchanged.
type (
	Device     = device.Device
	SwapDevice = device.SwapDevice
	Zram       = device.Zram
	Jetson     = device.Jetson
	GPU        = device.GPU
	CGroup     = device.CGroup
)

// Option customises Collect.
type Option func(*collector)

// WithNvidiaSMI replaces running nvidia-smi with args (nil run: never).
func WithNvidiaSMI(run func(ctx context.Context, args ...string) ([]byte, error)) Option {
	return func(c *collector) { c.smi = run; c.smiSet = true }
}

// WithSwapDir names the directory trtd would put its swapfile in.
func WithSwapDir(dir string) Option { return func(c *collector) { c.swapDir = dir } }

// WithOverheads sets the fixed costs used in the "what fits" estimate.
func WithOverheads(o config.Overheads) Option { return func(c *collector) { c.over = o } }

type collector struct {
	r       Roots
	smi     func(ctx context.Context, args ...string) ([]byte, error)
	smiSet  bool
	swapDir string
	over    config.Overheads
	d       *Device
	mounts  []mountEntry
}

func (c *collector) note(format string, a ...any) {
	c.d.Notes = append(c.d.Notes, fmt.Sprintf(format, a...))
}

// Collect diagnoses the device under r. Only an unreadable /proc/meminfo is
// an error; everything else missing becomes a note.
func Collect(ctx context.Context, r Roots, opts ...Option) (*Device, error) {
	c := &collector{r: r.withDefaults(), d: &Device{Swaps: []SwapDevice{}, Zram: []Zram{}},
		over: config.Default().Overheads}
	for _, o := range opts {
		o(c)
	}
	if !c.smiSet {
		c.smi = runNvidiaSMI
	}
	if err := c.meminfo(); err != nil {
		return nil, err
	}
	c.mounts = readMounts(filepath.Join(c.r.Proc, "self", "mountinfo"))
	c.swaps()
	c.zram()
	c.jetson()
	c.tensorRT()
	c.cgroup()
	c.gpu(ctx)
	c.desktop()
	c.storage()
	c.d.Recommendations = recommend(c.d, c.over)
	c.d.ID, c.d.Kind = c.d.Fingerprint(), c.d.Platform()
	return c.d, nil
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func (c *collector) meminfo() error {
	mi, err := meminfo.Read(c.r.Proc)
	if err != nil {
		return err
	}
	for _, k := range []string{"MemTotal", "MemAvailable"} {
		if !mi.Has(k) {
			return fmt.Errorf("%s: no %s line (kernel older than 3.14?)", filepath.Join(c.r.Proc, "meminfo"), k)
		}
	}
	c.d.MemTotal, c.d.MemAvailable, c.d.SwapTotal, c.d.SwapFree = mi.MemTotal, mi.MemAvailable, mi.SwapTotal, mi.SwapFree
	return nil
}

func (c *collector) swaps() {
	p := filepath.Join(c.r.Proc, "swaps")
	s, err := readFile(p)
	if err != nil {
		c.note("swap devices could not be listed: %v", err)
		return
	}
	for i, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) < 5 {
			continue
		}
		if f[1] == "(deleted)" {
			f = append(f[:1], f[2:]...)
		}
		size, _ := strconv.ParseInt(f[2], 10, 64)
		used, _ := strconv.ParseInt(f[3], 10, 64)
		prio, _ := strconv.Atoi(f[4])
		sd := SwapDevice{Path: f[0], Type: f[1], Size: size << 10, Used: used << 10, Priority: prio}
		if f[1] == "partition" {
			sd.Medium = c.medium(filepath.Base(f[0]))
		} else {
			sd.Medium = c.medium(c.deviceOf(f[0]))
		}
		c.d.Swaps = append(c.d.Swaps, sd)
	}
}

// medium classifies a block device name (partition or disk).
func (c *collector) medium(dev string) string {
	switch {
	case dev == "":
		return ""
	case strings.HasPrefix(dev, "zram"):
		return "zram"
	case strings.HasPrefix(dev, "nvme"):
		return "nvme"
	case strings.HasPrefix(dev, "mmcblk"):
		disk := regexp.MustCompile(`^(mmcblk\d+)`).FindString(dev)
		t, err := readFile(filepath.Join(c.r.Sys, "block", disk, "device", "type"))
		switch strings.TrimSpace(t) {
		case "SD":
			return "sd"
		case "MMC":
			return "emmc"
		}
		if err != nil {
			return "mmc"
		}
		return "mmc"
	case strings.HasPrefix(dev, "sd"), strings.HasPrefix(dev, "vd"), strings.HasPrefix(dev, "hd"):
		return "disk"
	case strings.HasPrefix(dev, "loop"):
		return "loop"
	}
	return ""
}

type mountEntry struct{ point, source string }

func readMounts(p string) []mountEntry {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read-only; a mount table cut short reads as fewer mounts
	var out []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 2 {
			continue
		}
		out = append(out, mountEntry{point: a[4], source: b[1]})
	}
	return out
}

// deviceOf returns the block device name holding path (longest mount).
func (c *collector) deviceOf(path string) string {
	best := mountEntry{}
	for _, m := range c.mounts {
		if (path == m.point || strings.HasPrefix(path, strings.TrimSuffix(m.point, "/")+"/")) && len(m.point) >= len(best.point) {
			best = m
		}
	}
	if !strings.HasPrefix(best.source, "/dev/") {
		return ""
	}
	return filepath.Base(best.source)
}

func (c *collector) zram() {
	ents, err := os.ReadDir(filepath.Join(c.r.Sys, "block"))
	if err != nil {
		c.note("block devices could not be listed: %v", err)
		return
	}
	prio := map[string]int{}
	for _, s := range c.d.Swaps {
		if s.Medium == "zram" {
			prio[filepath.Base(s.Path)] = s.Priority
		}
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "zram") {
			continue
		}
		dir := filepath.Join(c.r.Sys, "block", e.Name())
		z := Zram{Name: e.Name()}
		if s, err := readFile(filepath.Join(dir, "disksize")); err == nil {
			z.DiskSize, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		}
		if s, err := readFile(filepath.Join(dir, "mm_stat")); err == nil {
			f := strings.Fields(s)
			if len(f) >= 3 {
				z.OrigData, _ = strconv.ParseInt(f[0], 10, 64)
				z.ComprData, _ = strconv.ParseInt(f[1], 10, 64)
				z.MemUsed, _ = strconv.ParseInt(f[2], 10, 64)
			}
		}
		if s, err := readFile(filepath.Join(dir, "comp_algorithm")); err == nil {
			// "lzo [lz4] zstd": the bracketed one is in use.
			if m := regexp.MustCompile(`\[(\w+)\]`).FindStringSubmatch(s); m != nil {
				z.Algorithm = m[1]
			} else {
				z.Algorithm = strings.TrimSpace(s)
			}
		}
		z.Priority, z.Swap = prio[e.Name()]
		if z.DiskSize == 0 && !z.Swap {
			continue // an unconfigured zram device
		}
		c.d.Zram = append(c.d.Zram, z)
	}
}

var socNames = map[string][3]string{ // soc -> name, compute capability, architecture
	"tegra210": {"Tegra X1", "5.3", "Maxwell"},
	"tegra186": {"Tegra X2", "6.2", "Pascal"},
	"tegra194": {"Xavier", "7.2", "Volta"},
	"tegra234": {"Orin", "8.7", "Ampere"},
	"tegra264": {"Thor", "11.0", "Blackwell"},
}

// jetpackOf maps an L4T release to its JetPack.
var jetpackOf = map[string]string{
	"32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1", "32.6.1": "4.6",
	"32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5", "32.7.6": "4.6.6",
	"35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4",
	"35.6.1": "5.1.5", "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
}

func (c *collector) jetson() {
	model, err := readFile(filepath.Join(c.r.DeviceTree, "model"))
	if err != nil {
		return // not a device-tree board
	}
	model = strings.TrimSpace(strings.TrimRight(model, "\x00"))
	compat, _ := readFile(filepath.Join(c.r.DeviceTree, "compatible"))
	soc := socOf(compat)
	rel, relErr := readFile(filepath.Join(c.r.Etc, "nv_tegra_release"))
	if soc == "" && relErr != nil && !strings.Contains(strings.ToLower(model), "jetson") {
		return // some other device-tree board
	}
	j := &Jetson{Model: model, SoC: soc}
	if v, ok := socNames[soc]; ok {
		j.ComputeCapability = v[1]
	}
	if relErr != nil {
		c.note("L4T release unknown: %s/nv_tegra_release could not be read", c.r.Etc)
	} else if v, ok := l4t.Parse(rel); ok {
		j.L4T = v
		j.JetPack = jetpackOf[j.L4T]
	} else {
		c.note("L4T release unknown: %s/nv_tegra_release has no \"R<n> (release), REVISION: x.y\"", c.r.Etc)
	}
	c.d.Jetson = j
}

// socOf finds the Tegra SoC ("tegra210") in a device tree's compatible
// list, or "".
func socOf(compat string) string {
	soc := ""
	for _, s := range strings.Split(compat, "\x00") {
		if v, ok := strings.CutPrefix(s, "nvidia,tegra"); ok {
			soc = "tegra" + v
		}
	}
	return soc
}

// QuickPlatform names the platform the way the planner does (see
// Device.Platform) from the device tree and the NVIDIA driver alone,
// without the full diagnosis; "" when neither is found.
func QuickPlatform(r Roots) string {
	r = r.withDefaults()
	if compat, err := readFile(filepath.Join(r.DeviceTree, "compatible")); err == nil {
		if soc := socOf(compat); soc != "" {
			return device.PlatformOfSoC(soc)
		}
	}
	if _, err := os.Stat(filepath.Join(r.Proc, "driver", "nvidia", "version")); err == nil {
		return "dgpu"
	}
	return ""
}

func (c *collector) cgroup() {
	info := cgroup.Detect(cgroup.WithRoot(c.r.Root))
	cg := CGroup{Version: info.Version, SwapAccounting: info.SwapAccounting, Problem: info.Reason}
	if info.Version != 0 {
		cg.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(info.Dir, filepath.Clean(c.r.Root)), "/")
		limit := func(name string) int64 {
			s, err := readFile(filepath.Join(info.Dir, name))
			if err != nil {
				return 0
			}
			s = strings.TrimSpace(s)
			if s == "max" {
				return -1
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0
			}
			if n >= 1<<62 { // v1 "unlimited" is PAGE_COUNTER_MAX pages
				return -1
			}
			return n
		}
		if info.Version == 2 {
			cg.MemoryMax, cg.SwapMax = limit("memory.max"), limit("memory.swap.max")
		} else {
			cg.MemoryMax = limit("memory.limit_in_bytes")
			if ms := limit("memory.memsw.limit_in_bytes"); ms > 0 && cg.MemoryMax > 0 {
				cg.SwapMax = ms - cg.MemoryMax
			} else {
				cg.SwapMax = ms
			}
		}
	}
	c.d.CGroup = cg
}

// desktopProcs are process names of desktop sessions and what stopping the
// desktop frees (jetson-containers' setup guide: ~800 MB GNOME/Unity,
// ~250 MB LXDE).
var desktopProcs = map[string]string{
	"gnome-shell": "gnome", "unity-panel-ser": "gnome", "gdm3": "gnome", "gdm-x-session": "gnome",
	"Xorg": "x", "Xwayland": "x", "lightdm": "x", "sddm": "x", "plasmashell": "gnome",
	"lxsession": "lxde", "lxpanel": "lxde", "xfce4-session": "lxde", "lxqt-session": "lxde",
}

func (c *collector) desktop() {
	ents, err := os.ReadDir(c.r.Proc)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := readFile(filepath.Join(c.r.Proc, e.Name(), "comm"))
		if err != nil {
			continue
		}
		comm = strings.TrimSpace(comm)
		if _, ok := desktopProcs[comm]; ok && !seen[comm] {
			seen[comm] = true
			c.d.Desktop = append(c.d.Desktop, comm)
		}
	}
	sort.Strings(c.d.Desktop)
}

func (c *collector) storage() {
	ents, _ := os.ReadDir(filepath.Join(c.r.Sys, "block"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "nvme") {
			c.d.HasNVMe = true
		}
	}
	if c.swapDir != "" {
		c.d.SwapDir = c.swapDir
		c.d.SwapDirMedium = c.medium(c.deviceOf(c.swapDir))
	}
}
