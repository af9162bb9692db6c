// Package selftest is `trtd selftest`: what a Jetson owner runs after
// installing trtd, and pastes into a bug report. It builds a tiny model
// that trtd carries (Model) through every backend present — the cgo worker
// matching the installed TensorRT, and trtexec — as the service's worker
// user, in a private temporary directory (never the inbox or outbox), and
// says what the board is, which worker runs and why, what the worker may
// open, whether swap, zram and the memory cgroup are usable, how long each
// build took and its peak memory, and PASS/FAIL per check with the fix.
package selftest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/daemon/workers"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/nodeaccess"
)

// Options are the selftest's inputs; every path is injectable.
type Options struct {
	Config *config.Config
	// Roots is the system tree sysinfo reads (zero: this machine).
	Roots sysinfo.Roots
	// WorkerEnv is the workers' environment (nil: this process's, as the
	// daemon passes its own); LD_LIBRARY_PATH in it is searched for TensorRT.
	WorkerEnv []string
	// LibDirs overrides where libnvinfer.so.N is looked for.
	LibDirs []string
	// DevDir holds the GPU device nodes ("": /dev).
	DevDir string
	// TempDir is where the private build directory is made ("": os.TempDir()).
	TempDir string
	// Trtexec is the trtexec binary ("": worker.trtexec, /usr/src/tensorrt/bin/trtexec, $PATH).
	Trtexec string
	// Timeout bounds each build (0: one minute).
	Timeout time.Duration
}

