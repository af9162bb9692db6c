package provenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/treecopy"
)

// Dirs are the daemon directories a rebuild touches.
type Dirs struct {
	Inbox  string
	Outbox string
	State  string
}

// RebuildDir is where rebuild requests are recorded, under the state dir.
const RebuildDir = "rebuild"

// Action is what RequeueStale did (or, dry, would do) about one stale
// engine.
type Action struct {
	StaleEngine
	// KeptModel is the model trtd kept from the engine's job.
	KeptModel string
	// Requeued is true when the kept model was placed in the inbox.
	Requeued bool
	// Skipped says why it was not requeued ("" when it was, or would be).
	Skipped string
}

// Request is the marker state/rebuild/<sha256 prefix>-<model>.json: a
// rebuild of the kept model was requested for the fingerprint Now. It stops a restart
// from requeueing the same model again while (or after) it builds.
type Request struct {
	Job       string    `json:"job"`
	Model     string    `json:"model"`
	ModelSHA  string    `json:"model_sha256"`
	Requested time.Time `json:"requested"`
	Was       string    `json:"was"`
	Now       string    `json:"now"`
	Reasons   []string  `json:"reasons"`
	// Changed is set instead of a request when the kept model no longer
	// hashes to model_sha256: the file as it was then, so that the next
	// start does not hash it again while it stays the same.
	Changed *KeptFile `json:"changed,omitempty"`
}

// KeptFile identifies a kept model's bytes without reading them. ctime
// is in it because no process can set it back: a model damaged and then
// restored with `cp -p` has its old size, mtime and inode again, not its
// old ctime.
type KeptFile struct {
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
	Ino     uint64 `json:"ino"`
}

func keptFile(path string) (KeptFile, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return KeptFile{}, false
	}
	k := KeptFile{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.Ino, k.CtimeNs = st.Ino, st.Ctim.Nano()
	}
	return k, true
}

// RequeueStale finds the stale engines in dirs.Outbox and rebuilds each
// from its kept model: the model (with its settings file and companions)
// is placed in the inbox by a rename, where the daemon claims it as a new
// upload and builds it for the current builder; the new engine replaces
// the stale one. A model is requeued once per fingerprint (recorded under
// state/rebuild/), only when the kept bytes still hash to the provenance's
// model_sha256, and never over an upload of the same name in the inbox.
// With dry set nothing is written. The daemon calls it at start, once the
// builder is known; `trtd rebuild --stale` calls it on demand.
func RequeueStale(log *slog.Logger, dirs Dirs, cur Current, dry bool) ([]Action, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	stale, serr := StaleFor(dirs.Outbox, cur)
	now := cur.Builder.Fingerprint()
	if cur.L4T != "" {
		now += "/L4T " + cur.L4T
	}
	reqDir := filepath.Join(dirs.State, RebuildDir)
	var acts []Action
	for _, s := range stale {
		a := Action{StaleEngine: s}
		a.Skipped = requeueOne(log, dirs, reqDir, now, &a, dry)
		acts = append(acts, a)
	}
	if !dry {
		forgetDone(reqDir, stale)
	}
	return acts, serr
}

