package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/faultpoint"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/treecopy"
)

// What a build is given: the input shapes, the companions (samples,
// calibration data) placed for the worker, and the cache key over them.

// resolveShapes turns the sidecar's shapes into optimization profiles and
// gives dynamic inputs without shapes the documented default: every
// symbolic dimension 1 for min, opt and max, with a warning.
func resolveShapes(inputs []onnx.ValueInfo, name string, side *config.Sidecar) ([]protocol.Shape, []string) {
	var shapes []protocol.Shape
	given := map[string]bool{}
	if side != nil {
		shapes = side.ProtocolShapes()
		for _, s := range shapes {
			given[s.Input] = true
		}
	}
	var warn []string
	for _, v := range inputs {
		if !v.Dynamic() || given[v.Name] {
			continue
		}
		dims, ok := v.Shape()
		if !ok {
			warn = append(warn, fmt.Sprintf("input %q has an unknown rank and no [[shape]] in the settings file: TensorRT will refuse it", v.Name))
			continue
		}
		fixed := make([]int64, len(dims))
		var sym []string
		for i, dd := range dims {
			if dd.Fixed() && dd.Value > 0 {
				fixed[i] = dd.Value
			} else {
				fixed[i] = 1
				sym = append(sym, dd.String())
			}
		}
		shapes = append(shapes, protocol.Shape{Input: v.Name, Min: fixed, Opt: fixed, Max: fixed})
		warn = append(warn, fmt.Sprintf("input %q has dynamic dimension(s) %s and no [[shape]] in a settings file: built for 1 (min = opt = max = %v); upload %s with shapes to change it",
			v.Name, strings.Join(sym, ", "), fixed, strings.TrimSuffix(name, ".onnx")+".toml"))
	}
	return shapes, warn
}

// modelInputs describes the model's inputs (Summary.Inputs) for the
// sidecar check.
func modelInputs(inputs []onnx.ValueInfo) []config.ModelInput {
	var out []config.ModelInput
	for _, v := range inputs {
		in := config.ModelInput{Name: v.Name}
		if dims, ok := v.Shape(); ok {
			in.RankKnown = true
			for _, d := range dims {
				n := int64(-1)
				if d.Fixed() && d.Value > 0 {
					n = d.Value
				}
				in.Dims = append(in.Dims, n)
			}
		}
		out = append(out, in)
	}
	return out
}

// cacheKey identifies a build: model content, sidecar, the ladder's
// settings, shapes and the builder (TensorRT version and GPU).
func cacheKey(modelSHA, sideSHA string, stages []config.Stage, shapes []protocol.Shape, b *protocol.Builder) string {
	h := filehash.New()
	fmt.Fprintf(h, "model %s\nsidecar %s\nbuilder %s\n", modelSHA, sideSHA, b.Fingerprint())
	enc := json.NewEncoder(h)
	// Plain data into a hash (whose Write never fails): Encode cannot fail.
	for _, s := range stages {
		_ = enc.Encode(s)
	}
	_ = enc.Encode(shapes)
	return h.Sum()
}

// calibSum identifies the int8 calibration data in dir/name ("" if none),
// as samplesSum does the samples.
func calibSum(dir, name string) string { return dirSum("calibration", dir, name) }

// calibration gives int8 stages the uploaded calibration batches
// (work/name.calib/input_*.pb; sum is their calibSum, "" for none, taken
// once for the cache key) and a calibration cache path in the work
// directory. The cache is kept in the state directory under the model, the
// calibration data and the TensorRT version (the cache's header names the
// release), so a later trtexec stage of this job and a later upload of the
// same model and data reuse it; it is placed in the work directory before
// the build and the one the worker wrote is kept after it (the returned
// func).
func (rn *Runner) calibration(j *jobs.Job, sum, work string, in *converter.Input, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) func() {
	dir := j.Base() + ".calib"
	if sum == "" {
		return func() {}
	}
	ents, _ := os.ReadDir(filepath.Join(work, dir))
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "input_") && strings.HasSuffix(n, ".pb") {
			in.CalibrationData = append(in.CalibrationData, filepath.Join(dir, n))
		}
	}
	in.Calibration = j.Base() + ".calib.cache"
	kept := rn.calibrationCache(j.ModelSHA256, sum)
	if kept == "" {
		return func() {}
	}
	inWork := filepath.Join(work, in.Calibration)
	if err := atomicfile.CopyFile(kept, inWork, 0o644); err == nil {
		rn.shareWithWorker(inWork)
		log.Info("int8 calibration cache from an earlier build", "cache", kept)
	}
	return func() {
		if _, err := os.Stat(inWork); err != nil {
			return
		}
		_ = os.MkdirAll(filepath.Dir(kept), 0o755) // a failure is the copy's error below, which is logged
		if err := atomicfile.CopyFile(inWork, kept, 0o644); err != nil {
			log.Warn("cannot keep the int8 calibration cache", "err", err)
		}
	}
}

