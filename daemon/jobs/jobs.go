// Package jobs is trtd's persistent job store. Each job is a directory
// under state/jobs/<id>/ holding job.json (a small state machine replaced
// atomically on every transition), the claimed model (moved out of the
// inbox by a same-filesystem rename, so the inbox only shows what nobody
// has claimed) and the worker's scratch directory.
//
// On start the daemon reconciles: jobs caught mid-claim are completed or
// undone, jobs caught mid-build go back to the queue (up to a limit, so a
// model that crashes the machine cannot loop forever), and nothing a user
// uploaded is ever deleted.
package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/faultpoint"
	"github.com/trtd/trtd/internal/untrusted"
)

// State of a job.
type State string

// Job states. Terminal: done, failed. waiting is a parked state: no builder
// (TensorRT) on this machine; the job is retried when one appears.
const (
	Claiming State = "claiming" // job.json written, model not yet moved in
	Queued   State = "queued"
	Building State = "building"
	Waiting  State = "waiting_for_builder"
	// Failing: the job's outcome is decided (failed or rejected) and its
	// report saved in the job (failure.json); moving the model aside and
	// publishing the report are under way. A restart finishes them.
	Failing State = "failing"
	Done    State = "done"
	Failed  State = "failed"
)

// Terminal reports whether no more work happens on a job in state s.
func (s State) Terminal() bool { return s == Done || s == Failed }

// Step names of the persisted steps inside a build, recorded in job.json so
// a crash at any point is recoverable (and testable).
const (
	StepClaimed         = "claimed"
	StepPlanned         = "planned"
	StepSwapReady       = "swap_ready"
	StepWorkerStarted   = "worker_started"
	StepWorkerFinished  = "worker_finished"
	StepEngineTemp      = "engine_temp_written"
	StepEngineSynced    = "engine_fsynced"
	StepEngineRenamed   = "engine_renamed"
	StepCommitted       = "committed"
	StepInputArchived   = "input_archived"
	StepReportPublished = "report_published"
	StepFailing         = "failing"
	// StepClaimModelMoved is a fault point inside the claim: the model is
	// in the job, its companions not yet.
	StepClaimModelMoved = "claim_model_moved"
	// StepClaimCopy is where the claim moves (or copies) the model: a
	// fault-injection delay there stands for a large copy across
	// filesystems.
	StepClaimCopy = "claim_copy"
	// StepOutboxBlocked (state waiting_for_builder): built, the engine kept
	// in the cache, waiting for the outbox to take it.
	StepOutboxBlocked = "outbox_blocked"
)

// FailureFile holds, inside a job's directory, the report of a job whose
// failure is being recorded (State Failing).
const FailureFile = "failure.json"

// ErrStillWriting: the upload grew after it was judged complete.
var ErrStillWriting = errors.New("the upload is still being written")

// MaxRecoveries is how many daemon restarts a job survives mid-build before
// it is failed with that reason.
const MaxRecoveries = 3

// Transition is one entry of a job's history.
type Transition struct {
	At    time.Time `json:"at"`
	State State     `json:"state"`
	Step  string    `json:"step,omitempty"`
	Note  string    `json:"note,omitempty"`
}

// Job is the persisted record of one uploaded model.
type Job struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"` // file name as uploaded ("resnet18.onnx")
	State       State     `json:"state"`
	Step        string    `json:"step,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	ModelSize   int64     `json:"model_size"`
	ModelSHA256 string    `json:"model_sha256,omitempty"`
	Sidecar     string    `json:"sidecar,omitempty"` // file name of the claimed sidecar, if any
	Extra       []string  `json:"extra,omitempty"`   // other claimed files (external data, samples)
	CacheKey    string    `json:"cache_key,omitempty"`
	Stage       string    `json:"stage,omitempty"`
	Recoveries  int       `json:"recoveries,omitempty"`
	Outcome     string    `json:"outcome,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	EngineSHA   string    `json:"engine_sha256,omitempty"`
	Outputs     []string  `json:"outputs,omitempty"`
	NextRetry   time.Time `json:"next_retry,omitempty"`
	// Refused is why the claim refused the job (a companion over its
	// cap): it is claimed whole, so nothing is left behind, and then
	// failed with this reason and its report, never built.
	Refused string `json:"refused,omitempty"`
	// ClaimDir is the inbox the claim takes the model and its companions
	// from: Sidecar and Extra are recorded before anything moves, so a
	// claim cut short by a crash is completed with all of them.
	ClaimDir string `json:"claim_dir,omitempty"`
	// ModelChanges counts the builds thrown away because the model's bytes
	// changed under them (an upload still being written after its claim).
	ModelChanges int          `json:"model_changes,omitempty"`
	History      []Transition `json:"history"`
}

