// Package provenance reads and checks the <name>.engine.json files trtd
// writes beside every engine: what the engine was built from (model sha256,
// resolved settings, the stage that succeeded) and what it is tied to
// (TensorRT version, GPU and compute capability, L4T release, plugin
// library hashes, timing cache). An engine whose builder fingerprint no
// longer matches this device's (after a JetPack or TensorRT upgrade) is
// stale; Stale lists those, and RequeueStale rebuilds them from the models
// trtd kept.
package provenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/dirstream"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/l4t"
	"github.com/trtd/trtd/internal/untrusted"
)

// Suffix is the provenance file's suffix: <name>.engine.json.
const Suffix = ".engine.json"

// SchemaVersion of the provenance file.
const SchemaVersion = 1

// ErrCorrupt is wrapped when a provenance file cannot be understood.
var ErrCorrupt = errors.New("unreadable provenance")

// Provenance is the content of <name>.engine.json. The fields up to Parts
// are the ones trtd has always written; L4T, SoC, Plugins and TimingCache
// complete the fingerprint.
type Provenance struct {
	Schema      int               `json:"schema"`
	Engine      string            `json:"engine"`
	EngineSHA   string            `json:"engine_sha256"`
	ModelSHA    string            `json:"model_sha256"`
	Model       string            `json:"model"`
	Stage       string            `json:"stage"`
	Settings    json.RawMessage   `json:"settings,omitempty"`
	Builder     *protocol.Builder `json:"builder"`
	Fingerprint string            `json:"fingerprint"`
	CacheKey    string            `json:"cache_key"`
	Job         string            `json:"job"`
	Built       time.Time         `json:"built"`
	Tool        string            `json:"tool"`
	Parts       map[string]string `json:"parts,omitempty"`
	// L4T is the Jetson L4T release ("32.7.4"); "" off Jetson.
	L4T string `json:"l4t,omitempty"`
	// SoC is the Jetson SoC ("tegra210"); "" off Jetson.
	SoC string `json:"soc,omitempty"`
	// Plugins maps each TensorRT plugin library's path to its sha256.
	Plugins map[string]string `json:"plugins,omitempty"`
	// TimingCache identifies the timing cache the build used: its file
	// name and the sha256 of its content when the build started.
	TimingCache string `json:"timing_cache,omitempty"`
	// Offload names the peer that built the engine, when it was offloaded.
	Offload string `json:"offload,omitempty"`
}

// MaxBytes caps a provenance file: one fetched from an offload peer is
// untrusted and must not become an unbounded read.
const MaxBytes = 1 << 20

