// Package config loads trtd's TOML configuration strictly: unknown keys are
// errors naming the key and its line, every problem is reported at once, and
// every key has a built-in default so an empty file is a valid config.
package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/protocol"
)

// DefaultPath is where the packaged config lives.
const DefaultPath = "/etc/trtd/config.toml"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Config is trtd's whole configuration.
type Config struct {
	LogLevel   string    `toml:"log_level"`
	LogFormat  string    `toml:"log_format"` // auto | journal | text | json
	Paths      Paths     `toml:"paths"`
	Inbox      Inbox     `toml:"inbox"`
	Worker     Worker    `toml:"worker"`
	Swap       Swap      `toml:"swap"`
	Guard      Guard     `toml:"guard"`
	Planner    Planner   `toml:"planner"`
	Validation Validate  `toml:"validate"`
	Offload    Offload   `toml:"offload"`
	Fleet      Fleet     `toml:"fleet"`
	Stages     []Stage   `toml:"stage"`
	Overheads  Overheads `toml:"overheads"`
	Retention  Retention `toml:"retention"`

	// File is the path the config was loaded from ("" for defaults).
	File string `toml:"-"`
}

// Retention bounds what finished jobs leave on disk (issue 13, Disk): a
// finished job's kept model (in the job store, or in failed/ when its
// build failed) is removed once it is neither among the last KeepJobs
// finished jobs nor younger than KeepDays days. Zero turns that rule off;
// both zero keep everything. A job that is not finished, or whose model an
// engine in the outbox names in its provenance, is never removed.
type Retention struct {
	KeepJobs int `toml:"keep_jobs"`
	KeepDays int `toml:"keep_days"`
}

// Paths are the directories trtd works in.
type Paths struct {
	Inbox  string `toml:"inbox"`
	Outbox string `toml:"outbox"`
	State  string `toml:"state"`
	Failed string `toml:"failed"`
	Worker string `toml:"worker"`
	Status string `toml:"status"`
}

// Inbox tunes upload detection.
type Inbox struct {
	Settle   Duration `toml:"settle"`
	Rescan   Duration `toml:"rescan"`
	MaxBytes Size     `toml:"max_bytes"`
}

// Worker tunes how the build worker runs.
type Worker struct {
	User          string   `toml:"user"`
	Backend       string   `toml:"backend"` // auto | api | trtexec
	Trtexec       string   `toml:"trtexec"`
	Timeout       Duration `toml:"timeout"`
	StderrLimit   Size     `toml:"stderr_limit"`
	ValidateRuns  int      `toml:"validate_runs"`
	RetryInterval Duration `toml:"retry_interval"`
	PrivateNet    bool     `toml:"private_network"`
}

// Swap configures the daemon's own swapfile.
type Swap struct {
	Enabled bool   `toml:"enabled"`
	Dir     string `toml:"dir"`
	MaxSize Size   `toml:"max_size"`
	Reserve Size   `toml:"reserve"`
	// Priority of the swapfile; -1 puts it below every swap device trtd does
	// not own (zram included), so RAM compression is used first.
	Priority    int      `toml:"priority"`
	IdleRelease Duration `toml:"idle_release"`
}

// Guard configures the build-time memory guard.
type Guard struct {
	Interval Duration `toml:"interval"`
	Floor    Size     `toml:"floor"`
	// MemoryMax caps the worker's cgroup; 0 = derived from RAM + swap.
	MemoryMax Size `toml:"memory_max"`
}

// Planner configures stage selection.
type Planner struct {
	Enabled bool `toml:"enabled"`
	// SkipHopeless skips stages whose predicted peak exceeds what the device
	// can provide.
	SkipHopeless bool `toml:"skip_hopeless"`
}

// Overheads are fixed memory costs per platform the planner adds to a
// model's own needs (defaults from public [MemUsageChange] figures).
type Overheads struct {
	CUDAContext Size `toml:"cuda_context"`
	CUDNN       Size `toml:"cudnn"`
	CUBLAS      Size `toml:"cublas"`
	Builder     Size `toml:"builder"`
}

// Validate configures engine validation and the accuracy gate.
type Validate struct {
	Runs int     `toml:"runs"`
	ATol float64 `toml:"atol"`
	RTol float64 `toml:"rtol"`
}

// Offload lists peers that may build for this device.
type Offload struct {
	Enabled bool       `toml:"enabled"`
	Timeout Duration   `toml:"timeout"`
	Peers   []PeerConf `toml:"peer"`
}

