package trtexec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/filehash"
)

// DefaultPath is where JetPack and the TensorRT packages install trtexec.
const DefaultPath = "/usr/src/tensorrt/bin/trtexec"

// ErrNotFound: no trtexec binary.
var ErrNotFound = errors.New("trtexec not found")

// Find returns explicit if set, else DefaultPath (under root) if it
// exists, else trtexec from $PATH.
func Find(explicit, root string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return explicit, nil
	}
	def := filepath.Join(root, DefaultPath)
	if st, err := os.Stat(def); err == nil && st.Mode().IsRegular() {
		return def, nil
	}
	if p, err := exec.LookPath("trtexec"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked at %s and $PATH)", ErrNotFound, def)
}

// Options are what Build needs from the worker.
type Options struct {
	Log    *slog.Logger
	Emit   func(protocol.Event)
	Stderr io.Writer // trtexec's output, line by line
	Root   string    // prefix for DefaultPath ("/" in production)
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Emit == nil {
		o.Emit = func(protocol.Event) {}
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Root == "" {
		o.Root = "/"
	}
}

// Version runs "trtexec --help" and reads its banner.
func Version(ctx context.Context, bin string) (version.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput() // exits non-zero on some versions
	v, ok := ParseVersion(out)
	if !ok {
		return version.Version{}, fmt.Errorf("%s --help printed no \"[TensorRT vNNNN]\" banner: %q", bin, firstLine(out))
	}
	return v, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Probe finds trtexec and its version.
func Probe(ctx context.Context, explicit string, o Options) (protocol.Builder, protocol.Class, string) {
	o.defaults()
	b := protocol.Builder{Backend: "trtexec"}
	bin, err := Find(explicit, o.Root)
	if err != nil {
		return b, protocol.ClassBuilderUnavailable, "TensorRT not available on this machine: " + err.Error()
	}
	b.Trtexec = bin
	v, err := Version(ctx, bin)
	if err != nil {
		return b, protocol.ClassBuilderUnavailable, "TensorRT not available on this machine: " + err.Error()
	}
	b.TensorRT = v.String()
	if _, ok := parserRelease(v); !ok {
		return b, protocol.ClassBuilderUnavailable, fmt.Sprintf("TensorRT %s (%s) is not supported: trtd drives trtexec of TensorRT 8.0 (JetPack 4.6) and newer, except 9.x", v, bin)
	}
	return b, protocol.ClassOK, ""
}

// Build runs trtexec for one stage. Paths in req are relative to the
// working directory the worker changed to; the engine is written to a
// temporary file next to req.Engine and renamed after trtexec succeeded
// (and, unless ValidateRuns is -1, ran it).
func Build(ctx context.Context, req protocol.Request, o Options) *protocol.Result {
	o.defaults()
	b, c, msg := Probe(ctx, req.Trtexec, o)
	res := &protocol.Result{Builder: b}
	if c != protocol.ClassOK {
		res.Class, res.Message = c, msg
		return res
	}
	v, _ := version.Parse(b.TensorRT)
	dir := filepath.Dir(req.Engine)
	tmpEngine := filepath.Join(dir, atomicfile.TempPrefix+filepath.Base(req.Engine))
	// Gone after a successful rename; after a failure the result says what
	// failed, and a temp a failed Remove leaves is swept as a trtd temp.
	defer func() { _ = os.Remove(tmpEngine) }()
	cache := ""
	if req.Settings.TimingCache && req.TimingCache != "" {
		cache = filepath.Join(dir, atomicfile.TempPrefix+"timing.cache")
		defer func() { _ = os.Remove(cache) }() // a copy of the cache; same as tmpEngine
		if err := atomicfile.CopyFile(req.TimingCache, cache, 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.Log.Warn("timing cache not copied; trtexec starts a new one", "err", err)
		}
	}
	if req.Calibration != "" {
		// --calib= only for a cache that exists (the worker runs in
		// WorkDir): an earlier API stage, or an earlier build of the same
		// calibration data, wrote it. trtexec cannot calibrate from the
		// uploaded batches itself, so without the cache int8 is refused.
		if fi, err := os.Stat(req.Calibration); err != nil || !fi.Mode().IsRegular() {
			req.Calibration = ""
		}
	}
	line, err := Args(req, v, tmpEngine, cache, inspect(req))
	if err != nil {
		res.Class, res.Message = protocol.ClassBadRequest, err.Error()
		return res
	}
	args := line.Args
	res.Skipped, res.Int8 = line.Skipped, line.Int8
	res.Calls = append([]string{b.Trtexec}, args...)

	cmd := exec.CommandContext(ctx, b.Trtexec, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	out := newCapture(headBytes, tailBytes)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readOutput(pr, o, out, res)
	}()
	t0 := time.Now()
	err = cmd.Start()
	if err != nil {
		_ = pw.Close() // (*io.PipeWriter).Close always returns nil
		wg.Wait()
		res.Class, res.Message = protocol.ClassBuilderUnavailable, "TensorRT not available on this machine: starting trtexec: "+err.Error()
		return res
	}
	err = cmd.Wait()
	_ = pw.Close() // (*io.PipeWriter).Close always returns nil
	wg.Wait()
	res.BuildMs = time.Since(t0).Milliseconds()
	parseDevice(out.head.Bytes(), &res.Builder)
	log := out.tail.Bytes()

	var failed string
	if err != nil {
		if ctx.Err() != nil {
			res.Class, res.Message = protocol.ClassCanceled, "canceled: trtexec was stopped"
			return res
		}
		res.Class, res.Message = classifyExit(cmd.ProcessState, log)
		if !engineComplete(log, tmpEngine) {
			return res
		}
		// The engine was built and saved; only trtexec's own inference run
		// failed. Keep it, unvalidated, and say why.
		failed = fmt.Sprintf("validation: trtexec built and saved the engine, then its inference run failed (%s: %s); the engine is kept unvalidated", res.Class, res.Message)
		res.Skipped = append(res.Skipped, failed)
	}
	data, err := os.ReadFile(tmpEngine)
	if err != nil || len(data) == 0 {
		res.Class, res.Message = protocol.ClassCrashed, fmt.Sprintf("trtexec exited 0 but wrote no engine (%v)", err)
		return res
	}
	if req.ValidateRuns >= 0 && failed == "" {
		p, ok := ParsePerf(log)
		if !ok {
			res.Class, res.Message = protocol.ClassInvalidEngine, "trtexec built the engine but printed no performance summary: it did not run"
			return res
		}
		runs := req.ValidateRuns
		if runs == 0 {
			runs = DefaultValidateRuns
		}
		res.Validation = &protocol.Validation{Runs: runs, P50Ms: p.P50Ms, P99Ms: p.P99Ms, Outputs: p.Outputs, LatencyIncludesTransfers: true}
	}
	if err := atomicfile.WriteFile(req.Engine, data, 0o644); err != nil {
		res.Class, res.Message = protocol.ClassCrashed, "writing the engine: "+err.Error()
		return res
	}
	if cache != "" {
		saveCache(cache, req.TimingCache, o.Log)
	}
	res.Engine, res.EngineBytes, res.EngineSHA256 = req.Engine, int64(len(data)), filehash.Bytes(data)
	res.Class, res.Message = protocol.ClassOK, fmt.Sprintf("built with trtexec (TensorRT %s) in %d ms", b.TensorRT, res.BuildMs)
	if failed != "" {
		res.Message += "; " + failed
	}
	return res
}

// readOutput streams trtexec's output to o.Stderr, keeps its head and
// tail, and turns memory accounting, warnings and errors into events.
func readOutput(pr io.Reader, o Options, out *capture, res *protocol.Result) {
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// A log copy; the line is kept in out and the events below, so a
		// failed write to it must not stop reading trtexec's output.
		_, _ = fmt.Fprintln(o.Stderr, line)
		out.line(line)
		now := time.Now()
		if u, ok := classify.ParseMemUsage(line); ok {
			res.MemUsage = append(res.MemUsage, u)
			o.Emit(protocol.Event{Event: protocol.EventMemUsage, Time: now, Mem: &u})
		}
		if strings.Contains(line, "[E]") || strings.Contains(line, "[W]") {
			sev := "warning"
			if strings.Contains(line, "[E]") {
				sev = "error"
			}
			o.Emit(protocol.Event{Event: protocol.EventLog, Time: now, Severity: sev, Message: line})
		}
	}
	// Keep trtexec from blocking on a line too long for the scanner; an
	// error here is the pipe's, and trtexec's exit status reports it.
	_, _ = io.Copy(io.Discard, pr)
}

// classifyExit classifies a trtexec that failed (non-zero exit or a
// signal) from the end of its output.
func classifyExit(ps *os.ProcessState, log []byte) (protocol.Class, string) {
	oc := classify.Outcome{ExitCode: ps.ExitCode(), Log: log}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		oc.Signal = ws.Signal()
	}
	if c, r, ok := classify.ClassifyFailed(log); ok && oc.Signal == 0 {
		return c, r
	}
	c, r := classify.Classify(oc)
	if c == protocol.ClassCrashed && oc.Signal == 0 {
		r = fmt.Sprintf("trtexec exited with status %d: %s", oc.ExitCode, r)
	}
	return c, r
}