// Check is one PASS/FAIL line.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Backend is one build of the selftest model.
type Backend struct {
	Backend string `json:"backend"` // api | trtexec
	Worker  string `json:"worker"`
	Pass    bool   `json:"pass"`
	// Seconds is the worker's wall time, start to exit.
	Seconds float64 `json:"seconds"`
	// PeakRSS is the worker's peak resident memory in bytes (getrusage).
	PeakRSS     int64  `json:"peak_rss_bytes"`
	EngineBytes int64  `json:"engine_bytes,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Device is a GPU device node and whether the worker's identity opens it.
type Device struct {
	Path  string `json:"path"`
	Mode  string `json:"mode"`
	Owner string `json:"owner"` // user:group
	OK    bool   `json:"ok"`
	group string // the owning group, for the fix
}

// Identity is the user the worker runs as.
type Identity struct {
	User   string   `json:"user"`
	UID    int      `json:"uid"`
	Groups []string `json:"groups"`
	// Note says why it is not worker.user (selftest run without root).
	Note string `json:"note,omitempty"`
	gids []uint32
	cred *syscall.Credential
}

// Result is the whole selftest.
type Result struct {
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Board    string `json:"board"`
	L4T      string `json:"l4t,omitempty"`
	JetPack  string `json:"jetpack,omitempty"`
	TensorRT string `json:"tensorrt"`
	CUDA     string `json:"cuda"`

	Workers  workers.Selection `json:"workers"`
	Identity Identity          `json:"identity"`
	Devices  []Device          `json:"devices"`
	Swap     string            `json:"swap"`
	Zram     string            `json:"zram"`
	CGroup   string            `json:"cgroup"`

	Backends []Backend `json:"backends"`
	Checks   []Check   `json:"checks"`
	Pass     bool      `json:"pass"`
	Seconds  float64   `json:"seconds"`
}

func (r *Result) check(name string, pass bool, detail, fix string) {
	c := Check{Name: name, Pass: pass, Detail: detail}
	if !pass {
		c.Fix = fix
	}
	r.Checks = append(r.Checks, c)
}

// Run runs the selftest. It fails only when it cannot run at all; a
// failing check is in the Result.
func Run(ctx context.Context, version string, o Options) (*Result, error) {
	start := time.Now()
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.WorkerEnv == nil {
		o.WorkerEnv = converter.Env()
	}
	if o.LibDirs == nil {
		o.LibDirs = workers.LibDirs(o.WorkerEnv)
	}
	if o.DevDir == "" {
		o.DevDir = "/dev"
	}
	r := &Result{Version: version}
	dev, err := sysinfo.Collect(ctx, o.Roots, sysinfo.WithSwapDir(o.Config.Swap.Dir), sysinfo.WithOverheads(o.Config.Overheads))
	if err != nil {
		return nil, fmt.Errorf("selftest: %w", err)
	}
	r.describe(dev)
	r.identity(o.Config.Worker.User)
	r.Devices = devices(o.DevDir, r.Identity)
	r.checkDevices()

	installed := workers.Installed(o.LibDirs)
	present, derr := workers.Discover(o.Config.Paths.Worker)
	base := &converter.Worker{Env: o.WorkerEnv, Timeout: o.Timeout, Credential: r.Identity.cred}
	work, err := privateDir(o.TempDir, r.Identity.cred)
	if err != nil {
		return nil, err
	}
	// A failed removal leaves a few KiB of test model and engine in a
	// private temporary directory; the selftest's verdict does not depend
	// on it.
	defer func() { _ = os.RemoveAll(work) }()
	probe := func(ctx context.Context, w workers.Worker) error {
		ww := *base
		ww.Path = w.Path
		if _, class, reason := ww.Probe(ctx, "api", "", work); class != protocol.ClassOK {
			return fmt.Errorf("%s", reason)
		}
		return nil
	}
	r.Workers = workers.Select(ctx, present, installed, probe)
	r.checkTensorRT(installed, present, derr)

	if w, ok := matching(present, installed); ok {
		r.build(ctx, base, w, "api", "", work)
	}
	if x := findTrtexec(o); x != "" {
		if fb, ok := fallback(present); ok {
			r.build(ctx, base, fb, "trtexec", x, work)
		}
	}
	r.checkBuilds()
	r.Pass = true
	for _, c := range r.Checks {
		r.Pass = r.Pass && c.Pass
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

func (r *Result) describe(d *sysinfo.Device) {
	r.Platform = d.Kind
	r.Board = "not a Jetson"
	if d.Jetson != nil {
		r.Board, r.L4T, r.JetPack = d.Jetson.Model, d.Jetson.L4T, d.Jetson.JetPack
	} else if d.GPU != nil {
		r.Board = "GPU " + d.GPU.Name
	}
	r.TensorRT = d.TensorRT
	if r.TensorRT == "" {
		r.TensorRT = "not found"
	}
	r.CUDA = "unknown (no worker reached CUDA)"
	r.Swap = fmt.Sprintf("%s total, %s free, %d devices", bytesize.Format(d.SwapTotal), bytesize.Format(d.SwapFree), len(d.Swaps))
	r.Zram = "none"
	if len(d.Zram) > 0 {
		r.Zram = fmt.Sprintf("%d devices", len(d.Zram))
	}
	r.CGroup = "no memory controller"
	if d.CGroup.Version > 0 {
		r.CGroup = fmt.Sprintf("v%d memory controller at %s", d.CGroup.Version, d.CGroup.Path)
	}
	swapOK := d.SwapTotal > 0 || d.SwapDir != ""
	r.check("swap", swapOK, r.Swap+"; zram: "+r.Zram+"; swapfile directory: "+orDash(d.SwapDir),
		"give trtd room for swap: [swap] dir in /etc/trtd/config.toml on a disk with free space (NVMe or SD), or enable zram (JetPack: systemctl enable --now nvzramconfig)")
	cgOK := d.CGroup.Version > 0 && d.CGroup.Problem == ""
	detail := r.CGroup
	if d.CGroup.Problem != "" {
		detail += ": " + d.CGroup.Problem
	}
	r.check("memory cgroup", cgOK, detail,
		"boot with the memory controller enabled (add cgroup_enable=memory to the kernel command line in /boot/extlinux/extlinux.conf) and reboot; trtd then caps the worker instead of letting the kernel pick a victim")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// identity resolves the worker's user as the daemon runs it (root: the
// configured user with its groups). Without root, or with worker.user
// empty, the workers run as the caller, as the daemon's would; a missing
// user is a FAIL.
func (r *Result) identity(name string) {
	cred, err := workers.Credential(name)
	if err == nil {
		// The primary group first, then the others once each (the
		// credential's list may hold the primary group too).
		gids := []uint32{cred.Gid}
		for _, g := range cred.Groups {
			if g != cred.Gid {
				gids = append(gids, g)
			}
		}
		r.Identity = Identity{User: name, UID: int(cred.Uid), gids: gids, cred: cred}
		r.Identity.Groups = nodeaccess.GroupNames(r.Identity.gids)
		r.check("worker user", true, fmt.Sprintf("%s (uid %d, groups %s)", name, cred.Uid, strings.Join(r.Identity.Groups, ", ")), "")
		return
	}
	var id Identity
	id.UID, id.gids = nodeaccess.Self()
	id.User = strconv.Itoa(id.UID)
	if u, err := user.Current(); err == nil {
		id.User = u.Username
	}
	id.Groups = nodeaccess.GroupNames(id.gids)
	r.Identity = id
	switch {
	case name == "":
		id.Note = "worker.user is empty: the workers run as the daemon's user"
		r.check("worker user", true, id.Note, "")
	case os.Geteuid() == 0:
		r.check("worker user", false, err.Error(), "reinstall trtd, whose postinst creates the user: sudo apt install --reinstall trtd (or set worker.user in /etc/trtd/config.toml)")
	default:
		id.Note = fmt.Sprintf("not run as root: the workers ran as %s, not as the service's user %q", id.User, name)
		r.check("worker user", false, id.Note, "run it as the service does: sudo trtd selftest")
	}
	r.Identity = id
}

// devices are the GPU's device files under dir (nodeaccess.GPUNodes) and
// whether the worker's identity may open each.
func devices(dir string, id Identity) []Device {
	var out []Device
	for _, n := range nodeaccess.GPUNodes(dir, id.UID, id.gids) {
		out = append(out, Device{Path: n.Path, Mode: lsMode(n.Mode), Owner: n.Owner, OK: n.OK, group: n.Group})
	}
	return out
}

func (r *Result) checkDevices() {
	if len(r.Devices) == 0 {
		r.check("GPU device nodes", false, "no NVIDIA device nodes (/dev/nvhost-*, /dev/nvmap, /dev/nvidia*)",
			"install JetPack (L4T) on a Jetson, or NVIDIA's driver on a PC, and reboot")
		return
	}
	var bad []string
	group := ""
	for _, d := range r.Devices {
		if !d.OK {
			bad = append(bad, fmt.Sprintf("%s (%s %s)", d.Path, d.Mode, d.Owner))
			if group == "" {
				group = d.group
			}
		}
	}
	if len(bad) == 0 {
		r.check("GPU device nodes", true, fmt.Sprintf("%d nodes, all open to %s", len(r.Devices), r.Identity.User), "")
		return
	}
	if group == "" {
		group = "video"
	}
	r.check("GPU device nodes", false, fmt.Sprintf("%s cannot open %s", r.Identity.User, strings.Join(bad, ", ")),
		fmt.Sprintf("sudo usermod -aG %s %s && sudo systemctl restart trtd", group, r.Identity.User))
}

func (r *Result) checkTensorRT(installed map[int]string, present []workers.Worker, derr error) {
	if derr != nil {
		r.check("workers installed", false, derr.Error(), "reinstall the package: sudo apt install --reinstall trtd")
	} else {
		r.check("workers installed", true, r.Workers.PresentNames(), "")
	}
	if len(installed) == 0 {
		r.check("TensorRT installed", false, "no libnvinfer.so.N in "+strings.Join(firstN(libDirsOf(r), 4), ", ")+", ...",
			"install TensorRT: on a Jetson, sudo apt install nvidia-tensorrt (JetPack's; or the libnvinfer8 / libnvinfer10 and libnvonnxparsers packages); on a PC, NVIDIA's TensorRT packages; then run trtd selftest again")
		return
	}
	var libs []string
	for m, p := range installed {
		libs = append(libs, fmt.Sprintf("TensorRT %d.x: %s", m, p))
	}
	r.check("TensorRT installed", true, strings.Join(libs, "; "), "")
	if _, ok := matching(present, installed); !ok {
		r.check("cgo worker for this TensorRT", false, r.Workers.Reason,
			"this trtd has no worker for the TensorRT installed; upgrade trtd (sudo apt install trtd), or builds go through trtexec (/usr/src/tensorrt/bin/trtexec)")
		return
	}
	r.check("cgo worker for this TensorRT", !r.Workers.Fallback, r.Workers.Line(),
		"see the reason: a CUDA or device-node error names its fix above; report it with this output otherwise")
}

// libDirsOf is only for the FAIL line: the directories searched.
func libDirsOf(*Result) []string { return workers.DefaultLibDirs }

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// matching is the cgo worker of the newest installed TensorRT major.
func matching(present []workers.Worker, installed map[int]string) (workers.Worker, bool) {
	best, ok := workers.Worker{}, false
	for _, w := range present {
		if _, has := installed[w.ABI]; w.ABI > 0 && has && w.ABI > best.ABI {
			best, ok = w, true
		}
	}
	return best, ok
}

func fallback(present []workers.Worker) (workers.Worker, bool) {
	for _, w := range present {
		if w.ABI == 0 {
			return w, true
		}
	}
	return workers.Worker{}, false
}

func findTrtexec(o Options) string {
	for _, p := range []string{o.Trtexec, o.Config.Worker.Trtexec, "/usr/src/tensorrt/bin/trtexec"} {
		if p != "" {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
	}
	if p, err := exec.LookPath("trtexec"); err == nil {
		return p
	}
	return ""
}

// privateDir is the build directory: new, owned by the worker's user.
func privateDir(tmp string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp(tmp, "trtd-selftest-")
	if err != nil {
		return "", fmt.Errorf("selftest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir) // just made and empty; the chown's error is the one to return
			return "", fmt.Errorf("selftest: %w", err)
		}
	}
	return dir, nil
}

// build runs the selftest model through one backend in a subdirectory of
// work owned by the worker's user.
func (r *Result) build(ctx context.Context, base *converter.Worker, w workers.Worker, backend, trtexec, work string) {
	b := Backend{Backend: backend, Worker: w.Path}
	dir := filepath.Join(work, backend)
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "selftest.onnx"), Model(), 0o644)
	}
	if err == nil && base.Credential != nil {
		err = os.Chown(dir, int(base.Credential.Uid), int(base.Credential.Gid))
	}
	if err != nil {
		b.Reason = err.Error()
		r.Backends = append(r.Backends, b)
		return
	}
	ww := *base
	ww.Path = w.Path
	sb := &rusage{}
	req := protocol.Request{Op: protocol.OpBuild, Backend: backend, Trtexec: trtexec, WorkDir: dir, Model: "selftest.onnx",
		Engine: filepath.Join(dir, "selftest.engine"), Stage: "selftest",
		Settings: protocol.Settings{Precision: "fp32", WorkspaceMiB: 64}, ValidateRuns: 1}
	run := ww.RunWorker(ctx, req, sb, nil)
	b.Seconds, b.PeakRSS = run.Duration.Seconds(), sb.peak
	b.Pass = run.Class == protocol.ClassOK
	if run.Result != nil {
		b.EngineBytes = run.Result.EngineBytes
		if bd := run.Result.Builder; bd.CUDARuntime != "" {
			r.CUDA = "runtime " + bd.CUDARuntime
			if bd.CUDADriver != "" {
				r.CUDA += ", driver " + bd.CUDADriver
			}
		}
		if run.Result.Builder.TensorRT != "" {
			r.TensorRT = run.Result.Builder.TensorRT
		}
	}
	if !b.Pass {
		b.Reason = run.Reason
		if run.Result != nil && run.Result.Message != "" {
			b.Reason = run.Result.Message
		}
	}
	r.Backends = append(r.Backends, b)
}

func (r *Result) checkBuilds() {
	if len(r.Backends) == 0 {
		r.check("build", false, "no backend is present: no cgo worker matches an installed TensorRT and trtexec was not found",
			"install TensorRT (see the TensorRT check above); on a Jetson it brings trtexec at /usr/src/tensorrt/bin/trtexec")
		return
	}
	for _, b := range r.Backends {
		name := "build through " + b.Backend
		if b.Pass {
			r.check(name, true, fmt.Sprintf("%s: %.2f s, peak RSS %s, engine %d bytes", filepath.Base(b.Worker), b.Seconds, bytesize.Format(b.PeakRSS), b.EngineBytes), "")
			continue
		}
		r.check(name, false, filepath.Base(b.Worker)+": "+b.Reason,
			"the reason names the cause; if it is not one of the FAILs above, open an issue with this output (trtd selftest) and journalctl -u trtd -n 200")
	}
}

// rusage is a sandbox that records the worker's peak RSS from the kernel's
// accounting once it has exited.
type rusage struct {
	cmd  *exec.Cmd
	peak int64
}

func (s *rusage) Prepare(cmd *exec.Cmd) error { s.cmd = cmd; return nil }
func (s *rusage) Started(int)                 {}
func (s *rusage) Finished() converter.Observation {
	if s.cmd != nil && s.cmd.ProcessState != nil {
		if ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.peak = ru.Maxrss << 10 // KiB on Linux
		}
	}
	return converter.Observation{}
}

// lsMode writes a mode as ls -l does ("crw-rw----" for a character
// device), which is what a Jetson owner compares with; os.FileMode's own
// String writes "Dcrw-rw----".
func lsMode(m os.FileMode) string {
	t := "-"
	switch {
	case m&os.ModeCharDevice != 0:
		t = "c"
	case m&os.ModeDevice != 0:
		t = "b"
	case m.IsDir():
		t = "d"
	case m&os.ModeSymlink != 0:
		t = "l"
	}
	return t + m.Perm().String()[1:]
}