// PeerConf is one offload peer reached over ssh.
type PeerConf struct {
	Name       string `toml:"name"`
	Host       string `toml:"host"`
	Port       int    `toml:"port"`
	User       string `toml:"user"`
	Key        string `toml:"key"`
	Inbox      string `toml:"inbox"`
	Outbox     string `toml:"outbox"`
	KnownHosts string `toml:"known_hosts"`
}

// Stage is one rung of the ladder.
type Stage struct {
	Name string `toml:"name"`
	// Kind is "build" (one engine), "segmented" (split the graph into Parts
	// and build each) or "offload" (hand the model to a matching peer).
	Kind              string   `toml:"kind"`
	Precision         string   `toml:"precision"`
	TF32              *bool    `toml:"tf32"`
	Workspace         Size     `toml:"workspace"`
	TacticSources     []string `toml:"tactic_sources"`
	OptimizationLevel *int     `toml:"optimization_level"`
	MaxAuxStreams     *int     `toml:"max_aux_streams"`
	TacticDRAM        Size     `toml:"tactic_dram"`
	// Swap is "none", "ensure" (make sure the planned size exists) or
	// "max" (grow to swap.max_size).
	Swap       string   `toml:"swap"`
	DropCaches bool     `toml:"drop_caches"`
	Parts      int      `toml:"parts"`
	Timeout    Duration `toml:"timeout"`
	DLACore    *int     `toml:"dla_core"`
}

// Settings turns the stage into the worker's resolved settings.
func (s Stage) Settings() protocol.Settings {
	return protocol.Settings{
		Precision:         s.Precision,
		TF32:              s.TF32,
		WorkspaceMiB:      int64(s.Workspace) >> 20,
		TacticSources:     s.TacticSources,
		OptimizationLevel: s.OptimizationLevel,
		MaxAuxStreams:     s.MaxAuxStreams,
		TacticDRAMMiB:     int64(s.TacticDRAM) >> 20,
		DLACore:           s.DLACore,
		GPUFallback:       s.DLACore != nil,
		TimingCache:       true,
	}
}

func intp(i int) *int { return &i }

// DefaultStages is the built-in ladder (see docs/ARCHITECTURE.md).
func DefaultStages() []Stage {
	return []Stage{
		{Name: "fast", Kind: "build", Precision: "fp16", Workspace: 1 << 30, Swap: "none"},
		{Name: "lean", Kind: "build", Precision: "fp16", Workspace: 256 << 20,
			TacticSources:     []string{protocol.TacticJITConvs},
			OptimizationLevel: intp(1), MaxAuxStreams: intp(0), Swap: "ensure"},
		{Name: "minimal", Kind: "build", Precision: "fp16", Workspace: 16 << 20,
			TacticSources:     []string{},
			OptimizationLevel: intp(0), MaxAuxStreams: intp(0), Swap: "max", DropCaches: true},
		{Name: "segmented", Kind: "segmented", Precision: "fp16", Workspace: 16 << 20,
			TacticSources:     []string{},
			OptimizationLevel: intp(0), MaxAuxStreams: intp(0), Swap: "max", DropCaches: true, Parts: 2},
	}
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		LogLevel:  "info",
		LogFormat: "auto",
		Paths: Paths{
			Inbox:  "/var/lib/trtd/inbox",
			Outbox: "/var/lib/trtd/outbox",
			State:  "/var/lib/trtd/state",
			Failed: "/var/lib/trtd/failed",
			Worker: "/usr/lib/trtd/trtd-worker",
		},
		Inbox: Inbox{Settle: Duration(5 * time.Second), Rescan: Duration(30 * time.Second), MaxBytes: 16 << 30},
		Worker: Worker{User: "trtd", Backend: "auto", Timeout: Duration(2 * time.Hour),
			StderrLimit: 64 << 10, ValidateRuns: 20, RetryInterval: Duration(10 * time.Minute), PrivateNet: true},
		Swap: Swap{Enabled: true, Dir: "/var/lib/trtd/swap", MaxSize: 4 << 30, Reserve: 2 << 30,
			Priority: -1, IdleRelease: Duration(30 * time.Minute)},
		Guard:      Guard{Interval: Duration(250 * time.Millisecond), Floor: 192 << 20},
		Planner:    Planner{Enabled: true, SkipHopeless: true},
		Overheads:  Overheads{CUDAContext: 300 << 20, CUDNN: 600 << 20, CUBLAS: 200 << 20, Builder: 150 << 20},
		Validation: Validate{Runs: 20, ATol: 1e-3, RTol: 1e-2},
		Offload:    Offload{Timeout: Duration(2 * time.Hour)},
		Fleet:      DefaultFleet(),
		Stages:     DefaultStages(),
		Retention:  Retention{KeepJobs: 20, KeepDays: 14},
	}
}