// calibrationCache is where the calibration cache of a model and its
// calibration data is kept for the current builder ("" for the test double).
func (rn *Runner) calibrationCache(modelSHA, calib string) string {
	b := rn.currentBuilder()
	if b == nil || b.Backend == "fake" {
		return ""
	}
	h := filehash.Bytes([]byte(modelSHA + calib + " " + b.TensorRT))
	return filepath.Join(rn.Cfg.Paths.State, "calibration", h[:32]+".cache")
}

// samplesSum identifies the accuracy samples in dir/name ("" if none).
func samplesSum(dir, name string) string { return dirSum("samples", dir, name) }

// dirSum identifies a companion directory dir/name for the cache key, under
// label ("" if there is none): each file's name and sha256, in name order.
func dirSum(label, dir, name string) string {
	ents, err := os.ReadDir(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	h := filehash.New()
	for _, e := range ents {
		sum, _ := filehash.SHA256(filepath.Join(dir, name, e.Name()))
		fmt.Fprintf(h, "%q %s\n", e.Name(), sum)
	}
	return " " + label + " " + h.Sum()
}

func sidecarSum(s *jobs.Store, j *jobs.Job) string {
	if j.Sidecar == "" {
		return ""
	}
	sum, _ := filehash.SHA256(filepath.Join(filepath.Dir(s.ModelPath(j)), j.Sidecar))
	return sum
}

func linkOrCopy(src, dst string) error { return treecopy.Copy(src, dst, true) }

func (rn *Runner) faultpoint(step string) { faultpoint.Hit(rn.Log, step) }

// shareWithWorker makes a claimed file readable by the unprivileged worker:
// uploads often arrive 0600 (scp and sftp keep the client's mode). The
// file now belongs to the job store: it is given to the worker's user and
// readable by that user only (F-19). It used to get the worker's group and
// group read, and in the package that group is also the uploaders' group:
// any uploader could read any other's private model.
func (rn *Runner) shareWithWorker(path string) {
	c := rn.Worker.Credential
	if c == nil {
		return
	}
	// The callback returns no error, so Walk returns none; each failure is
	// logged: a file the worker cannot read fails its build, one left
	// readable by others breaks F-19.
	_ = filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		if err := os.Lchown(p, int(c.Uid), -1); err != nil {
			rn.Log.Warn("input not given to the worker's user", "path", p, "err", err)
		}
		mode := os.FileMode(0o600)
		if fi.IsDir() {
			mode = 0o700
		}
		if err := os.Chmod(p, mode); err != nil {
			rn.Log.Error("input not made private to the worker's user", "path", p, "err", err)
		}
		return nil
	})
}

func (rn *Runner) chownWorker(dir string) {
	if c := rn.Worker.Credential; c != nil {
		if err := os.Chown(dir, int(c.Uid), int(c.Gid)); err != nil {
			rn.Log.Warn("worker's directory not given to its user", "dir", dir, "err", err)
		}
	}
}

// accuracySamples finds ONNX test-data .pb files in work/<base>.test/
// (input_0.pb ..., output_0.pb ...).
func accuracySamples(work, dir string) *protocol.Accuracy {
	ents, err := os.ReadDir(filepath.Join(work, dir))
	if err != nil {
		return nil
	}
	acc := &protocol.Accuracy{}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "input_") && strings.HasSuffix(n, ".pb"):
			acc.Inputs = append(acc.Inputs, filepath.Join(dir, n))
		case strings.HasPrefix(n, "output_") && strings.HasSuffix(n, ".pb"):
			acc.Outputs = append(acc.Outputs, filepath.Join(dir, n))
		}
	}
	if len(acc.Inputs) == 0 || len(acc.Outputs) == 0 {
		return nil
	}
	return acc
}
