package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
)

// Queue holds pushes that could not be done yet, on disk, so they survive
// a restart: one directory per tag with hard links (or copies) of the
// engine, provenance and report, and item.json.
type Queue struct {
	Dir string
	// Now is the clock (injectable for tests).
	Now func() time.Time
	mu  sync.Mutex
}

// QueueItem is one waiting push.
type QueueItem struct {
	Artifact  Artifact  `json:"artifact"`
	Queued    time.Time `json:"queued"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	NextTry   time.Time `json:"next_try"`
	dir       string
}

const (
	itemFile   = "item.json"
	maxBackoff = time.Hour
	maxQueued  = 64 // the oldest are dropped beyond this
)

// NewQueue opens (creates) the queue in dir and removes what an
// interrupted Add left behind.
func NewQueue(dir string) (*Queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if atomicfile.IsTemp(e.Name()) {
			// items never reads a temporary directory, so one left here
			// only waits for the next start to try again.
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return &Queue{Dir: dir, Now: time.Now}, nil
}

// Add stores a for a later push, replacing an older item for the same
// tag. The files are linked (copied across filesystems) so the push still
// has them when the outbox copy is gone.
func (q *Queue) Add(a Artifact) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	tag := a.Key.Tag()
	tmp, err := os.MkdirTemp(q.Dir, atomicfile.TempPrefix+tag+"-")
	if err != nil {
		return err
	}
	// Gone after the rename; on an error path (whose error is returned) a
	// leftover is invisible to items and removed by the next NewQueue.
	defer func() { _ = os.RemoveAll(tmp) }()
	local := a
	for _, f := range []struct {
		src *string
		dst string
	}{{&local.Engine, "engine"}, {&local.Provenance, "provenance.json"}, {&local.Report, "report.json"}} {
		if *f.src == "" {
			continue
		}
		dst := filepath.Join(tmp, f.dst)
		if err := os.Link(*f.src, dst); err != nil {
			if err := atomicfile.CopyFile(*f.src, dst, 0o600); err != nil {
				return fmt.Errorf("queue %s: %w", tag, err)
			}
		}
		*f.src = filepath.Join(q.Dir, tag, f.dst)
	}
	it := QueueItem{Artifact: local, Queued: q.Now().UTC(), NextTry: q.Now().UTC()}
	b, _ := json.MarshalIndent(it, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(tmp, itemFile), b, 0o600); err != nil {
		return err
	}
	final := filepath.Join(q.Dir, tag)
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("queue %s: replacing the older item: %w", tag, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	// Best effort: the item is in place; a crash before the directory
	// reaches the disk can lose this queued push, never an engine (the
	// outbox has it).
	_ = atomicfile.SyncDir(q.Dir)
	q.trim()
	return nil
}

// trim drops the oldest items beyond maxQueued.
func (q *Queue) trim() {
	items, _ := q.items()
	for i := 0; i+maxQueued < len(items); i++ {
		// One not removed keeps the queue a little over its bound until
		// the next trim tries again.
		_ = os.RemoveAll(items[i].dir)
	}
}

// Items lists what waits, oldest first.
func (q *Queue) Items() ([]QueueItem, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items()
}

func (q *Queue) items() ([]QueueItem, error) {
	ents, err := os.ReadDir(q.Dir)
	if err != nil {
		return nil, err
	}
	var out []QueueItem
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || atomicfile.IsTemp(e.Name()) {
			continue
		}
		d := filepath.Join(q.Dir, e.Name())
		b, err := os.ReadFile(filepath.Join(d, itemFile))
		var it QueueItem
		if err == nil {
			err = json.Unmarshal(b, &it)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("queue item %s: %w", d, err))
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, fmt.Errorf("removing queue item %s: %w", d, err))
			}
			continue
		}
		it.dir = d
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Queued.Before(out[j].Queued) })
	return out, errors.Join(errs...)
}

// Len is the number of waiting pushes.
func (q *Queue) Len() int {
	items, _ := q.Items()
	return len(items)
}

// Outcome is what Drain did with one item.
type Outcome struct {
	Tag    string
	Result PushResult
	Err    error
	// Dropped: the item left the queue without a push (its files are
	// unusable or the registry refused it for good).
	Dropped bool
	// Queue: the item could not be removed or its next try not recorded,
	// so it is tried again sooner than it should be (a push of an engine
	// the registry has is harmless).
	Queue error
}

// Drain tries every item that is due with push. Items pushed (or kept
// as the registry's) leave the queue; items that failed because the
// registry was unavailable stay with a doubled wait; the others are
// dropped, with the reason in the outcome.
func (q *Queue) Drain(ctx context.Context, push func(context.Context, Artifact) (PushResult, error)) []Outcome {
	items, _ := q.Items()
	var out []Outcome
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if it.NextTry.After(q.Now()) {
			continue
		}
		res, err := push(ctx, it.Artifact)
		if err != nil && ctx.Err() != nil {
			// Stopped, not refused: the item stays as it was, due at
			// once on the next start.
			break
		}
		o := Outcome{Tag: it.Artifact.Key.Tag(), Result: res, Err: err}
		switch {
		case err == nil:
			o.Queue = os.RemoveAll(it.dir)
		case errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			it.Attempts++
			it.LastError = firstLine(err.Error())
			wait := time.Minute << min(it.Attempts-1, 6)
			it.NextTry = q.Now().Add(min(wait, maxBackoff)).UTC()
			b, _ := json.MarshalIndent(it, "", "  ")
			q.mu.Lock()
			o.Queue = atomicfile.WriteFile(filepath.Join(it.dir, itemFile), b, 0o600)
			q.mu.Unlock()
		default:
			o.Dropped = true
			o.Queue = os.RemoveAll(it.dir)
		}
		out = append(out, o)
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
