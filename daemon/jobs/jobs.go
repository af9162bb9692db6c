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
	"bytes"
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
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/dirstream"
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

	// open indexes the jobs that are not terminal, by id: built by the
	// one read of every job.json at start (Reconcile), then kept by Save,
	// so the daemon never reads 10,000 finished jobs again to find the
	// few unfinished ones. nil until built.
	mu   sync.Mutex
	open map[string]bool
	// reads counts job.json reads (tests bound the start's reading).
	reads int64
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
	if err := atomicfile.WriteFile(filepath.Join(s.Dir(j), "job.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	s.note(j.ID, j.State)
	return nil
}

// note records in the index whether job id is unfinished.
func (s *Store) note(id string, st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		return // built from the files when first needed
	}
	if st.Terminal() {
		delete(s.open, id)
	} else {
		s.open[id] = true
	}
}

// forget drops job id from the index (its directory is gone).
func (s *Store) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, id)
}

// remove deletes a job directory that holds nothing of a user's (a claim
// undone: at most its job.json) and forgets the job. A directory left
// behind is debris Reconcile drops at the next start; the caller returns
// its own error.
func (s *Store) remove(j *Job) {
	_ = os.RemoveAll(s.Dir(j))
	s.forget(j.ID)
}

// IsOpen reports whether job id is known and not terminal: its directory
// is in use (temporary files in it may be a write under way).
func (s *Store) IsOpen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[id]
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
	b, err := s.read(id, nil)
	if err != nil {
		return nil, err
	}
	return decode(id, b)
}

func decode(id string, b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job %s: corrupt job.json: %w", id, err)
	}
	return &j, nil
}

