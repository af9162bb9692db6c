package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/internal/untrusted"
)

// Inspector parses each upload once (issue 13, F-4). The inbox's content
// check (Check) reads the model; what it read, the model's summary (its
// inputs for the settings file's shapes, its external data, weights and
// ops for the planner and the report), travels with the inbox's event to
// the claim and with the job to its report. Nothing else in the daemon
// parses the model while the job runs: the unprivileged worker that builds
// it is another process.
//
// The inspector remembers the summary of the last version (inode, size,
// modification time) of every inbox model it read, so the ownership check
// of another model's external data (sharedWith) and a later check of the
// same bytes use that parse too, and the summary of every job from its
// claim to its end. A daemon restart forgets them all: a job found in the
// store at start is read once more, when it runs (Job). That costs one
// parse per restart, and the job record stays small: a summary is as
// large as the model's inputs, outputs, ops, metadata and external data.
//
// What it keeps is bounded (inspectBudget): a summary that would not fit
// is not kept, and is read again when needed: only models with megabytes
// of names and metadata, never a model a user needs built, pay that.
type Inspector struct {
	// Read parses a model from f; dir is the directory its external data
	// must be in ("" = check locations lexically only). nil: onnx.ReadFile.
	// Every parse of the daemon goes through it: tests count them.
	Read func(f *os.File, dir string) (*onnx.Model, error)

	mu    sync.Mutex
	files map[string]seenModel // inbox path -> the last version read
	jobs  map[string]jobModel  // job ID -> its model, claim to end
	cost  map[string]int64     // bytes kept, by files/jobs key
	bytes int64                // sum of cost
}

// inspectBudget bounds the bytes of summaries an Inspector keeps. A
// ResNet-50's summary is about 3 KiB: thousands of queued jobs fit.
const inspectBudget = 8 << 20

// version identifies one version of a file's bytes, as the inbox does.
type version struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func versionOf(fi os.FileInfo) version {
	dev, ino := untrusted.Inode(fi)
	return version{dev: dev, ino: ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// sameBytes says whether a and b are one version of a file's bytes as
// far as a summary is concerned: same size and modification time. The
// inode is left out: a claim across filesystems copies the model into the
// job and keeps its modification time; a writer that kept the upload open
// across the claim's rename, or a rewrite in place, changes the time.
func sameBytes(a, b version) bool {
	return a.size == b.size && a.mtime == b.mtime
}

// jobModel is a job's model as read: the summary and the version of the
// bytes it describes (zero: unknown, read again before use).
type jobModel struct {
	sum *onnx.Summary
	v   version
}

type seenModel struct {
	v   version
	sum *onnx.Summary
	err error
}

// parse reads the model once and summarizes it.
func (in *Inspector) parse(f *os.File, dir string) (*onnx.Summary, error) {
	read := in.Read
	if read == nil {
		read = onnx.ReadFile
	}
	m, err := read(f, dir)
	if err != nil {
		return nil, err
	}
	s := m.Summary()
	return &s, nil
}

// Check is the inbox's content check (inbox.Options.Inspect): a whole ONNX
// model whose external data is present, confined to the inbox and the
// model's own to take. It returns the model's summary, the one parse of
// the upload.
func (in *Inspector) Check(f *os.File, path string) (*onnx.Summary, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sum, err := in.read(f, path, versionOf(fi))
	if err != nil {
		return nil, err
	}
	// The data files may have arrived, grown or gone since the bytes of
	// the model were read: checked now, every time.
	if err := onnx.CheckExternalData(slices.Clone(sum.ExternalData), filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", f.Name(), err)
	}
	if why := in.ownDataProblem(sum, fi, path); why != "" {
		return nil, fmt.Errorf("%s: %w: %s; nothing was moved", filepath.Base(path), onnx.ErrExternalData, why)
	}
	// The event carries only a summary the inspector keeps (it is within
	// inspectBudget, and shared): events waiting to be claimed never hold
	// summaries beyond the budget. One that was not kept is read again
	// at the claim.
	if !in.keeps(path, sum) {
		return nil, nil
	}
	return sum, nil
}

// keeps says whether sum is what the inspector remembers of path.
func (in *Inspector) keeps(path string, sum *onnx.Summary) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.files[path]
	return ok && s.sum == sum
}

// read returns the summary of the inbox file f at path, version v: the
// one read before if v is the version it read, else a new parse (external
// data checked lexically; the caller checks the files).
func (in *Inspector) read(f *os.File, path string, v version) (*onnx.Summary, error) {
	in.mu.Lock()
	s, ok := in.files[path]
	in.mu.Unlock()
	if ok && s.v == v {
		return s.sum, s.err
	}
	sum, err := in.parse(f, "")
	// Remembered only if nothing changed while it was read.
	if fi, serr := f.Stat(); serr == nil && versionOf(fi) == v {
		in.remember(path, seenModel{v: v, sum: sum, err: err})
	}
	return sum, err
}

func (in *Inspector) remember(path string, s seenModel) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.init()
	in.dropLocked("f:" + path)
	delete(in.files, path)
	c := summaryCost(s.sum)
	if s.err != nil {
		c += int64(len(s.err.Error()))
	}
	if in.bytes+c > inspectBudget {
		in.pruneLocked()
	}
	if in.bytes+c > inspectBudget {
		return
	}
	in.files[path], in.cost["f:"+path] = s, c
	in.bytes += c
}

// pruneLocked forgets the inbox files that are gone or changed since they
// were read (deleted uploads, rejected ones replaced): only the budget's
// pressure makes it look.
func (in *Inspector) pruneLocked() {
	for p, s := range in.files {
		if fi, err := os.Lstat(p); err != nil || versionOf(fi) != s.v {
			delete(in.files, p)
			in.dropLocked("f:" + p)
		}
	}
}

