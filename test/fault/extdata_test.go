package fault

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExternalDataOwnership (F-1, F-12): a model may take as external data
// only a file of its own. One that names another user's upload, an upload
// in progress (hidden temp), someone's settings file, a file in a
// subdirectory, a file of another owner, or data another model also names
// is refused with a report, and nothing moves: the other upload is built
// as if the thief had never come.
func TestExternalDataOwnership(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_FAKE_WORKER=*=ok")
	data16 := bytes.Repeat([]byte{7}, 16)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(e.inbox, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What others have in the inbox (written before the thieves arrive).
	// The victim waits for its own external data, so it is still in the
	// inbox when the thief's check runs.
	victim := e.drop("victim.onnx", externalModel("victim-data.bin"))
	inProgress := write(".victim2.onnx.Xa12bC", data16, 0o600)
	sidecar := write("other.toml", []byte("precision = \"fp32\"   # 16+ bytes\n"), 0o644)
	sub := write("data/w.bin", data16, 0o644)
	foreign := write("foreign.bin", data16, 0o644)
	os.Chown(foreign, 65534, 65534)
	shared := write("shared.bin", data16, 0o644)
	own := write("own.bin", data16, 0o644)
	thieves := map[string]string{
		"thief-upload.onnx":  "victim.onnx",
		"thief-temp.onnx":    filepath.Base(inProgress),
		"thief-sidecar.onnx": "other.toml",
		"thief-subdir.onnx":  "data/w.bin",
		"thief-foreign.onnx": "foreign.bin",
		"share-a.onnx":       "shared.bin",
		"share-b.onnx":       "shared.bin",
	}
	for name, loc := range thieves {
		write(name, externalModel(loc), 0o644)
	}
	e.drop("honest.onnx", externalModel("own.bin"))
	// Once every thief was refused, the victim's data arrives and it builds.
	deadline := time.Now().Add(60 * time.Second)
	for {
		reps, n := e.reports(), 0
		for name := range thieves {
			if r := reps[name]; len(r) == 1 && r[0].Outcome == "rejected" {
				n++
			}
		}
		if n == len(thieves) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports after 60 s: %+v", reps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	write("victim-data.bin", data16, 0o644)
	deadline = time.Now().Add(60 * time.Second)
	for {
		reps := e.reports()
		n := 0
		for name := range thieves {
			if r := reps[name]; len(r) == 1 && r[0].Outcome == "rejected" {
				n++
			}
		}
		if n == len(thieves) && len(reps["victim.onnx"]) == 1 && reps["victim.onnx"][0].Outcome == "built" &&
			len(reps["honest.onnx"]) == 1 && reps["honest.onnx"][0].Outcome == "built" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports after 60 s: %+v", reps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reps := e.reports()
	for name := range thieves {
		r := reps[name][0]
		if !strings.Contains(r.Reason, "nothing was moved") {
			t.Errorf("%s: reason %q does not say why and that nothing moved", name, r.Reason)
		}
		if _, err := os.Stat(filepath.Join(e.inbox, name)); err != nil {
			t.Errorf("%s: the refused model did not stay in the inbox: %v", name, err)
		}
	}
	for _, p := range []string{inProgress, sidecar, sub, foreign, shared} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was taken: %v", p, err)
		}
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Errorf("the victim's upload is still in the inbox (not built): %v", err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the honest model's own data was not claimed with it: %v", err)
	}
}
