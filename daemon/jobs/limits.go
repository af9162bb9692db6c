package jobs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/untrusted"
)

// Limits cap the companions claimed with a model, checked from their sizes
// before anything reads them: a 2 GiB settings file must not become a 2 GiB
// read in the daemon.
type Limits struct {
	Sidecar     int64 // name.toml
	SampleFiles int   // entries of name.test/
	SampleBytes int64 // all of name.test/ together
	CalibFiles  int   // entries of name.calib/
	CalibBytes  int64 // all of name.calib/ together
}

// DefaultLimits are generous for real settings, samples and calibration
// data. Calibration sets are larger than accuracy samples (TensorRT's
// guidance is about 500 images for ImageNet-sized inputs), but they are read
// by the same daemon and copied the same way, so they are capped alike (F-5).
var DefaultLimits = Limits{Sidecar: 64 << 10, SampleFiles: 256, SampleBytes: 1 << 30, CalibFiles: 1024, CalibBytes: 2 << 30}

func (s *Store) limits() Limits {
	if s.Limits == (Limits{}) {
		return DefaultLimits
	}
	return s.Limits
}

// check returns why companion p is over its cap ("" when it is not).
func (l Limits) check(p string) string {
	name := filepath.Base(p)
	switch {
	case strings.HasSuffix(p, ".toml"):
		fi, err := os.Lstat(p)
		if err == nil && fi.Size() > l.Sidecar {
			return fmt.Sprintf("settings file %s is %d bytes (limit %d)", name, fi.Size(), l.Sidecar)
		}
	case strings.HasSuffix(p, ".test"):
		return checkDir(p, "accuracy samples", l.SampleFiles, l.SampleBytes)
	case strings.HasSuffix(p, ".calib"):
		// The calibration data is untrusted upload like the samples
		// (F-5): capped from its sizes before anything reads it.
		return checkDir(p, "calibration data", l.CalibFiles, l.CalibBytes)
	}
	return ""
}

// checkDir returns why the companion directory p is over its caps.
func checkDir(p, what string, files int, bytes int64) string {
	name := filepath.Base(p)
	d, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer func() { _ = d.Close() }() // a directory only listed
	// Read at most one entry past the cap: a directory of a million
	// names costs no more than one of files+1.
	ents, _ := d.ReadDir(files + 1)
	if len(ents) > files {
		return fmt.Sprintf("%s %s/ hold more than %d files", what, name, files)
	}
	var total int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			total += fi.Size()
		}
	}
	if total > bytes {
		return fmt.Sprintf("%s %s/ are %d bytes (limit %d)", what, name, total, bytes)
	}
	return ""
}

// IsDirCompanion says whether a companion is a directory of .pb files
// claimed whole: name.test/ (accuracy samples) or name.calib/ (int8
// calibration data, the same layout).
func IsDirCompanion(name string) bool {
	return strings.HasSuffix(name, ".test") || strings.HasSuffix(name, ".calib")
}

// dropCompanion forgets a companion the claim could not take.
func (j *Job) dropCompanion(name string) {
	if j.Sidecar == name {
		j.Sidecar = ""
		return
	}
	for i, e := range j.Extra {
		if e == name {
			j.Extra = append(j.Extra[:i:i], j.Extra[i+1:]...)
			return
		}
	}
}

// finishCompanions completes a claim cut short after the model moved: every
// companion recorded is taken from the inbox if it is still there, or
// forgotten if it is gone.
func (s *Store) finishCompanions(j *Job) {
	names := append([]string(nil), j.Extra...)
	if j.Sidecar != "" {
		names = append(names, j.Sidecar)
	}
	for _, n := range names {
		dst := filepath.Join(s.Dir(j), "model", n)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		src := filepath.Join(j.ClaimDir, n)
		move := moveInto
		if IsDirCompanion(n) {
			move = moveDirInto
		}
		if j.ClaimDir == "" || move(src, dst, 0) != nil {
			j.dropCompanion(n)
		}
	}
}

// companionName is what a companion is called in the job: a sidecar and the
// samples follow the claimed model's name (which may have been made valid
// UTF-8), so that name.toml and name.test are found by it after a restart
// (F-15, F-9); external data keeps the name the model refers to it by.
func companionName(j *Job, src string) string {
	base := strings.TrimSuffix(j.Name, ".onnx")
	switch {
	case strings.HasSuffix(src, ".toml"):
		return base + ".toml"
	case strings.HasSuffix(src, ".test"):
		return base + ".test"
	case strings.HasSuffix(src, ".calib"):
		// Found by the model's name like the samples, after a restart too.
		return base + ".calib"
	}
	return filepath.Base(src)
}

// badSamplesError: the samples directory holds something that is not a
// regular file (a link, a FIFO, a subdirectory).
type badSamplesError struct{ dir, entry, kind string }

func (e *badSamplesError) Error() string {
	if strings.HasSuffix(e.dir, ".calib") {
		return fmt.Sprintf("calibration data %s/ hold %s, which is %s, not a regular file: the calibration data must be plain input_N.pb files", e.dir, e.entry, e.kind)
	}
	return fmt.Sprintf("accuracy samples %s/ hold %s, which is %s, not a regular file: the samples must be plain input_N.pb and output_N.pb files", e.dir, e.entry, e.kind)
}

// copySamples copies the samples directory src into a new directory dst on
// another filesystem: only regular files; anything else refuses it whole.
func copySamples(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return &badSamplesError{dir: filepath.Base(dst), entry: e.Name(), kind: untrusted.Kind(e.Type())}
		}
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if err := atomicfile.CopyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