func (in *Inspector) dropLocked(key string) {
	in.bytes -= in.cost[key]
	delete(in.cost, key)
}

func (in *Inspector) init() {
	if in.jobs == nil {
		in.files, in.jobs, in.cost = map[string]seenModel{}, map[string]jobModel{}, map[string]int64{}
	}
}

// Claimed moves what was read of the inbox file at path to job id: the
// file is the job's now. sum describes the bytes of version v (the
// inbox's event: size and modification time); the job's file is compared
// with it before the summary is used (Job).
func (in *Inspector) Claimed(path, id string, sum *onnx.Summary, v version) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.files[path]; ok {
		delete(in.files, path)
		in.dropLocked("f:" + path)
	}
	in.carryLocked(id, jobModel{sum: sum, v: v})
}

func (in *Inspector) carryLocked(id string, m jobModel) {
	if m.sum == nil {
		return
	}
	in.init()
	in.dropLocked("j:" + id)
	delete(in.jobs, id)
	c := summaryCost(m.sum)
	if in.bytes+c > inspectBudget {
		return
	}
	in.jobs[id], in.cost["j:"+id] = m, c
	in.bytes += c
}

// Job returns the summary of job id's model and the version of the bytes
// it describes: the one read at the inbox while the job's file is still
// those bytes (same size and modification time), else a parse of the
// claimed model at path (after a restart, when it was not kept, or when
// the file changed since: a writer that kept the upload open across the
// claim), kept for the rest of the job. Its external data is checked
// against the files beside it. The caller compares the version with the
// file it hashed (the report's summary, sha256 and size describe one set
// of bytes).
func (in *Inspector) Job(id, path string) (*onnx.Summary, version, error) {
	f, fi, err := untrusted.Open(path)
	if err != nil {
		return nil, version{}, fmt.Errorf("onnx: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only; the parse returned any read error
	cur := versionOf(fi)
	in.mu.Lock()
	m, ok := in.jobs[id]
	in.mu.Unlock()
	if ok && sameBytes(m.v, cur) {
		if err := onnx.CheckExternalData(slices.Clone(m.sum.ExternalData), filepath.Dir(path)); err != nil {
			return nil, version{}, fmt.Errorf("onnx: %s: %w", path, err)
		}
		return m.sum, cur, nil
	}
	in.Done(id)
	sum, err := in.parse(f, filepath.Dir(path))
	if err != nil {
		return nil, version{}, err
	}
	// Kept only if nothing changed while it was read.
	if after, err := f.Stat(); err == nil && sameBytes(versionOf(after), cur) {
		in.mu.Lock()
		in.carryLocked(id, jobModel{sum: sum, v: cur})
		in.mu.Unlock()
	}
	return sum, cur, nil
}

// Done forgets job id's model: the job ended, or its model changed.
func (in *Inspector) Done(id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.jobs, id)
	in.dropLocked("j:" + id)
}

// inboxModel returns the summary of the inbox model at path (opened
// without following a link), read once for this version, and the version:
// for an event that came without the inbox's inspection.
func (in *Inspector) inboxModel(path string) (*onnx.Summary, version, error) {
	f, fi, err := untrusted.Open(path)
	if err != nil {
		return nil, version{}, err
	}
	defer func() { _ = f.Close() }() // read-only; the parse returned any read error
	v := versionOf(fi)
	sum, err := in.read(f, path, v)
	return sum, v, err
}

// others returns the summaries of the other models in dir (nil for one
// that cannot be read: an upload in progress), read once per version, and
// forgets the files no longer there.
func (in *Inspector) others(dir, self string) map[string]*onnx.Summary {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]*onnx.Summary{}
	present := map[string]bool{}
	for _, e := range ents {
		present[filepath.Join(dir, e.Name())] = true
		if e.Name() == self || !inbox.IsCandidate(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if sum, _, err := in.inboxModel(filepath.Join(dir, e.Name())); err == nil {
			out[e.Name()] = sum
		}
	}
	in.mu.Lock()
	for p := range in.files {
		if filepath.Dir(p) == dir && !present[p] {
			delete(in.files, p)
			in.dropLocked("f:" + p)
		}
	}
	in.mu.Unlock()
	return out
}

// summaryCost estimates the bytes a summary holds.
func summaryCost(s *onnx.Summary) int64 {
	if s == nil {
		return 64
	}
	n := int64(512 + len(s.Producer.Name) + len(s.Producer.Version) + len(s.Domain) + len(s.GraphName))
	for k, v := range s.Metadata {
		n += 64 + int64(len(k)+len(v))
	}
	for k := range s.Opset {
		n += 48 + int64(len(k))
	}
	for k := range s.OpCounts {
		n += 48 + int64(len(k))
	}
	for _, o := range s.Ops {
		n += 48 + int64(len(o.Domain)+len(o.OpType))
	}
	for _, vs := range [][]onnx.ValueInfo{s.Inputs, s.Outputs} {
		for _, v := range vs {
			n += 64 + int64(len(v.Name)) + typeCost(v.Type)
		}
	}
	for _, d := range s.DynamicInputs {
		n += 16 + int64(len(d))
	}
	for _, r := range s.ExternalData {
		n += 128 + int64(len(r.Tensor)+len(r.Location)+len(r.Checksum)+len(r.Path))
	}
	return n
}

func typeCost(t *onnx.Type) int64 {
	if t == nil {
		return 0
	}
	n := int64(64 + len(t.Opaque))
	for _, d := range t.Shape {
		n += 40 + int64(len(d.Param))
	}
	return n + typeCost(t.Inner)
}