// Base is the model name without its .onnx extension: the stem of every
// output file.
func (j *Job) Base() string { return strings.TrimSuffix(j.Name, ".onnx") }

// Store keeps jobs under Root.
type Store struct {
	Root   string // state/jobs
	Now    func() time.Time
	Limits Limits // caps on companions (zero: DefaultLimits)
}

// Open prepares the store directory.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("job store %s: %w", root, err)
	}
	return &Store{Root: root, Now: time.Now}, nil
}

// Dir is the job's directory.
func (s *Store) Dir(j *Job) string { return filepath.Join(s.Root, j.ID) }

// ModelPath is where the claimed model lives.
func (s *Store) ModelPath(j *Job) string { return filepath.Join(s.Dir(j), "model", j.Name) }

// WorkDir is the worker's scratch directory.
func (s *Store) WorkDir(j *Job) string { return filepath.Join(s.Dir(j), "work") }

// Save persists j atomically.
func (s *Store) Save(j *Job) error {
	j.Updated = s.Now().UTC()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir(j), "job.json"), append(b, '\n'), 0o644)
}

// Transition moves j to state (and step), records it, and saves.
func (s *Store) Transition(j *Job, state State, step, note string) error {
	j.State, j.Step = state, step
	j.History = append(j.History, Transition{At: s.Now().UTC(), State: state, Step: step, Note: note})
	return s.Save(j)
}

// Mark records a step inside the current state and saves.
func (s *Store) Mark(j *Job, step string) error { return s.Transition(j, j.State, step, "") }

// Load reads one job.
func (s *Store) Load(id string) (*Job, error) {
	b, err := os.ReadFile(filepath.Join(s.Root, id, "job.json"))
	if err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job %s: corrupt job.json: %w", id, err)
	}
	return &j, nil
}

// List returns every job, oldest first.
func (s *Store) List() ([]*Job, error) {
	out, _, err := s.scan(nil)
	return out, err
}

// ListWhere returns the jobs keep accepts, oldest first. Each job.json is
// decoded and, unless kept, dropped at once: with 10,000 finished jobs in
// the store, a caller that wants the few unfinished ones does not hold
// every record (about 2 KiB each) at the same time. keep may trim what it
// keeps (a History it does not need).
func (s *Store) ListWhere(keep func(*Job) bool) ([]*Job, error) {
	out, _, err := s.scan(keep)
	return out, err
}

// Unfinished accepts the jobs that are not terminal.
func Unfinished(j *Job) bool { return !j.State.Terminal() }

// scan reads every job once: the readable ones keep accepts (all when nil),
// oldest first, and why each other job directory could not be read.
func (s *Store) scan(keep func(*Job) bool) ([]*Job, map[string]error, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return nil, nil, err
	}
	var out []*Job
	bad := map[string]error{}
	for _, e := range ents {
		if !e.IsDir() || atomicfile.IsTemp(e.Name()) {
			continue
		}
		j, err := s.Load(e.Name())
		if err != nil {
			bad[e.Name()] = err
			continue
		}
		if keep != nil && !keep(j) {
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Created.Equal(out[b].Created) {
			return out[a].ID < out[b].ID
		}
		return out[a].Created.Before(out[b].Created)
	})
	return out, bad, nil
}

// NewID makes a job id: UTC time plus a short random-free discriminator
// from the name, size and inode (unique for distinct uploads).
func NewID(now time.Time, name string, size int64, ino uint64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%d", name, size, ino, now.UnixNano())))
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(h[:4])
}

