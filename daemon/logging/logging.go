// Package logging builds trtd's slog.Logger: under systemd it speaks
// journald's native protocol, so every attribute becomes a structured field
// (`journalctl -u trtd TRTD_MODEL=x.onnx`) and levels become syslog
// priorities; on a terminal it writes plain text.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/coreos/go-systemd/v22/journal"
)

// Scoping keys used across trtd. They become TRTD_JOB, TRTD_MODEL, ... in
// the journal.
const (
	KeyJob   = "job"
	KeyModel = "model"
	KeyStage = "stage"
	KeyEvent = "event"
)

// ParseLevel maps a config level name to a slog level.
func ParseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// New returns a logger for format ("auto", "journal", "text", "json") at
// level, writing to w when it does not use the journal.
func New(format string, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "text":
		return slog.New(slog.NewTextHandler(w, opts))
	case "journal":
		return slog.New(NewJournalHandler(level, journalSend))
	}
	// auto: the native journal protocol when our stderr goes to the journal.
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(NewJournalHandler(level, journalSend))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// SendFunc sends one journal entry (journal.Send's signature).
type SendFunc func(message string, priority journal.Priority, vars map[string]string) error

func journalSend(msg string, p journal.Priority, vars map[string]string) error {
	err := journal.Send(msg, p, vars)
	if err != nil {
		// The journal went away: keep the line on stderr, which systemd
		// still collects.
		fmt.Fprintf(os.Stderr, "<%d>%s\n", p, msg)
	}
	return err
}

// JournalHandler is a slog.Handler for journald's native protocol: no
// timestamps (journald adds them), syslog priorities, and attributes as
// TRTD_* fields as well as key=value text in MESSAGE.
type JournalHandler struct {
	level  slog.Leveler
	send   SendFunc
	attrs  []slog.Attr
	groups []string
	mu     *sync.Mutex
}

// NewJournalHandler returns a handler that sends through send.
func NewJournalHandler(level slog.Leveler, send SendFunc) *JournalHandler {
	return &JournalHandler{level: level, send: send, mu: &sync.Mutex{}}
}

// Enabled implements slog.Handler.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle implements slog.Handler.
func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "trtd"}
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		key := a.Key
		if len(h.groups) > 0 {
			key = strings.Join(h.groups, "_") + "_" + key
		}
		val := a.Value.String()
		fmt.Fprintf(&b, " %s=%s", key, quote(val))
		vars[FieldName(key)] = val
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.send(b.String(), priority(r.Level), vars)
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// FieldName turns an attribute key into a journal field name: TRTD_ plus
// the key upper-cased, with anything outside [A-Z0-9_] replaced by '_'.
func FieldName(key string) string {
	var b strings.Builder
	b.WriteString("TRTD_")
	for _, r := range key {
		r = unicode.ToUpper(r)
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// WithAttrs implements slog.Handler.
func (h *JournalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &n
}

// WithGroup implements slog.Handler.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.groups = append(append([]string{}, h.groups...), name)
	return &n
}

// Discard is a logger that drops everything (for tests and quiet commands).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
