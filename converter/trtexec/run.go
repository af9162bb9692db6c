package trtexec

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
	"github.com/trtd/trtd/internal/atomicfile"
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
	defer os.Remove(tmpEngine)
	cache := ""
	if req.Settings.TimingCache && req.TimingCache != "" {
		cache = filepath.Join(dir, atomicfile.TempPrefix+"timing.cache")
		defer os.Remove(cache)
		if err := atomicfile.CopyFile(req.TimingCache, cache, 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.Log.Warn("timing cache not copied; trtexec starts a new one", "err", err)
		}
	}
	args, skipped, err := Args(req, v, tmpEngine, cache)
	if err != nil {
		res.Class, res.Message = protocol.ClassBadRequest, err.Error()
		return res
	}
	res.Skipped = skipped
	res.Calls = append([]string{b.Trtexec}, args...)

	cmd := exec.CommandContext(ctx, b.Trtexec, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(o.Stderr, line)
			if out.Len() < 8<<20 {
				out.WriteString(line)
				out.WriteByte('\n')
			}
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
		io.Copy(io.Discard, pr)
	}()
	t0 := time.Now()
	err = cmd.Start()
	if err != nil {
		pw.Close()
		wg.Wait()
		res.Class, res.Message = protocol.ClassBuilderUnavailable, "TensorRT not available on this machine: starting trtexec: "+err.Error()
		return res
	}
	err = cmd.Wait()
	pw.Close()
	wg.Wait()
	res.BuildMs = time.Since(t0).Milliseconds()
	parseDevice(out.Bytes(), &res.Builder)

	if err != nil {
		if ctx.Err() != nil {
			res.Class, res.Message = protocol.ClassCanceled, "canceled: trtexec was stopped"
			return res
		}
		oc := classify.Outcome{ExitCode: cmd.ProcessState.ExitCode(), Log: out.Bytes()}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			oc.Signal = ws.Signal()
		}
		if c, r, ok := classify.ClassifyLog(out.Bytes()); ok && oc.Signal == 0 {
			res.Class, res.Message = c, r
		} else {
			res.Class, res.Message = classify.Classify(oc)
			if res.Class == protocol.ClassCrashed && oc.Signal == 0 {
				res.Message = fmt.Sprintf("trtexec exited with status %d: %s", oc.ExitCode, res.Message)
			}
		}
		return res
	}
	data, err := os.ReadFile(tmpEngine)
	if err != nil || len(data) == 0 {
		res.Class, res.Message = protocol.ClassCrashed, fmt.Sprintf("trtexec exited 0 but wrote no engine (%v)", err)
		return res
	}
	if req.ValidateRuns >= 0 {
		p, ok := ParsePerf(out.Bytes())
		if !ok {
			res.Class, res.Message = protocol.ClassInvalidEngine, "trtexec built the engine but printed no performance summary: it did not run"
			return res
		}
		runs := req.ValidateRuns
		if runs == 0 {
			runs = DefaultValidateRuns
		}
		res.Validation = &protocol.Validation{Runs: runs, P50Ms: p.P50Ms, P99Ms: p.P99Ms, Outputs: p.Outputs}
	}
	if err := atomicfile.WriteFile(req.Engine, data, 0o644); err != nil {
		res.Class, res.Message = protocol.ClassCrashed, "writing the engine: "+err.Error()
		return res
	}
	if cache != "" {
		if blob, err := os.ReadFile(cache); err == nil && len(blob) > 0 {
			if err := os.MkdirAll(filepath.Dir(req.TimingCache), 0o755); err == nil {
				err = atomicfile.WriteFile(req.TimingCache, blob, 0o644)
			}
			if err != nil {
				o.Log.Warn("timing cache not saved", "path", req.TimingCache, "err", err)
			}
		}
	}
	sum := sha256.Sum256(data)
	res.Engine, res.EngineBytes, res.EngineSHA256 = req.Engine, int64(len(data)), hex.EncodeToString(sum[:])
	res.Class, res.Message = protocol.ClassOK, fmt.Sprintf("built with trtexec (TensorRT %s) in %d ms", b.TensorRT, res.BuildMs)
	return res
}