// saveCache writes trtexec's timing cache back to where the daemon keeps it.
func saveCache(tmp, dst string, log *slog.Logger) {
	blob, err := os.ReadFile(tmp)
	if err != nil || len(blob) == 0 {
		return
	}
	if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
		err = atomicfile.WriteFile(dst, blob, 0o644)
	}
	if err != nil {
		log.Warn("timing cache not saved", "path", dst, "err", err)
	}
}

// inspect reads what Args needs from the model: whether it carries Q/DQ
// nodes (only looked at for int8 stages). A model that cannot be read is
// treated as having none; trtexec reports the real problem.
func inspect(req protocol.Request) Model {
	if req.Settings.Precision != protocol.PrecisionINT8 {
		return Model{}
	}
	m, err := onnx.Open(req.Model)
	if err != nil {
		return Model{}
	}
	return Model{QDQ: m.HasQDQ()}
}

// Output kept of one trtexec run: the head (the device information it
// prints first) and the tail (the lines that end a build: the fatal error,
// the performance summary). A verbose build prints hundreds of MiB; the
// middle is only streamed to the journal.
const (
	headBytes = 256 << 10
	tailBytes = 8 << 20
)

type capture struct {
	head bytes.Buffer
	tail *ring
}

func newCapture(head, tail int) *capture {
	return &capture{tail: &ring{limit: tail}, head: bytes.Buffer{}}
}

