package logging

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func TestJournalHandlerFieldsAndPriorities(t *testing.T) {
	var got []sent
	h := NewJournalHandler(slog.LevelDebug, func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, sent{m, p, v})
		return nil
	})
	log := slog.New(h).With(KeyJob, "j1", KeyModel, "resnet 18.onnx")
	log.With(KeyStage, "lean").Warn("stage failed", "class", "out_of_memory")
	log.Debug("detail")
	log.Error("boom")
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	w := got[0]
	if w.pri != journal.PriWarning || got[1].pri != journal.PriDebug || got[2].pri != journal.PriErr {
		t.Errorf("priorities %v %v %v", w.pri, got[1].pri, got[2].pri)
	}
	for k, v := range map[string]string{"TRTD_JOB": "j1", "TRTD_MODEL": "resnet 18.onnx", "TRTD_STAGE": "lean", "TRTD_CLASS": "out_of_memory", "SYSLOG_IDENTIFIER": "trtd"} {
		if w.vars[k] != v {
			t.Errorf("field %s = %q, want %q", k, w.vars[k], v)
		}
	}
	if !strings.HasPrefix(w.msg, "stage failed ") || !strings.Contains(w.msg, `model="resnet 18.onnx"`) {
		t.Errorf("message %q", w.msg)
	}
	if strings.Contains(w.msg, "time=") {
		t.Error("journal messages must not carry timestamps")
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"job": "TRTD_JOB", "peak-rss": "TRTD_PEAK_RSS", "a.b": "TRTD_A_B"} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAutoFallsBackToText: without journald (no journal socket, stderr not
// a journal stream) "auto" writes text to the given writer.
func TestAutoFallsBackToText(t *testing.T) {
	if journal.Enabled() {
		t.Skip("journald is running here")
	}
	var b strings.Builder
	New("auto", slog.LevelInfo, &b).Info("hello", KeyJob, "x")
	if !strings.Contains(b.String(), "msg=hello job=x") {
		t.Fatalf("auto without journald should write text, got %q", b.String())
	}
}
