// Package workers finds the installed build workers and picks the one the
// daemon runs: the cgo worker whose TensorRT ABI matches the installed
// libnvinfer.so.N, if its probe succeeds, else the pure-Go worker that
// drives trtexec, with the reason.
//
// The package ships one cgo worker per TensorRT major version
// (trtd-worker-trt8, -trt10, -trt11 beside trtd-worker): TensorRT keeps
// its ABI within a major version and breaks it between majors, and the
// libraries' soname carries the major (libnvinfer.so.8, .so.10, .so.11).
package workers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/trtd/trtd/converter"
)

// Prefix names a cgo worker: Prefix + ABI, next to the fallback worker.
const Prefix = "trtd-worker-trt"

// Worker is one installed worker binary.
type Worker struct {
	Path string `json:"path"`
	// ABI is the TensorRT major version the worker calls through the C++
	// API; 0 is the pure-Go worker, which runs trtexec.
	ABI int `json:"abi,omitempty"`
}

// Name is the worker's one-word description: "trt10" or "trtexec".
func (w Worker) Name() string {
	if w.ABI == 0 {
		return "trtexec"
	}
	return "trt" + strconv.Itoa(w.ABI)
}

// Selection is which worker runs and why.
type Selection struct {
	// Present lists the workers installed, cgo ones by ABI, the fallback last.
	Present []Worker `json:"present"`
	// TensorRT maps each libnvinfer major found to the library's path.
	TensorRT map[int]string `json:"tensorrt,omitempty"`
	Chosen   Worker         `json:"chosen"`
	// Fallback is true when the pure-Go trtexec worker was chosen.
	Fallback bool `json:"fallback"`
	// Reason says why Chosen runs (and, on fallback, why no cgo worker does).
	Reason string `json:"reason"`
}

// Line is the one-line summary for logs and `trtd version`.
func (s Selection) Line() string {
	return fmt.Sprintf("%s (%s): %s", s.Chosen.Name(), s.Chosen.Path, s.Reason)
}