// Load reads path over the defaults. A missing file at DefaultPath gives the
// defaults; a missing file named explicitly is an error.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		path = DefaultPath
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return c, c.Validate()
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := c.decode(path, data); err != nil {
		return nil, err
	}
	c.File = path
	return c, nil
}

// Parse decodes data (named name in errors) over the defaults and validates.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	if err := c.decode(name, data); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) decode(name string, data []byte) error {
	// A [[stage]] list in the file replaces the built-in ladder as a whole.
	def := c.Stages
	c.Stages = nil
	p := newProblems(name, data)
	md, err := decodeStrict(data, c, p)
	if err != nil {
		return err
	}
	if !md.IsDefined("stage") {
		c.Stages = def
	}
	for _, msg := range c.problems() {
		p.addValidation(msg)
	}
	return p.err()
}

// Validate reports every problem at once, in a stable order.
func (c *Config) Validate() error {
	p := c.problems()
	if len(p) == 0 {
		return nil
	}
	sort.Strings(p)
	return fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(p, "\n"))
}

// problems lists every value problem, each message starting with its key.
func (c *Config) problems() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "journal", "text", "json":
	default:
		bad("log_format: %q is not one of auto, journal, text, json", c.LogFormat)
	}
	c.pathProblems(bad)
	if c.Inbox.Settle < Duration(100*time.Millisecond) {
		bad("inbox.settle: %s is too short (minimum 100ms)", c.Inbox.Settle)
	}
	if c.Inbox.Rescan < Duration(time.Second) {
		bad("inbox.rescan: %s is too short (minimum 1s)", c.Inbox.Rescan)
	}
	switch c.Worker.Backend {
	case "auto", "api", "trtexec":
	default:
		bad("worker.backend: %q is not one of auto, api, trtexec", c.Worker.Backend)
	}
	if c.Worker.Timeout <= 0 {
		bad("worker.timeout: must be positive")
	}
	if c.Worker.StderrLimit < 1024 {
		bad("worker.stderr_limit: %s is too small (minimum 1KiB)", c.Worker.StderrLimit)
	}
	if c.Guard.Interval < Duration(10*time.Millisecond) {
		bad("guard.interval: %s is too short (minimum 10ms)", c.Guard.Interval)
	}
	if c.Swap.Priority > 32767 || c.Swap.Priority < -1 {
		bad("swap.priority: %d is not in -1..32767 (-1 = below every other swap device)", c.Swap.Priority)
	}
	if len(c.Stages) == 0 {
		bad("stage: the ladder needs at least one [[stage]]")
	}
	c.stageProblems(bad)
	for i, peer := range c.Offload.Peers {
		if peer.Host == "" {
			bad("offload.peer[%d].host: must not be empty", i)
		}
		if peer.Inbox == "" || peer.Outbox == "" {
			bad("offload.peer[%d]: inbox and outbox must be set", i)
		}
	}
	c.rangeProblems(bad)
	c.Fleet.check(bad)
	return p
}

// stageProblems reports the ladder's stages that are not valid.
func (c *Config) stageProblems(bad func(format string, a ...any)) {
	names := map[string]bool{}
	for i, s := range c.Stages {
		at := fmt.Sprintf("stage[%d]", i)
		if s.Name != "" {
			at = fmt.Sprintf("stage[%d] (%s)", i, s.Name)
		}
		if s.Name == "" {
			bad("%s.name: must not be empty", at)
		} else if names[s.Name] {
			bad("%s.name: duplicate stage name %q", at, s.Name)
		}
		names[s.Name] = true
		switch s.Kind {
		case "", "build":
		case "segmented":
			if s.Parts < 2 {
				bad("%s.parts: a segmented stage needs parts >= 2 (got %d)", at, s.Parts)
			}
		case "offload":
		default:
			bad("%s.kind: %q is not one of build, segmented, offload", at, s.Kind)
		}
		switch s.Precision {
		case "", protocol.PrecisionFP32, protocol.PrecisionFP16, protocol.PrecisionINT8:
		default:
			bad("%s.precision: %q is not one of fp32, fp16, int8", at, s.Precision)
		}
		for _, t := range s.TacticSources {
			switch t {
			case protocol.TacticCUBLAS, protocol.TacticCUBLASLt, protocol.TacticCUDNN,
				protocol.TacticEdgeMask, protocol.TacticJITConvs:
			default:
				bad("%s.tactic_sources: unknown tactic source %q (cublas, cublaslt, cudnn, edge_mask_convolutions, jit_convolutions)", at, t)
			}
		}
		if s.OptimizationLevel != nil && (*s.OptimizationLevel < 0 || *s.OptimizationLevel > 5) {
			bad("%s.optimization_level: %d is not in 0..5", at, *s.OptimizationLevel)
		}
		if s.MaxAuxStreams != nil && *s.MaxAuxStreams < 0 {
			bad("%s.max_aux_streams: must not be negative", at)
		}
		switch s.Swap {
		case "", "none", "ensure", "max":
		default:
			bad("%s.swap: %q is not one of none, ensure, max", at, s.Swap)
		}
		if s.Workspace < 0 {
			bad("%s.workspace: must not be negative", at)
		}
	}
}