func requeueOne(log *slog.Logger, dirs Dirs, reqDir, now string, a *Action, dry bool) string {
	if !safeName(a.Job) || !safeName(a.Model) || !isHex(a.ModelSHA) {
		return fmt.Sprintf("the provenance names job %q, model %q and model_sha256 %q: not plain names and a sha256", a.Job, a.Model, a.ModelSHA)
	}
	marker := filepath.Join(reqDir, markerName(a.ModelSHA, a.Model))
	jobDir := filepath.Join(dirs.State, "jobs", a.Job)
	a.KeptModel = filepath.Join(jobDir, "model", a.Model)
	changed := fmt.Sprintf("the kept model %s does not hash to the engine's model_sha256 (it was changed): not rebuilt", a.KeptModel)
	var prev Request
	if b, err := os.ReadFile(marker); err == nil && json.Unmarshal(b, &prev) == nil && prev.Now == now {
		if prev.Changed == nil {
			return fmt.Sprintf("a rebuild was already requested at %s", prev.Requested.Format(time.RFC3339))
		}
		if k, ok := keptFile(a.KeptModel); ok && k == *prev.Changed {
			return changed // the same changed bytes: not hashed again
		}
	}
	before, _ := keptFile(a.KeptModel)
	sum, err := hashFile(a.KeptModel)
	if err != nil {
		a.KeptModel = ""
		return fmt.Sprintf("the model trtd kept from job %s is gone (%v): upload %s again to rebuild it", a.Job, errors.Unwrap(err), a.Model)
	}
	if sum != a.ModelSHA {
		if k, ok := keptFile(a.KeptModel); ok && k == before && !dry {
			record(log, reqDir, marker, Request{Job: a.Job, Model: a.Model, ModelSHA: a.ModelSHA, Requested: time.Now().UTC(),
				Was: a.Was, Now: now, Reasons: a.Reasons, Changed: &k})
		}
		return changed
	}
	if _, err := os.Lstat(filepath.Join(dirs.Inbox, a.Model)); err == nil {
		return fmt.Sprintf("an upload named %s is in the inbox: it is built instead", a.Model)
	}
	if dry {
		return ""
	}
	// Companions first (settings file, external data, samples), the model
	// last: its arrival is what the inbox acts on.
	var job struct {
		Sidecar string   `json:"sidecar"`
		Extra   []string `json:"extra"`
	}
	if b, err := os.ReadFile(filepath.Join(jobDir, "job.json")); err == nil {
		// A rebuild without the sidecar or the external data would make a
		// different engine under the same name.
		if err := json.Unmarshal(b, &job); err != nil {
			return fmt.Sprintf("the record of job %s is unreadable (%v): its companions are unknown, not rebuilt", a.Job, err)
		}
	}
	for _, c := range append([]string{job.Sidecar}, job.Extra...) {
		if c == "" || !safeName(c) {
			continue
		}
		dst := filepath.Join(dirs.Inbox, c)
		if _, err := os.Lstat(dst); err == nil {
			continue // the user's newer file wins
		}
		if err := place(filepath.Join(jobDir, "model", c), dst); err != nil {
			log.Warn("cannot place a companion of a stale engine's model in the inbox", "file", c, "err", err)
		}
	}
	if err := place(a.KeptModel, filepath.Join(dirs.Inbox, a.Model)); err != nil {
		return fmt.Sprintf("cannot place the kept model in the inbox: %v", err)
	}
	a.Requeued = true
	record(log, reqDir, marker, Request{Job: a.Job, Model: a.Model, ModelSHA: a.ModelSHA, Requested: time.Now().UTC(),
		Was: a.Was, Now: now, Reasons: a.Reasons})
	log.Info("stale engine: rebuilding from the kept model", "engine", a.Name, "job", a.Job, "model", a.Model,
		"reasons", strings.Join(a.Reasons, "; "), "event", "engine_stale_requeued")
	return ""
}

// hashFile hashes a kept model (a variable: the tests count its calls).
var hashFile = filehash.SHA256

// record writes a marker: a rebuild requested, or a kept model found
// changed. A marker that cannot be written only costs the check again at
// the next start.
func record(log *slog.Logger, reqDir, marker string, r Request) {
	if err := os.MkdirAll(reqDir, 0o755); err != nil {
		log.Warn("cannot record the rebuild request", "dir", reqDir, "err", err) // as the write below
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := atomicfile.WriteFile(marker, append(b, '\n'), 0o644); err != nil {
		log.Warn("cannot record the rebuild request", "file", marker, "err", err)
	}
}

// forgetDone removes rebuild markers of engines that are no longer stale
// (rebuilt, or removed from the outbox).
func forgetDone(reqDir string, stale []StaleEngine) {
	keep := map[string]bool{}
	for _, s := range stale {
		keep[markerName(s.ModelSHA, s.Model)] = true
	}
	ents, _ := os.ReadDir(reqDir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !keep[e.Name()] {
			// A marker left over only answers "already requested" for an
			// engine that is not stale; the next start tries again.
			_ = os.Remove(filepath.Join(reqDir, e.Name()))
		}
	}
}

// place puts src at dst through a hidden temporary name and a rename, so
// the inbox never sees a partial file: a hard link where possible, else a
// durable copy. Directories are copied whole.
func place(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), atomicfile.TempPrefix+filepath.Base(dst)+fmt.Sprintf("-%d", time.Now().UnixNano()))
	switch {
	case fi.IsDir():
		if err := treecopy.Durable(src, tmp); err != nil {
			_ = os.RemoveAll(tmp) // a temporary name the inbox ignores; the copy's error is returned
			return err
		}
	case fi.Mode().IsRegular():
		if err := os.Link(src, tmp); err != nil {
			if err := atomicfile.CopyFile(src, tmp, 0o644); err != nil {
				_ = os.Remove(tmp) // as above
				return err
			}
		}
	default:
		return fmt.Errorf("%s: not a regular file", src)
	}
	if err := atomicfile.RenameNoReplace(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp) // as above
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// markerName keys a rebuild request by the model's content and name, so
// the rebuilt job (a new job of the same model) is not requeued again.
func markerName(sha, model string) string {
	if len(sha) > 24 {
		sha = sha[:24]
	}
	return sha + "-" + model + ".json"
}

func isHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}