// PresentNames lists the installed workers by name: "trt8, trt10, trtexec".
func (s Selection) PresentNames() string {
	var n []string
	for _, w := range s.Present {
		n = append(n, w.Name())
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

// ErrNoWorker is returned by Discover when no worker is installed at all.
var ErrNoWorker = errors.New("no worker installed")

var cgoRe = regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `([0-9]+)$`)

// Discover lists the cgo workers in the fallback worker's directory (by
// ABI, ascending) and the fallback itself, each if it is an executable file.
func Discover(fallback string) ([]Worker, error) {
	var out []Worker
	ents, err := os.ReadDir(filepath.Dir(fallback))
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	for _, e := range ents {
		m := cgoRe.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		abi, _ := strconv.Atoi(m[1])
		p := filepath.Join(filepath.Dir(fallback), e.Name())
		if executable(p) {
			out = append(out, Worker{Path: p, ABI: abi})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ABI < out[j].ABI })
	if executable(fallback) {
		out = append(out, Worker{Path: fallback})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s or %s* in %s", ErrNoWorker, filepath.Base(fallback), Prefix, filepath.Dir(fallback))
	}
	return out, nil
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// DefaultLibDirs are where JetPack, NVIDIA's .debs and tarballs install
// libnvinfer (the directories the worker's loader searches too).
var DefaultLibDirs = []string{
	"/usr/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu/nvidia", "/usr/lib/x86_64-linux-gnu",
	"/usr/lib", "/usr/local/lib", "/usr/local/tensorrt/lib", "/opt/tensorrt/lib", "/usr/local/cuda/lib64",
}

// LibDirs is the search list for a worker environment: its
// LD_LIBRARY_PATH (env nil: this process's) before DefaultLibDirs.
func LibDirs(env []string) []string {
	ld, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "LD_LIBRARY_PATH="); found {
			ld, ok = v, true
		}
	}
	if env == nil {
		ld, ok = os.LookupEnv("LD_LIBRARY_PATH")
	}
	var dirs []string
	if ok {
		for _, d := range filepath.SplitList(ld) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	return append(dirs, DefaultLibDirs...)
}

var sonameRe = regexp.MustCompile(`^libnvinfer\.so\.([0-9]+)(\.[0-9.]+)?$`)

// Installed maps each TensorRT major found as libnvinfer.so.N (or a
// versioned file libnvinfer.so.N.x.y) in dirs to its path, the first
// directory winning as for the dynamic loader.
func Installed(dirs []string) map[int]string {
	found := map[int]string{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		here := map[int]string{}
		for _, e := range ents {
			m := sonameRe.FindStringSubmatch(e.Name())
			if m == nil {
				continue
			}
			abi, _ := strconv.Atoi(m[1])
			if _, ok := here[abi]; !ok || m[2] == "" { // the soname link itself over a versioned file
				here[abi] = filepath.Join(d, e.Name())
			}
		}
		for abi, p := range here {
			if _, seen := found[abi]; !seen {
				found[abi] = p
			}
		}
	}
	return found
}

// ProbeFunc runs a worker's probe on its API backend: nil when it loads
// TensorRT and sees a GPU, else the reason.
type ProbeFunc func(ctx context.Context, w Worker) error

// Select picks the worker to run: for each libnvinfer major installed,
// newest first, the cgo worker of that ABI if one is present and its probe
// passes; otherwise the fallback, with every reason a cgo worker was passed
// over. probe may be nil (no probing: the match alone decides, as for
// `trtd version`).
func Select(ctx context.Context, present []Worker, installed map[int]string, probe ProbeFunc) Selection {
	s := Selection{Present: present, TensorRT: installed}
	byABI := map[int]Worker{}
	var fallback *Worker
	var abis []string
	for i, w := range present {
		if w.ABI == 0 {
			fallback = &present[i]
			continue
		}
		byABI[w.ABI] = w
		abis = append(abis, strconv.Itoa(w.ABI))
	}
	var majors []int
	for m := range installed {
		majors = append(majors, m)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(majors)))
	var reasons []string
	if len(majors) == 0 {
		reasons = append(reasons, "no libnvinfer.so.N found (TensorRT is not installed where the loader looks)")
	}
	for _, m := range majors {
		w, ok := byABI[m]
		if !ok {
			reasons = append(reasons, fmt.Sprintf("%s is TensorRT %d.x, and no worker for it is installed (present: %s)",
				filepath.Base(installed[m]), m, strings.Join(orNone(abis), ", ")))
			continue
		}
		if probe != nil {
			if err := probe(ctx, w); err != nil {
				reasons = append(reasons, fmt.Sprintf("%s matches %s but its probe failed: %v", filepath.Base(w.Path), filepath.Base(installed[m]), err))
				continue
			}
			s.Chosen, s.Reason = w, fmt.Sprintf("matches %s (%s) and its probe passed", filepath.Base(installed[m]), installed[m])
		} else {
			s.Chosen, s.Reason = w, fmt.Sprintf("matches %s (%s)", filepath.Base(installed[m]), installed[m])
		}
		return s
	}
	s.Fallback = true
	if fallback != nil {
		s.Chosen = *fallback
		s.Reason = "trtexec fallback: " + strings.Join(reasons, "; ")
	} else {
		s.Reason = "no worker can build: " + strings.Join(reasons, "; ")
	}
	return s
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// Credential is the identity a worker runs as when the daemon is root: the
// user's uid, primary gid and supplementary groups (as login's initgroups
// sets them), so that adding the worker's user to the GPU device nodes'
// group (video on Jetson) is the documented fix. It fails when the daemon
// is not root (it cannot switch users) or the user does not exist.
func Credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, errors.New("worker.user is empty")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the daemon is not root, so it cannot switch users")
	}
	// Its primary group and every supplementary one (initgroups
	// semantics): on a Jetson the GPU nodes belong to group video.
	return converter.WorkerCredential(name)
}