// pathProblems reports paths that are empty, relative or shared.
func (c *Config) pathProblems(bad func(format string, a ...any)) {
	for _, kv := range [][2]string{{"paths.inbox", c.Paths.Inbox}, {"paths.outbox", c.Paths.Outbox},
		{"paths.state", c.Paths.State}, {"paths.failed", c.Paths.Failed}, {"paths.worker", c.Paths.Worker},
		{"swap.dir", c.Swap.Dir}} {
		key, v := kv[0], kv[1]
		if v == "" {
			bad("%s: must not be empty", key)
		} else if !filepath.IsAbs(v) {
			bad("%s: %q must be an absolute path", key, v)
		}
	}
	if c.Paths.Status != "" && !filepath.IsAbs(c.Paths.Status) {
		bad("paths.status: %q must be an absolute path", c.Paths.Status)
	}
	dirs := map[string]string{}
	for _, kv := range [][2]string{{"paths.inbox", c.Paths.Inbox}, {"paths.outbox", c.Paths.Outbox},
		{"paths.state", c.Paths.State}, {"paths.failed", c.Paths.Failed}} {
		key, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		cv := filepath.Clean(v)
		if other, ok := dirs[cv]; ok {
			a, b := sorted2(key, other)
			bad("%s and %s: must be different directories (both %q)", a, b, v)
		}
		dirs[cv] = key
	}
}

func sorted2(a, b string) (string, string) {
	s := []string{a, b}
	sort.Strings(s)
	return s[0], s[1]
}

// StatusPath is the status file (default: state/status.json).
func (c *Config) StatusPath() string {
	if c.Paths.Status != "" {
		return c.Paths.Status
	}
	return filepath.Join(c.Paths.State, "status.json")
}

// Stage returns the stage named name.
func (c *Config) Stage(name string) (Stage, bool) {
	for _, s := range c.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// Duration is a time.Duration written as "5s", "250ms", "2h".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (use e.g. 250ms, 5s, 2h)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Size is a byte count written as an integer or with a unit: "256M",
// "256MiB", "4G", "1.5GiB" (binary units; "MB" also means MiB).
type Size int64

// ParseSize parses a size as in config files: decimal digits with at most
// one fraction point and an optional binary unit. It never goes through an
// out-of-range float: a size that does not fit in an int64 is an error.
func ParseSize(s string) (Size, error) {
	bad := fmt.Errorf("bad size %q (use e.g. 64M, 256MiB, 4G)", s)
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift, ok := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	if !ok {
		return 0, bad
	}
	ip, fp, _ := strings.Cut(num, ".")
	if ip == "" && fp == "" || strings.Trim(ip+fp, "0123456789") != "" {
		return 0, bad
	}
	whole := int64(0)
	if ip != "" {
		v, err := strconv.ParseInt(ip, 10, 64)
		if err != nil || v > math.MaxInt64>>shift {
			return 0, fmt.Errorf("bad size %q: too large", s)
		}
		whole = v << shift
	}
	if fp != "" {
		// The fraction of one unit: at most 2^40 bytes, so exact enough in a float64.
		f, err := strconv.ParseFloat("0."+fp, 64)
		if err != nil {
			return 0, bad
		}
		add := int64(f * float64(int64(1)<<shift))
		if whole > math.MaxInt64-add {
			return 0, fmt.Errorf("bad size %q: too large", s)
		}
		whole += add
	}
	return Size(whole), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML accepts plain integers (bytes) too.
func (s *Size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("bad size %d: negative", x)
		}
		*s = Size(x)
		return nil
	case string:
		return s.UnmarshalText([]byte(x))
	}
	return fmt.Errorf("bad size %v: want a string like \"256M\" or a byte count", v)
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string {
	switch {
	case s != 0 && s%(1<<30) == 0:
		return fmt.Sprintf("%dG", s>>30)
	case s != 0 && s%(1<<20) == 0:
		return fmt.Sprintf("%dM", s>>20)
	case s != 0 && s%(1<<10) == 0:
		return fmt.Sprintf("%dK", s>>10)
	}
	return strconv.FormatInt(int64(s), 10)
}