func (c *capture) line(l string) {
	if c.head.Len() < headBytes {
		c.head.WriteString(l)
		c.head.WriteByte('\n')
	}
	c.tail.write(l)
}

// ring keeps the last limit bytes of whole lines.
type ring struct {
	limit int
	lines []string
	first int // lines[first:] are kept
	size  int
}

func (r *ring) write(l string) {
	if len(l) >= r.limit {
		l = l[len(l)-r.limit+1:]
	}
	r.lines = append(r.lines, l)
	r.size += len(l) + 1
	for r.size > r.limit {
		r.size -= len(r.lines[r.first]) + 1
		r.lines[r.first] = ""
		r.first++
	}
	if r.first > 1024 && r.first > len(r.lines)/2 {
		r.lines = append(r.lines[:0], r.lines[r.first:]...)
		r.first = 0
	}
}

func (r *ring) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(r.size)
	for _, l := range r.lines[r.first:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

var (
	// 8.x: trtexec.cpp prints "Engine built in N sec." once
	// getEngineBuildEnv (which saves the engine) returned one (8.0 :156,
	// 8.2 :191, 8.6 :416).
	reBuilt8 = regexp.MustCompile(`\bEngine built in [\d.]+ sec\.`)
	// 10.x+: sampleEngines.cpp prints the size before saving it (10.0
	// :1237, 10.8 :1221); the file must then have that size.
	reBuiltSize = regexp.MustCompile(`Created engine with size: ([\d.]+) MiB`)
	reSetUpFail = regexp.MustCompile(`Engine set up failed|Saving engine to file failed`)
)

// engineComplete reports whether trtexec finished writing the engine file
// before it failed, so that the failure was in its inference run.
func engineComplete(log []byte, path string) bool {
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 || reSetUpFail.Match(log) {
		return false
	}
	if m := reBuiltSize.FindSubmatch(log); m != nil {
		mib, _ := strconv.ParseFloat(string(m[1]), 64)
		got := float64(st.Size()) / (1 << 20)
		return math.Abs(got-mib) <= 0.001*mib+0.01
	}
	return reBuilt8.Match(log)
}