// Claim takes src (a ready file in the inbox) into a new job: job.json is
// written first in state claiming, then the model is renamed in, then the
// job is queued. extra are companion files (sidecar, external data) moved
// along; a missing companion is skipped. ino is the inode the inbox checked
// (0: none): anything else found under src is not claimed.
func (s *Store) Claim(src, name string, size int64, ino uint64, extra []string) (*Job, error) {
	// job.json and the worker's request are JSON, which cannot carry
	// invalid UTF-8: the claimed copy gets a name that survives the round
	// trip, or the worker would be told to open a file that does not exist.
	name = strings.ToValidUTF8(name, "\uFFFD")
	now := s.Now().UTC()
	j := &Job{ID: NewID(now, name, size, ino), Name: name, State: Claiming, Created: now, ModelSize: size, ClaimDir: filepath.Dir(src)}
	j.History = []Transition{{At: now, State: Claiming}}
	// Record the whole claim before anything moves (F-10): a crash after
	// the model moved but before its sidecar did must not build the model
	// without its settings.
	for _, e := range extra {
		if strings.HasSuffix(e, ".toml") {
			j.Sidecar = companionName(j, e)
		} else {
			j.Extra = append(j.Extra, companionName(j, e))
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Dir(j), "model"), 0o755); err != nil {
		_ = os.RemoveAll(s.Dir(j)) // F-21: no empty job directory per failed claim; Reconcile drops one left, and the claim's error is returned
		return nil, err
	}
	if err := s.Save(j); err != nil {
		_ = os.RemoveAll(s.Dir(j)) // nothing of the upload is in it yet (as above)
		return nil, err
	}
	faultpoint.Delay(StepClaimCopy)
	if err := moveInto(src, s.ModelPath(j), ino); err != nil {
		if errors.Is(err, untrusted.ErrChanged) && !putBack(s.ModelPath(j), src) {
			// What was moved in is not what was checked, and its name in
			// the inbox is taken again: keep it here, never built.
			j.Outcome, j.Reason = "rejected", "the file changed between its check and its claim"
			if terr := s.Transition(j, Failed, StepClaimed, j.Reason); terr != nil {
				err = errors.Join(err, terr) // Reconcile then finds the job unfinished, its model kept
			}
			return nil, fmt.Errorf("claim %s: %w", name, err)
		}
		_ = os.RemoveAll(s.Dir(j)) // only job.json is there (as above)
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	// F-14: nothing may follow what the inbox judged complete. A file that
	// grew since (an upload that paused at a field boundary and went on)
	// goes back to the inbox to settle again.
	if fi, err := os.Stat(s.ModelPath(j)); err == nil && size > 0 && fi.Size() != size {
		if putBack(s.ModelPath(j), src) {
			_ = os.RemoveAll(s.Dir(j)) // the model is back in the inbox: only job.json is here (as above)
			return nil, fmt.Errorf("claim %s: %w: %d bytes, %d when it was judged complete", name, ErrStillWriting, fi.Size(), size)
		}
	}
	faultpoint.Hit(slog.Default(), StepClaimModelMoved)
	for _, e := range extra {
		if j.Refused == "" {
			j.Refused = s.limits().check(e)
		}
		dst := filepath.Join(s.Dir(j), "model", companionName(j, e))
		move := moveInto
		if IsDirCompanion(e) {
			// name.calib/ is claimed in this same step as name.test/
			// (F-10): recorded before anything moved, so a crash never
			// builds int8 without the calibration data that was uploaded.
			move = moveDirInto
		}
		if err := move(e, dst, 0); err != nil {
			var bad *badSamplesError
			switch {
			case errors.As(err, &bad):
				// Claimed (nothing left behind) and refused with the reason:
				// the accuracy gate (or the calibration) is never skipped
				// in silence (F-9).
				if j.Refused == "" {
					j.Refused = bad.Error()
				}
				continue
			case errors.Is(err, untrusted.ErrChanged):
				putBack(dst, e)
			}
			j.dropCompanion(companionName(j, e))
		}
	}
	if err := s.Transition(j, Queued, StepClaimed, ""); err != nil {
		return nil, err
	}
	return j, nil
}

// moveInto renames src to dst, copying durably across filesystems (the
// source is removed only once the copy is on disk). What arrives must be a
// regular file and, when ino is not 0, the inode that was checked: a name
// swapped for a symbolic link (or another file) between the inbox's check
// and this rename fails with untrusted.ErrChanged, and nothing is read through
// a link.
func moveInto(src, dst string, ino uint64) error {
	err := os.Rename(src, dst)
	if err == nil {
		if err := sameRegular(dst, ino); err != nil {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(dst))
	}
	var le *os.LinkError
	if errors.As(err, &le) && strings.Contains(le.Err.Error(), "cross-device") {
		f, fi, err := untrusted.Open(src)
		if err != nil {
			return fmt.Errorf("%w: %v", untrusted.ErrChanged, err)
		}
		defer func() { _ = f.Close() }() // read-only source of the copy
		if _, got := untrusted.Inode(fi); ino != 0 && got != ino {
			return fmt.Errorf("%s: %w", src, untrusted.ErrChanged)
		}
		if err := atomicfile.Write(dst, 0o644, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		}); err != nil {
			return err
		}
		return os.Remove(src)
	}
	return err
}