// read returns job id's job.json, read into buf when it is large enough
// (a scan reuses one buffer for every job), without updating its access
// time. It opens, reads and closes through plain system calls: an os.File would add a non-blocking mode
// and a poller registration that a regular file never uses, three more
// calls per record, 30,000 over a store of 10,000 jobs.
func (s *Store) read(id string, buf []byte) ([]byte, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	p := filepath.Join(s.Root, id, "job.json")
	// O_NOATIME: a start reads every record; it need not write every
	// record's inode back (an SD card's wear, a journal's work). Only the
	// files' owner (or root) may ask for it: otherwise a plain open.
	flags := syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NOATIME
	var fd int
	var err error
	for {
		fd, err = syscall.Open(p, flags, 0)
		if err == syscall.EPERM && flags&syscall.O_NOATIME != 0 {
			flags &^= syscall.O_NOATIME
			continue
		}
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer func() { _ = syscall.Close(fd) }() // read only: nothing to lose on close
	b := buf[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, 4096)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		case n == 0:
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// stateOf decodes only the state of a job record. The whole document is
// still checked (json.Valid), so a truncated or corrupt record is found
// here as by a full decode; the state is then taken by a scan of the
// top-level keys, without reflection. Anything the scan does not settle
// plainly (no "state" key or more than one in any letter case, an escape
// or a byte beyond printable ASCII in a key or the state, a state that is
// not a string) is decoded by
// encoding/json instead, into the state alone.
//
// One difference from a full decode, on purpose: a well-formed record
// with a terminal state and a field of the wrong type elsewhere (say
// "created": "garbage") is taken as finished and left alone, not set
// aside as unreadable and reported again. Its job ended and was reported;
// only a record that is not JSON at all, or whose state cannot be read,
// is recovered into a new report (F-3).
func stateOf(id string, b []byte) (State, error) {
	if json.Valid(b) {
		if st, ok := scanState(b); ok {
			return st, nil
		}
	}
	var h struct {
		State State `json:"state"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("job %s: corrupt job.json: %w", id, err)
	}
	return h.State, nil
}

// scanState finds the value of the one top-level "state" key of the valid
// JSON object b, when it is a string without escapes.
func scanState(b []byte) (State, bool) {
	depth, key := 0, false
	var val []byte
	n := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			j := i + 1
			esc := false
			for ; b[j] != '"'; j++ {
				if b[j] == '\\' {
					esc = true
					j++
				}
			}
			if depth == 1 && key {
				if esc || !plainASCII(b[i+1:j]) {
					return "", false
				}
				key = false
				if bytes.EqualFold(b[i+1:j], []byte("state")) {
					n++
					k := j + 1
					for b[k] != ':' {
						k++
					}
					k++
					for b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r' {
						k++
					}
					val = nil
					if b[k] == '"' {
						e := k + 1
						for b[e] != '"' && b[e] != '\\' {
							e++
						}
						if b[e] == '"' && plainASCII(b[k+1:e]) {
							val = b[k+1 : e]
						}
					}
				}
			}
			i = j
		case '{', '[':
			depth++
			key = c == '{' && depth == 1
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		}
	}
	if n != 1 || val == nil {
		return "", false
	}
	return State(val), true
}

// plainASCII reports whether b is printable ASCII: what encoding/json
// reads as is, with no invalid UTF-8 to replace and no case folding
// beyond ASCII's.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
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
	var out []*Job
	bad, err := s.each(func(id string, b []byte) error {
		j, err := decode(id, b)
		if err != nil {
			return err
		}
		if keep == nil || keep(j) {
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sortJobs(out)
	return out, bad, nil
}

// ListSummaries is ListWhere over records decoded in part: ID, Name,
// State, Updated, ModelSHA256 and Outcome only, no history, outputs or
// companions (about a fifth of a full decode's allocations). Retention
// reads the whole store this way after each finished job.
func (s *Store) ListSummaries(keep func(*Job) bool) ([]*Job, error) {
	var out []*Job
	_, err := s.each(func(id string, b []byte) error {
		var h struct {
			ID          string    `json:"id"`
			Name        string    `json:"name"`
			State       State     `json:"state"`
			Updated     time.Time `json:"updated"`
			ModelSHA256 string    `json:"model_sha256"`
			Outcome     string    `json:"outcome"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		j := &Job{ID: h.ID, Name: h.Name, State: h.State, Updated: h.Updated, ModelSHA256: h.ModelSHA256, Outcome: h.Outcome}
		if keep == nil || keep(j) {
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortJobs(out)
	return out, nil
}

// scanOpen reads every job.json once and decodes in full only the jobs
// that are not terminal: a finished job costs one read and a check of its
// state, and nothing of it is kept. It returns the unfinished jobs, oldest
// first, and why each unreadable job directory could not be read.
func (s *Store) scanOpen() ([]*Job, map[string]error, error) {
	var out []*Job
	bad, err := s.each(func(id string, b []byte) error {
		st, err := stateOf(id, b)
		if err != nil || st.Terminal() {
			return err
		}
		j, err := decode(id, b)
		if err != nil {
			return err
		}
		out = append(out, j)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sortJobs(out)
	return out, bad, nil
}

// each reads the job.json of every job directory once, a batch of
// directory entries at a time and into one buffer, and hands it to fn
// (which must not keep it). It returns why each job that could not be
// read, or that fn refused, failed.
func (s *Store) each(fn func(id string, b []byte) error) (map[string]error, error) {
	bad := map[string]error{}
	buf := make([]byte, 0, 4096)
	err := dirstream.Each(s.Root, func(e os.DirEntry) error {
		id := e.Name()
		if !e.IsDir() || atomicfile.IsTemp(id) {
			return nil
		}
		b, err := s.read(id, buf)
		if err == nil {
			buf = b[:0]
			err = fn(id, b)
		}
		if err != nil {
			bad[id] = err
		}
		return nil
	})
	return bad, err
}

func sortJobs(out []*Job) {
	sort.Slice(out, func(a, b int) bool {
		if out[a].Created.Equal(out[b].Created) {
			return out[a].ID < out[b].ID
		}
		return out[a].Created.Before(out[b].Created)
	})
}

// index builds the index of unfinished jobs from the files, once, for a
// store used before Reconcile (the daemon reconciles before anything
// else writes to the store).
func (s *Store) index() error {
	s.mu.Lock()
	built := s.open != nil
	s.mu.Unlock()
	if built {
		return nil
	}
	js, _, err := s.scanOpen()
	if err != nil {
		return err
	}
	s.setIndex(js)
	return nil
}

// setIndex makes js the unfinished jobs, unless the index was built
// meanwhile.
func (s *Store) setIndex(js []*Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		return
	}
	s.open = make(map[string]bool, len(js))
	for _, j := range js {
		s.open[j.ID] = true
	}
}

// ListUnfinished returns the jobs that are not terminal, oldest first,
// each read afresh from its job.json: only those, found through the
// index, never every job in the store. An unreadable one is left out (the
// next start recovers it).
func (s *Store) ListUnfinished() ([]*Job, error) {
	if err := s.index(); err != nil {
		return nil, err
	}
	ids := s.OpenIDs()
	var out []*Job
	for _, id := range ids {
		// A missing job.json is not forgotten here: it may be a claim under
		// way (noted before its first save, so the sweep leaves that save
		// alone). A claim undone forgets its job itself (remove).
		j, err := s.Load(id)
		if err != nil || j.State.Terminal() {
			continue
		}
		out = append(out, j)
	}
	sortJobs(out)
	return out, nil
}

// OpenIDs lists the ids of the jobs that are not terminal, sorted.
func (s *Store) OpenIDs() []string {
	s.mu.Lock()
	ids := make([]string, 0, len(s.open))
	for id := range s.open {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	return ids
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
	// In the index before its directory exists: the sweep of finished
	// jobs' directories never takes the temporary file of its first save.
	s.note(j.ID, j.State)
	if err := os.MkdirAll(filepath.Join(s.Dir(j), "model"), 0o755); err != nil {
		s.remove(j) // F-21: no empty job directory per failed claim
		return nil, err
	}
	if err := s.Save(j); err != nil {
		s.remove(j) // nothing of the upload is in it yet
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
		s.remove(j) // only job.json is there
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	// F-14: nothing may follow what the inbox judged complete. A file that
	// grew since (an upload that paused at a field boundary and went on)
	// goes back to the inbox to settle again.
	if fi, err := os.Stat(s.ModelPath(j)); err == nil && size > 0 && fi.Size() != size {
		if putBack(s.ModelPath(j), src) {
			s.remove(j)
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
		// The copy keeps the modification time the source has now (after
		// the copy): the summary read at the inbox stays the job's while
		// the bytes are the ones it read, and a write during the copy
		// shows as a change.
		if after, err := f.Stat(); err == nil {
			if err := os.Chtimes(dst, after.ModTime(), after.ModTime()); err != nil {
				return err
			}
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
	// worth of reading, not two), decoded in full only for the jobs that
	// are not finished. Finished jobs need no repair (their temporary
	// files go in the sweep of the store after the start), and their
	// records are not kept: what remains is the index of unfinished jobs.
	jobs, bad, err := s.scanOpen()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.open = make(map[string]bool, len(jobs))
	for _, j := range jobs {
		s.open[j.ID] = true
	}
	s.mu.Unlock()
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
				s.remove(j)
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
