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
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
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