// moveDirInto renames a companion directory (name.test/, the accuracy
// samples; name.calib/, the int8 calibration data) into the job. It must hold only regular files: a link or a
// subdirectory fails with untrusted.ErrChanged and the directory goes back.
func moveDirInto(src, dst string, _ uint64) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w", src, untrusted.ErrChanged)
	}
	if err := os.Rename(src, dst); err != nil {
		var le *os.LinkError
		if !errors.As(err, &le) || !errors.Is(le.Err, syscall.EXDEV) {
			return err
		}
		// Another filesystem (F-9: the samples used to stay behind and
		// the gate was skipped): copy what is regular, then remove.
		if err := copySamples(src, dst); err != nil {
			var bad *badSamplesError
			if !errors.As(err, &bad) {
				_ = os.RemoveAll(dst) // a partial copy in the job; the copy's error fails the claim
			}
			return err
		}
		if err := os.RemoveAll(src); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", src, untrusted.ErrChanged, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return &badSamplesError{dir: filepath.Base(dst), entry: e.Name(), kind: untrusted.Kind(e.Type())}
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

func sameRegular(p string, ino uint64) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if _, got := untrusted.Inode(fi); !fi.Mode().IsRegular() || (ino != 0 && got != ino) {
		return fmt.Errorf("%s: %w", p, untrusted.ErrChanged)
	}
	return nil
}

// putBack returns an entry claimed by mistake to its inbox name, unless
// that name is taken again; it reports whether it did.
func putBack(dst, src string) bool {
	return atomicfile.RenameNoReplace(dst, src) == nil
}

// Recovery is what Reconcile did to one job.
type Recovery struct {
	Job    *Job
	Action string // requeued, completed-claim, dropped-claim, failed-too-many-restarts
}

// Reconcile repairs the store after a crash: claims half done are completed
// or undone, jobs caught building go back to the queue, and a job that
// keeps taking the daemon down is failed. It never deletes a model.
func (s *Store) Reconcile() ([]Recovery, error) {
	// One read of every job.json (10,000 finished jobs are a start's
	// worth of reading, not two).
	// Finished jobs need no repair (their temporary files go in the
	// sweep that follows reconciliation), and their records are not kept.
	jobs, bad, err := s.scan(Unfinished)
	if err != nil {
		return nil, err
	}
	rec, err := s.recoverUnreadable(bad)
	if err != nil {
		return rec, err
	}
	for _, j := range jobs {
		switch j.State {
		case Claiming:
			if _, err := os.Stat(s.ModelPath(j)); err == nil {
				s.finishCompanions(j)
				if err := s.Transition(j, Queued, StepClaimed, "claim completed after restart"); err != nil {
					return rec, err
				}
				rec = append(rec, Recovery{j, "completed-claim"})
			} else {
				// The model never left the inbox: the next scan finds it again.
				_ = os.RemoveAll(s.Dir(j)) // debris without a model; the next start tries again
				rec = append(rec, Recovery{j, "dropped-claim"})
			}
		case Failing:
			// Killed while recording a failure: finish recording it.
			rec = append(rec, Recovery{j, "finish-failure"})
		case Building:
			j.Recoveries++
			if j.Recoveries > MaxRecoveries {
				// Not terminal yet: the daemon records the failure (model
				// moved aside, report published) as a persisted step, so a
				// crash in the middle of it is finished at the next start.
				j.Outcome = "failed"
				j.Reason = fmt.Sprintf("the daemon restarted %d times while building this model", j.Recoveries)
				if err := s.Transition(j, Failing, StepFailing, j.Reason); err != nil {
					return rec, err
				}
				rec = append(rec, Recovery{j, "failed-too-many-restarts"})
				continue
			}
			if err := s.Transition(j, Queued, j.Step, "requeued after restart at step "+j.Step); err != nil {
				return rec, err
			}
			rec = append(rec, Recovery{j, "requeued"})
		}
		if _, err := atomicfile.RemoveTemps(s.Dir(j)); err != nil {
			return rec, err
		}
	}
	return rec, nil
}
