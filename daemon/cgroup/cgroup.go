// Package cgroup puts the build worker into its own memory cgroup, so the
// kernel caps it (and OOM-kills it, not the daemon or the desktop) and the
// daemon can tell a kernel OOM kill from any other SIGKILL afterwards.
//
// cgroup v2: a child of the daemon's own (delegated) cgroup with memory.max,
// memory.swap.max and memory.oom.group; the worker starts inside it through
// clone3(CLONE_INTO_CGROUP) (exec.Cmd's SysProcAttr.UseCgroupFD). cgroup v1:
// a child of the daemon's memory cgroup with memory.limit_in_bytes and, where
// swap accounting is on, memory.memsw.limit_in_bytes; the worker's pid is
// written to cgroup.procs right after Start, so the caller must write the
// worker's request on stdin only after Started returned: what a process
// allocated before it moved stays charged to the old cgroup on v1. Where neither works NewWorker returns an
// error wrapping ErrUnavailable with the reason, for the caller to log and go
// on without a cap.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped when no memory cgroup can be made for the worker.
var ErrUnavailable = errors.New("no memory cgroup for the worker")

// Info describes where memory cgroups are on this system.
type Info struct {
	Version int    // 2, 1, or 0 when no memory controller is usable
	Dir     string // the daemon's own memory cgroup directory
	// SwapAccounting is false on v1 without memory.memsw.* (swapaccount=0)
	// and on v2 without memory.swap.max.
	SwapAccounting bool
	Reason         string // why Version is 0
}

// Option changes where the package looks (tests, containers).
type Option func(*opts)

type opts struct {
	root string // prefix for every absolute path ("" = real)
	self string // which /proc/<self> (default "self")
}

// WithRoot reads /proc and the cgroup mounts under root.
func WithRoot(root string) Option { return func(o *opts) { o.root = root } }

func build(os_ []Option) opts {
	o := opts{root: "/", self: "self"}
	for _, f := range os_ {
		f(&o)
	}
	return o
}

// Detect finds the daemon's memory cgroup: v2 when the unified hierarchy
// has the memory controller, else v1's memory hierarchy.
func Detect(options ...Option) Info {
	o := build(options)
	mounts, err := readMountinfo(filepath.Join(o.root, "proc", o.self, "mountinfo"))
	if err != nil {
		return Info{Reason: err.Error()}
	}
	paths, err := readProcCgroup(filepath.Join(o.root, "proc", o.self, "cgroup"))
	if err != nil {
		return Info{Reason: err.Error()}
	}
	var reasons []string
	for _, m := range mounts {
		if m.fstype != "cgroup2" {
			continue
		}
		p, ok := paths[""]
		if !ok {
			continue
		}
		dir := filepath.Join(o.root, m.point, relTo(p, m.root))
		ctrls, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil || !hasWord(string(ctrls), "memory") {
			reasons = append(reasons, fmt.Sprintf("cgroup v2 at %s: no memory controller in %s", m.point, p))
			continue
		}
		return Info{Version: 2, Dir: dir, SwapAccounting: fileExists(filepath.Join(dir, "memory.swap.max"))}
	}
	for _, m := range mounts {
		if m.fstype != "cgroup" || !hasOpt(m.super, "memory") {
			continue
		}
		p, ok := paths["memory"]
		if !ok {
			reasons = append(reasons, "/proc/self/cgroup has no memory line")
			continue
		}
		dir := filepath.Join(o.root, m.point, relTo(p, m.root))
		_, serr := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes"))
		return Info{Version: 1, Dir: dir, SwapAccounting: serr == nil}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup memory controller is mounted")
	}
	return Info{Reason: strings.Join(reasons, "; ")}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func relTo(p, root string) string {
	if root == "/" || root == "" {
		return p
	}
	if r, ok := strings.CutPrefix(p, root); ok {
		return "/" + strings.TrimPrefix(r, "/")
	}
	return p
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func hasOpt(s, w string) bool {
	for _, f := range strings.Split(s, ",") {
		if f == w {
			return true
		}
	}
	return false
}

type mount struct{ root, point, fstype, super string }

func readMountinfo(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only; read errors come from the scanner
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		out = append(out, mount{root: a[3], point: a[4], fstype: b[0], super: b[2]})
	}
	return out, sc.Err()
}

// readProcCgroup maps controller -> path; "" is the v2 (0::) entry.
func readProcCgroup(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// Cgroup is one worker's cgroup.
type Cgroup struct {
	Dir       string
	Version   int
	Limit     int64
	SwapLimit int64 // -1 = not limited (no swap accounting)
	fd        int
	log       *slog.Logger
}

// NewWorker creates name under parent ("" = the daemon's own memory cgroup)
// capped at limit bytes of memory and swapLimit bytes of swap (-1 = no swap
// cap). On v2 a parent holding processes is first split: the daemon moves
// into a "daemon" leaf so the memory controller can be enabled for children.
func NewWorker(parent, name string, limit, swapLimit int64, log *slog.Logger, options ...Option) (*Cgroup, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup name %q: must be a single path element", name)
	}
	info := Detect(options...)
	if info.Version == 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, info.Reason)
	}
	if parent == "" {
		parent = info.Dir
	}
	c := &Cgroup{Dir: filepath.Join(parent, name), Version: info.Version, Limit: limit, SwapLimit: swapLimit, fd: -1, log: log}
	var err error
	if info.Version == 2 {
		err = c.makeV2(parent)
	} else {
		err = c.makeV1(info)
	}
	if err != nil {
		if rerr := os.Remove(c.Dir); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			log.Warn("could not remove a half-made worker cgroup", "dir", c.Dir, "err", rerr)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	log.Debug("worker cgroup ready", "dir", c.Dir, "version", c.Version, "limit", limit, "swap_limit", swapLimit)
	return c, nil
}

