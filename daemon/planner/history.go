package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
)

// ErrHistoryCorrupt is wrapped when the history file cannot be parsed.
var ErrHistoryCorrupt = errors.New("planner history is corrupt")

// History remembers, per (model sha256, device fingerprint), the first stage
// that worked. It is persisted as JSON under the state directory.
type History struct {
	path string
	mu   sync.Mutex
	data historyFile
}

type historyFile struct {
	Version int              `json:"version"`
	Entries map[string]Entry `json:"entries"`
}

// Entry is one remembered outcome.
type Entry struct {
	Stage string    `json:"stage"`
	At    time.Time `json:"at"`
}

func key(sha, fp string) string { return sha + "@" + fp }

// Load reads the history at path; a missing file is an empty history. On a
// corrupt file it returns an empty history (still saving to path) and an
// error wrapping ErrHistoryCorrupt, for the caller to log.
func Load(path string) (*History, error) {
	h := &History{path: path, data: historyFile{Version: 1, Entries: map[string]Entry{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("read planner history: %w", err)
	}
	var f historyFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
		return h, fmt.Errorf("%s: %w: %v", path, ErrHistoryCorrupt, err)
	}
	if f.Entries == nil {
		f.Entries = map[string]Entry{}
	}
	h.data = f
	return h, nil
}

// Lookup returns the stage that worked for the model on the device.
func (h *History) Lookup(sha, fingerprint string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.data.Entries[key(sha, fingerprint)]
	return e.Stage, ok
}

// Record remembers stage as the first that worked.
func (h *History) Record(sha, fingerprint, stage string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.data.Entries[key(sha, fingerprint)] = Entry{Stage: stage, At: at.UTC()}
}

// Save writes the history atomically.
func (h *History) Save() error {
	h.mu.Lock()
	b, err := json.MarshalIndent(h.data, "", "  ")
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(h.path, append(b, '\n'), 0o644)
}