// Read parses one provenance file (at most MaxBytes).
func Read(path string) (*Provenance, error) {
	b, err := untrusted.ReadFileLimit(path, MaxBytes)
	if err != nil {
		if errors.Is(err, untrusted.ErrTooLarge) {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Parse decodes a provenance document; every error wraps ErrCorrupt.
func Parse(b []byte) (*Provenance, error) {
	var p Provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if p.ModelSHA == "" {
		return nil, fmt.Errorf("%w: no model_sha256", ErrCorrupt)
	}
	return &p, nil
}

// Write stores p as path atomically.
func Write(path string, p *Provenance) error {
	if p.Schema == 0 {
		p.Schema = SchemaVersion
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// Current is the fingerprint of this device's builder: what an engine
// built here is tied to.
type Current struct {
	Builder protocol.Builder
	L4T     string
	// Plugins, when non-nil, are the plugin library hashes now
	// (PluginHashes).
	Plugins map[string]string
}

// Differences lists, in plain words, why an engine with provenance p does
// not run on the builder cur; none means it matches. Fields p did not
// record are not held against it.
func Differences(p *Provenance, cur Current) []string {
	var d []string
	if p.Builder == nil {
		return []string{"the provenance records no builder"}
	}
	// Only what both sides know is compared: the trtexec backend's
	// start-up probe reads the TensorRT version from trtexec's banner but
	// learns the GPU only from a build's output, so an empty field on
	// either side is no evidence of a change.
	b := p.Builder
	if differ(b.TensorRT, cur.Builder.TensorRT) {
		d = append(d, fmt.Sprintf("built with TensorRT %s, this device now has %s", b.TensorRT, cur.Builder.TensorRT))
	}
	if differ(b.ComputeCapability, cur.Builder.ComputeCapability) {
		d = append(d, fmt.Sprintf("built for compute capability %s, this GPU is %s", b.ComputeCapability, cur.Builder.ComputeCapability))
	}
	if differ(b.GPU, cur.Builder.GPU) {
		d = append(d, fmt.Sprintf("built on GPU %q, this device has %q", b.GPU, cur.Builder.GPU))
	}
	if p.L4T != "" && cur.L4T != "" && p.L4T != cur.L4T {
		d = append(d, fmt.Sprintf("built on L4T %s, this device runs L4T %s", p.L4T, cur.L4T))
	}
	if p.Plugins != nil && cur.Plugins != nil {
		for _, lib := range sortedKeys(p.Plugins) {
			now, ok := cur.Plugins[lib]
			switch {
			case !ok:
				d = append(d, fmt.Sprintf("plugin library %s is gone", lib))
			case now != p.Plugins[lib]:
				d = append(d, fmt.Sprintf("plugin library %s changed", lib))
			}
		}
	}
	return d
}

// StaleEngine is an engine in the outbox that this device's builder can
// no longer run.
type StaleEngine struct {
	// Name is the outbox stem: <Name>.engine, <Name>.engine.json.
	Name       string
	Provenance string // path of <Name>.engine.json
	Files      []string
	Job        string
	Model      string
	ModelSHA   string
	Stage      string
	Built      time.Time
	Was        string // the fingerprint it was built for
	Reasons    []string
}

// Stale reads every provenance file in outbox and returns the engines
// current (with the L4T release l4t, "" off Jetson) cannot run, by name.
// Engines whose files were removed from the outbox are not listed; an
// unreadable provenance file is an error naming it, after the others were
// checked.
func Stale(outbox string, current protocol.Builder, l4t string) ([]StaleEngine, error) {
	return StaleFor(outbox, Current{Builder: current, L4T: l4t})
}

// StaleFor is Stale with plugin hashes.
func StaleFor(outbox string, cur Current) ([]StaleEngine, error) {
	var out []StaleEngine
	var errs []error
	// The outbox is read a batch of entries at a time: with a long
	// history it holds 10,000 files, most of them not provenance.
	err := dirstream.Each(outbox, func(e fs.DirEntry) error {
		n := e.Name()
		if !strings.HasSuffix(n, Suffix) || atomicfile.IsTemp(n) || !e.Type().IsRegular() {
			return nil
		}
		path := filepath.Join(outbox, n)
		p, err := Read(path)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		diff := Differences(p, cur)
		if len(diff) == 0 {
			return nil
		}
		files := engineFiles(outbox, p)
		if len(files) == 0 {
			return nil
		}
		s := StaleEngine{Name: strings.TrimSuffix(n, Suffix), Provenance: path, Files: files, Job: p.Job, Model: p.Model,
			ModelSHA: p.ModelSHA, Stage: p.Stage, Built: p.Built, Reasons: diff}
		if p.Builder != nil {
			s.Was = p.Builder.Fingerprint()
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", outbox, err)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, errors.Join(errs...)
}

// engineFiles returns the outbox files p describes that still exist.
func engineFiles(outbox string, p *Provenance) []string {
	var names []string
	if p.Engine != "" {
		names = append(names, p.Engine)
	}
	names = append(names, sortedKeys(p.Parts)...)
	var out []string
	for _, n := range names {
		if n != filepath.Base(n) {
			continue // never follow a path out of the outbox
		}
		if fi, err := os.Lstat(filepath.Join(outbox, n)); err == nil && fi.Mode().IsRegular() {
			out = append(out, filepath.Join(outbox, n))
		}
	}
	return out
}

// ReadL4T returns the L4T release from etc/nv_tegra_release under root
// ("32.7.4"), or "" when the file is absent (not a Jetson).
func ReadL4T(root string) (string, error) { return l4t.Read(filepath.Join(root, "etc")) }

// PluginHashes returns the sha256 of each TensorRT plugin library the
// builder loaded (Builder.Libraries entries whose soname names a plugin),
// keyed by resolved path. Unreadable libraries are left out.
func PluginHashes(b protocol.Builder) map[string]string {
	out := map[string]string{}
	for soname, path := range b.Libraries {
		if !strings.Contains(soname, "plugin") || path == "" {
			continue
		}
		if sum, err := filehash.SHA256(path); err == nil {
			out[path] = sum
		}
	}
	return out
}

// TimingCacheID names a timing cache file by its base name and content
// hash; "" when there is none yet.
func TimingCacheID(path string) string {
	if path == "" {
		return ""
	}
	sum, err := filehash.SHA256(path)
	if err != nil {
		return ""
	}
	return filepath.Base(path) + "@sha256:" + sum[:16]
}

// differ reports whether two known values differ; an unknown ("") value
// differs from nothing.
func differ(was, now string) bool { return was != "" && now != "" && was != now }

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
