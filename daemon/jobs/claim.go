// Claiming an upload into a new job: the model and its companions moved
// in as one step.

package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/faultpoint"
	"github.com/trtd/trtd/internal/untrusted"
)

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