func writeFile(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", v, path, err)
	}
	return nil
}

func (c *Cgroup) makeV1(info Info) error {
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	if c.Limit > 0 {
		if err := writeFile(filepath.Join(c.Dir, "memory.limit_in_bytes"), strconv.FormatInt(c.Limit, 10)); err != nil {
			return err
		}
	}
	if c.SwapLimit >= 0 && c.Limit > 0 {
		if !info.SwapAccounting {
			c.log.Warn("swap accounting is off (memory.memsw.* missing; boot with swapaccount=1): the worker's swap use is not capped")
			c.SwapLimit = -1
		} else if err := writeFile(filepath.Join(c.Dir, "memory.memsw.limit_in_bytes"), strconv.FormatInt(c.Limit+c.SwapLimit, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cgroup) makeV2(parent string) error {
	sub, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if !hasWord(string(sub), "memory") {
		if err := c.enableMemory(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	if c.Limit > 0 {
		if err := writeFile(filepath.Join(c.Dir, "memory.max"), strconv.FormatInt(c.Limit, 10)); err != nil {
			return err
		}
	}
	if c.SwapLimit >= 0 {
		p := filepath.Join(c.Dir, "memory.swap.max")
		if fileExists(p) {
			if err := writeFile(p, strconv.FormatInt(c.SwapLimit, 10)); err != nil {
				return err
			}
		} else {
			c.log.Warn("memory.swap.max is missing (swap accounting off): the worker's swap use is not capped")
			c.SwapLimit = -1
		}
	}
	// An OOM kill takes the whole worker tree, not one helper process.
	if p := filepath.Join(c.Dir, "memory.oom.group"); fileExists(p) {
		if err := writeFile(p, "1"); err != nil {
			c.log.Warn("could not set memory.oom.group", "err", err)
		}
	}
	fd, err := unix.Open(c.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup dir: %w", err)
	}
	c.fd = fd
	return nil
}

// enableMemory turns on the memory controller for parent's children. The
// no-internal-processes rule forbids it while parent holds processes, so
// the daemon first moves itself into parent/daemon (systemd's Delegate=yes
// hands it parent for exactly this).
func (c *Cgroup) enableMemory(parent string) error {
	err := writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+memory")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("enable the memory controller (is the unit delegated? Delegate=yes): %w", err)
	}
	procs, rerr := readPids(filepath.Join(parent, "cgroup.procs"))
	if rerr != nil {
		return rerr
	}
	for _, p := range procs {
		if p != os.Getpid() {
			return fmt.Errorf("enable the memory controller: %s holds process %d besides the daemon: %w", parent, p, err)
		}
	}
	leaf := filepath.Join(parent, "daemon")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create daemon leaf cgroup: %w", err)
	}
	if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	c.log.Info("moved the daemon into a leaf cgroup to delegate memory to workers", "leaf", leaf)
	return writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+memory")
}

// Prepare makes cmd start inside the cgroup (v2: CLONE_INTO_CGROUP). On v1
// call Started right after cmd.Start.
func (c *Cgroup) Prepare(cmd *exec.Cmd) {
	if c.Version != 2 || c.fd < 0 {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = c.fd
}

// Started moves pid into the cgroup on v1 (a no-op on v2, where Prepare
// already placed it; it then checks the placement).
func (c *Cgroup) Started(pid int) error { return c.Attach(pid) }

// Attach moves pid into the cgroup (or checks it is there on v2).
func (c *Cgroup) Attach(pid int) error {
	procs := filepath.Join(c.Dir, "cgroup.procs")
	if c.Version == 2 && c.fd >= 0 {
		pids, err := readPids(procs)
		if err != nil {
			return err
		}
		for _, p := range pids {
			if p == pid {
				return nil
			}
		}
	}
	return writeFile(procs, strconv.Itoa(pid))
}

// Events are the cgroup's memory event counters.
type Events struct {
	OOM     int64 // times the limit was hit and reclaim failed
	OOMKill int64 // processes the kernel OOM-killed in this cgroup
	Max     int64 // times usage hit the limit (v2 "max", v1 failcnt)
	// Peak is the highest memory use seen (v1 max_usage_in_bytes, v2
	// memory.peak where the kernel has it; 0 = unknown).
	Peak int64
}

// ReadEvents reads the counters (after the worker exited).
func (c *Cgroup) ReadEvents() (Events, error) {
	var e Events
	if c.Version == 2 {
		kv, err := readKV(filepath.Join(c.Dir, "memory.events"))
		if err != nil {
			return e, err
		}
		e.OOM, e.OOMKill, e.Max = kv["oom"], kv["oom_kill"], kv["max"]
		e.Peak = readInt(filepath.Join(c.Dir, "memory.peak"))
		return e, nil
	}
	kv, err := readKV(filepath.Join(c.Dir, "memory.oom_control"))
	if err != nil {
		return e, err
	}
	k, ok := kv["oom_kill"]
	if !ok {
		return e, fmt.Errorf("%s has no oom_kill counter (kernel older than 4.13): kernel OOM kills cannot be told apart", filepath.Join(c.Dir, "memory.oom_control"))
	}
	e.OOMKill = k
	e.OOM = kv["under_oom"]
	e.Max = readInt(filepath.Join(c.Dir, "memory.failcnt"))
	e.Peak = readInt(filepath.Join(c.Dir, "memory.max_usage_in_bytes"))
	return e, nil
}

// OOMKilled reports whether the kernel OOM-killed a process of the cgroup.
func (c *Cgroup) OOMKilled() (bool, error) {
	e, err := c.ReadEvents()
	if err != nil {
		return false, err
	}
	return e.OOMKill > 0, nil
}

// Remove kills whatever is left in the cgroup and deletes it.
func (c *Cgroup) Remove() error {
	if c.fd >= 0 {
		_ = unix.Close(c.fd) // a directory descriptor only read through; nothing to lose
		c.fd = -1
	}
	var lastErr error
	for i := 0; i < 100; i++ {
		pids, err := readPids(filepath.Join(c.Dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, p := range pids {
			// ESRCH: gone already. Any process left is seen by the next
			// round's cgroup.procs, and the rmdir below says whether the
			// group emptied.
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if lastErr = os.Remove(c.Dir); lastErr == nil || errors.Is(lastErr, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove worker cgroup %s: %w", c.Dir, lastErr)
}

func readPids(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func readKV(path string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out, nil
}

func readInt(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// DefaultLimit derives the worker's memory cap when guard.memory_max is 0:
// all of RAM but a margin for the daemon and the system (256 MiB, or an
// eighth of RAM on small boards, whichever is smaller).
func DefaultLimit(memTotal int64) int64 {
	margin := min(int64(256<<20), memTotal/8)
	return memTotal - margin
}

// RemoveStale removes the worker cgroups under parent that a daemon killed
// by SIGKILL left behind (named trtd-worker-<pid>-<n>, <pid> not running):
// outside systemd nothing else ever removes them. What is still in one is
// killed first. It returns the directories removed.
func RemoveStale(parent string, log *slog.Logger) []string {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		var pid, seq int
		if !e.IsDir() {
			continue
		}
		if n, _ := fmt.Sscanf(e.Name(), "trtd-worker-%d-%d", &pid, &seq); n != 2 || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // its daemon is alive
		}
		dir := filepath.Join(parent, e.Name())
		c := &Cgroup{Dir: dir, fd: -1}
		if err := c.Remove(); err != nil {
			log.Warn("cannot remove a leftover worker cgroup", "dir", dir, "err", err)
			continue
		}
		// Remove returns early for a directory without cgroup.procs.
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot remove a leftover worker cgroup", "dir", dir, "err", err)
			continue
		}
		out = append(out, dir)
	}
	return out
}
