// Reading the store: job records, the index of unfinished jobs, the
// start's single scan.

package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/dirstream"
)

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

// List returns every readable job, oldest first.
func (s *Store) List() ([]*Job, error) {
	var out []*Job
	if _, err := s.each(func(id string, b []byte) error {
		j, err := decode(id, b)
		if err == nil {
			out = append(out, j)
		}
		return err
	}); err != nil {
		return nil, err
	}
	sortJobs(out)
	return out, nil
}

// ListSummaries returns the jobs keep accepts, oldest first, decoded in
// part: ID, Name, State, Updated, ModelSHA256 and Outcome only, no
// history, outputs or companions (about a fifth of a full decode's
// allocations). Retention reads the whole store this way after each
// finished job.
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
