package fault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/internal/testmodels"
)

// Expectations of a hostile case.
const (
	wantRejected = "rejected" // a report that refuses it; never built
	wantBuilt    = "built"    // a valid model under an odd name: built
	wantAny      = "any"      // a report, whatever it says (fuzzed input)
	wantIgnored  = "ignored"  // not a candidate name: no report, untouched
)

type hcase struct {
	group string
	name  string
	data  []byte               // written with a dot-temp + rename
	make  func(p string) error // or made by this (p = inbox path)
	want  string
}

// truncOffsets are the structurally interesting offsets of a model: the
// start, second byte, middle and last byte of every top-level and graph
// field, plus 0, 1 and size-1.
func truncOffsets(t *testing.T, data []byte) []int {
	m, err := onnx.Read(bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	set := map[int]bool{0: true, 1: true, len(data) / 2: true, len(data) - 1: true}
	add := func(off, n int64) {
		for _, o := range []int64{off, off + 1, off + 2, off + n/2, off + n - 1} {
			if o >= 0 && o < int64(len(data)) {
				set[int(o)] = true
			}
		}
	}
	for _, f := range m.Fields {
		add(f.Span.Off, f.Span.Len)
	}
	for _, f := range m.Graph.Fields {
		add(f.Span.Off, f.Span.Len)
	}
	var out []int
	for o := range set {
		out = append(out, o)
	}
	sort.Ints(out)
	return out
}

func mutate(r *rand.Rand, src []byte) []byte {
	b := append([]byte(nil), src...)
	switch r.Intn(6) {
	case 0: // bit flips
		for i := 0; i < 1+r.Intn(8); i++ {
			p := r.Intn(len(b))
			b[p] ^= 1 << uint(r.Intn(8))
		}
	case 1: // random bytes over a span
		p := r.Intn(len(b))
		for i := p; i < len(b) && i < p+1+r.Intn(16); i++ {
			b[i] = byte(r.Intn(256))
		}
	case 2: // 0xff run (huge varints)
		p := r.Intn(len(b))
		for i := p; i < len(b) && i < p+10; i++ {
			b[i] = 0xff
		}
	case 3: // delete a chunk
		p := r.Intn(len(b))
		n := 1 + r.Intn(64)
		if p+n > len(b) {
			n = len(b) - p
		}
		b = append(b[:p], b[p+n:]...)
	case 4: // duplicate a chunk
		p := r.Intn(len(b))
		n := 1 + r.Intn(64)
		if p+n > len(b) {
			n = len(b) - p
		}
		chunk := append([]byte(nil), b[p:p+n]...)
		b = append(b[:p+n], append(chunk, b[p+n:]...)...)
	case 5: // set a length byte to zero or max
		p := r.Intn(len(b))
		b[p] = []byte{0, 0x7f, 0x80}[r.Intn(3)]
	}
	return b
}

// fifoProbe reports whether anyone opened the FIFO for reading: a
// non-blocking open for writing succeeds only then.
type fifoProbe struct {
	path   string
	opened atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newFIFOProbe(t *testing.T, path string) *fifoProbe {
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &fifoProbe{path: path, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err == nil {
				p.opened.Store(true)
				unix.Close(fd)
			}
		}
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *fifoProbe) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		p.wg.Wait()
	}
}

type fileID struct {
	sum   string
	ino   uint64
	mtime int64
	nlink uint64
}

func idOf(p string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fileID{}, err
	}
	b, _ := os.ReadFile(p)
	return fileID{hash(b), st.Ino, st.Mtim.Nano(), uint64(st.Nlink)}, nil
}

func hostileCases(t *testing.T, e *env, outside string) []hcase {
	var cs []hcase
	add := func(c hcase) { cs = append(cs, c) }
	tiny := testmodels.TinyCNN
	// 1. truncated at every structurally interesting offset
	for _, off := range truncOffsets(t, tiny) {
		add(hcase{group: "truncated", name: fmt.Sprintf("trunc-tiny-%05d.onnx", off), data: tiny[:off], want: wantRejected})
	}
	small := testmodels.SmallCNN
	for _, off := range []int{1, 100, len(small) / 4, len(small) / 2, 3 * len(small) / 4, len(small) - 100, len(small) - 1} {
		add(hcase{group: "truncated", name: fmt.Sprintf("trunc-small-%06d.onnx", off), data: small[:off], want: wantRejected})
	}
	// 2. random bytes
	r := rand.New(rand.NewSource(7))
	for i, n := range []int{1, 2, 3, 5, 8, 13, 64, 100, 255, 256, 1000, 4096, 12115, 65536, 100000, 7, 9, 31, 777, 2048} {
		b := make([]byte, n)
		r.Read(b)
		if i%3 == 0 {
			b[0] = 0x08 // looks like ir_version's tag
		}
		add(hcase{group: "random", name: fmt.Sprintf("random-%02d.onnx", i), data: b, want: wantRejected})
	}
	// 3. fuzz-mutated real models
	for i := 0; i < 40; i++ {
		src := tiny
		if i%4 == 3 {
			src = small
		}
		add(hcase{group: "mutated", name: fmt.Sprintf("mutated-%02d.onnx", i), data: mutate(r, src), want: wantAny})
	}
	// 4. valid protobuf that is not ONNX
	notONNX := [][]byte{
		pbStr(1, "hello"),
		pbVarint(1, 8),
		cat(pbVarint(1, 8), pbBytes(7, nil)),
		cat(pbStr(1, "foo.proto"), pbStr(2, "pkg")),
		pbVarint(100, 1),
		cat(pbVarint(1, 4), pbVarint(2, 1), pbBytes(9, make([]byte, 16))),   // a TensorProto
		cat(pbVarint(1, 8), pbBytes(8, cat(pbStr(1, ""), pbVarint(2, 17)))), // opset, no graph
		pbBytes(7, pbBytes(7, pbBytes(7, nil))),
		bytes.Repeat(pbVarint(1, 8), 1000),
		cat(pbVarint(1, 8), pbVarint(7, 3), pbBytes(8, cat(pbStr(1, ""), pbVarint(2, 17)))), // graph with the wrong wire type
	}
	for i, b := range notONNX {
		add(hcase{group: "not-onnx", name: fmt.Sprintf("protobuf-not-onnx-%02d.onnx", i), data: b, want: wantRejected})
	}
	// 5. absurd dims and counts
	var deep []byte = pbStr(2, "leaf")
	for i := 0; i < 300; i++ { // If node nesting: graph attribute inside graph
		attr := cat(pbStr(1, "then_branch"), pbBytes(6, deep), pbVarint(20, 5))
		deep = cat(pbBytes(1, cat(pbStr(1, "c"), pbStr(2, "o"), pbStr(4, "If"), pbBytes(5, attr))), pbStr(2, fmt.Sprintf("g%d", i)))
	}
	manyDims := make([][]byte, 2000)
	for i := range manyDims {
		manyDims[i] = dimV(1)
	}
	manyNodes := [][]byte{}
	for i := 0; i < 100000; i++ {
		manyNodes = append(manyNodes, pbBytes(1, node("Identity", []string{"X"}, []string{"Y"})))
	}
	bigInit := cat(pbVarint(1, 1<<31), pbVarint(1, 1<<31), pbVarint(2, 1), pbStr(8, "W"), pbBytes(9, make([]byte, 4)))
	manyInputs := make([]string, 100000)
	for i := range manyInputs {
		manyInputs[i] = "X"
	}
	absurd := [][]byte{
		identityModel(dimV(1 << 62)),
		identityModel(dimV(1<<64 - 1)),
		identityModel(dimV(0)),
		identityModel(manyDims...),
		identityModel(pbBytes(1, pbStr(2, strings.Repeat("N", 100000)))),
		onnxModel(cat(manyNodes...), pbBytes(11, valueInfo("X", dimV(1))), pbBytes(12, valueInfo("Y", dimV(1)))),
		onnxModel(pbBytes(1, node("Identity", []string{"X"}, []string{"Y"})), pbBytes(5, bigInit), pbBytes(11, valueInfo("X", dimV(1))), pbBytes(12, valueInfo("Y", dimV(1)))),
		onnxModel(pbBytes(1, node("Concat", manyInputs, []string{"Y"})), pbBytes(11, valueInfo("X", dimV(1))), pbBytes(12, valueInfo("Y", dimV(1)))),
		onnxModel(deep, pbBytes(11, valueInfo("X", dimV(1))), pbBytes(12, valueInfo("Y", dimV(1)))),
		cat(pbVarint(1, 1<<62), pbBytes(7, pbStr(2, "g")), pbBytes(8, cat(pbStr(1, ""), pbVarint(2, 1<<62)))),
		append(cat(pbVarint(1, 8), []byte{0x3a}), protowire1e18()...), // graph claims 10^18 bytes
		bytes.Repeat([]byte{0x80}, 4096), // unterminated varint
	}
	for i, b := range absurd {
		add(hcase{group: "absurd", name: fmt.Sprintf("absurd-%02d.onnx", i), data: b, want: wantAny})
	}
	// 6. external data that escapes
	for i, loc := range []string{"/etc/shadow", "../outside.bin", "sub/../../outside.bin", "a/../../../etc/passwd",
		"ext-link.bin", "missing.bin", "x\x00y", `C:\x`, `\\server\share`, "ext-fifo-link.bin", "ext-dir"} {
		add(hcase{group: "external", name: fmt.Sprintf("external-%02d.onnx", i), data: externalModel(loc), want: wantRejected})
	}
	// A hard link is the same file under an inbox name: only root can make
	// one to a file it does not own while fs.protected_hardlinks is on
	// (checked below), so an uploader gains nothing it could not read.
	add(hcase{group: "external", name: "external-hardlink.onnx", data: externalModel("ext-hardlink-shadow.bin"), want: wantAny})
	// 7. special files and links
	lnk := func(target string) func(string) error { return func(p string) error { return os.Symlink(target, p) } }
	outModel := filepath.Join(outside, "outside.onnx")
	victim := filepath.Join(e.outbox, "victim.engine")
	add(hcase{group: "links", name: "symlink-shadow.onnx", make: lnk("/etc/shadow"), want: wantRejected})
	add(hcase{group: "links", name: "symlink-fifo.onnx", make: lnk(filepath.Join(outside, "outside.fifo")), want: wantRejected})
	add(hcase{group: "links", name: "symlink-outside-model.onnx", make: lnk(outModel), want: wantRejected})
	add(hcase{group: "links", name: "symlink-outbox.onnx", make: lnk(victim), want: wantRejected})
	add(hcase{group: "links", name: "symlink-relative-outbox.onnx", make: lnk("../outbox/victim.engine"), want: wantRejected})
	add(hcase{group: "links", name: "symlink-dangling.onnx", make: lnk("/nonexistent/x.onnx"), want: wantRejected})
	add(hcase{group: "links", name: "symlink-devzero.onnx", make: lnk("/dev/zero"), want: wantRejected})
	add(hcase{group: "links", name: "symlink-dir.onnx", make: lnk("."), want: wantRejected})
	add(hcase{group: "links", name: "symlink-loop.onnx", make: lnk("symlink-loop.onnx"), want: wantRejected})
	add(hcase{group: "links", name: "symlink-proc.onnx", make: lnk("/proc/self/environ"), want: wantRejected})
	add(hcase{group: "links", name: "hardlink-shadow.onnx", make: func(p string) error { return os.Link("/etc/shadow", p) }, want: wantRejected})
	add(hcase{group: "links", name: "hardlink-outside-model.onnx", make: func(p string) error { return os.Link(outModel, p) }, want: wantAny})
	add(hcase{group: "special", name: "fifo.onnx", make: func(p string) error { return unix.Mkfifo(p, 0o666) }, want: wantRejected})
	add(hcase{group: "special", name: "socket.onnx", make: func(p string) error {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err == nil {
			l.SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}
		return err
	}, want: wantRejected})
	add(hcase{group: "special", name: "dir.onnx", make: func(p string) error { return os.Mkdir(p, 0o755) }, want: wantRejected})
	add(hcase{group: "special", name: "dir-with-model.onnx", make: func(p string) error {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(p, "inner.onnx"), tiny, 0o644)
	}, want: wantRejected})
	add(hcase{group: "special", name: "chardev.onnx", make: func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) }, want: wantRejected})
	add(hcase{group: "special", name: "empty.onnx", data: []byte{}, want: wantRejected})
	add(hcase{group: "special", name: "too-large.onnx", make: func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Write(tiny); err != nil {
			return err
		}
		return f.Truncate(3 << 20) // inbox.max_bytes is 2M in this env
	}, want: wantRejected})
	add(hcase{group: "special", name: "other-user-0600.onnx", make: func(p string) error {
		if err := os.WriteFile(p, identityModel(dimV(99)), 0o600); err != nil {
			return err
		}
		return os.Chown(p, 65534, 65534)
	}, want: wantBuilt})
	// 8. odd names, valid content (each distinct)
	names := []string{"my model.onnx", "a\nb.onnx", "-rf.onnx", "--help.onnx", "\xff\xfe.onnx", strings.Repeat("m", 250) + ".onnx",
		strings.Repeat("é", 125) + ".onnx", "модель.onnx", "tab\there.onnx", "quote'\"q.onnx", "$(touch pwned).onnx", "back\\slash.onnx",
		"semi;colon.onnx", "star*?.onnx", " leading-space.onnx", "trailing-space .onnx", "a.onnx.onnx", "cr\r.onnx", "\x01ctrl.onnx",
		"emoji😀.onnx", "%s%n.onnx", "-.onnx", "x.onnx\x7f.onnx", "<html>.onnx"}
	for i, n := range names {
		add(hcase{group: "names", name: n, data: identityModel(dimV(uint64(1000 + i))), want: wantBuilt})
	}
	// 9. ignored names: never candidates, left alone, no report
	for _, n := range []string{"x.ONNX", ".hidden.onnx", "x.onnx.filepart", "x.onnx.tmp", "x.onnx~", ".onnx", "x.onnx.part", "x.onnx.partial", "noext", "x.onnxx"} {
		add(hcase{group: "ignored", name: n, data: tiny, want: wantIgnored})
	}
	return cs
}

// protowire1e18 is the varint 10^18 (an absurd length).
func protowire1e18() []byte {
	var b []byte
	v := uint64(1e18)
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// TestHostileInbox drops every hostile case into one running daemon and
// checks each got a clear decision, nothing outside the inbox was read,
// moved or written, and the daemon keeps serving.
func TestHostileInbox(t *testing.T) {
	suite(t)
	needRoot(t)
	e := newEnv(t, withConfig("[inbox]\nmax_bytes = \"2M\"\n"))
	// The [inbox] table appears twice otherwise: rewrite the config.
	b, _ := os.ReadFile(e.cfgPath)
	cfg := strings.Replace(string(b), "[inbox]\nmax_bytes = \"2M\"\n", "", 1)
	cfg = strings.Replace(cfg, "rescan = \"1s\"", "rescan = \"1s\"\nmax_bytes = \"2M\"", 1)
	os.WriteFile(e.cfgPath, []byte(cfg), 0o644)

	outside := filepath.Join(e.root, "outside")
	os.MkdirAll(outside, 0o755)
	os.MkdirAll(e.outbox, 0o755)
	os.MkdirAll(e.inbox, 0o755)
	outModel := identityModel(dimV(4242))
	os.WriteFile(filepath.Join(outside, "outside.onnx"), outModel, 0o644)
	os.WriteFile(filepath.Join(outside, "outside.bin"), make([]byte, 64), 0o644)
	os.WriteFile(filepath.Join(e.outbox, "victim.engine"), []byte("victim"), 0o644)
	probe := newFIFOProbe(t, filepath.Join(outside, "outside.fifo"))
	opens := newOpenWatch(t, outside)
	// companions of the external-data cases
	os.Symlink(filepath.Join(outside, "outside.bin"), filepath.Join(e.inbox, "ext-link.bin"))
	os.Symlink(filepath.Join(outside, "outside.fifo"), filepath.Join(e.inbox, "ext-fifo-link.bin"))
	os.Mkdir(filepath.Join(e.inbox, "ext-dir"), 0o755)
	os.Link("/etc/shadow", filepath.Join(e.inbox, "ext-hardlink-shadow.bin"))
	shadow, _ := os.ReadFile("/etc/shadow")
	protect := []string{"/etc/shadow", "/etc/passwd", filepath.Join(outside, "outside.onnx"), filepath.Join(outside, "outside.bin"), filepath.Join(e.outbox, "victim.engine")}
	before := map[string]fileID{}
	for _, p := range protect {
		before[p], _ = idOf(p)
	}

	e.start()
	daemonPID := e.pid()
	cases := hostileCases(t, e, outside)
	made := map[string]bool{}
	var madeList []hcase
	for _, c := range cases {
		p := filepath.Join(e.inbox, c.name)
		var err error
		if c.make != nil {
			err = c.make(p)
		} else {
			tmp := filepath.Join(e.inbox, ".up-tmp")
			if err = os.WriteFile(tmp, c.data, 0o644); err == nil {
				err = os.Rename(tmp, p)
			}
		}
		if err != nil {
			if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) {
				t.Logf("case %q not possible here: %v", c.name, err)
				continue
			}
			t.Fatalf("make %q: %v", c.name, err)
		}
		made[c.name] = true
		madeList = append(madeList, c)
	}
	t.Logf("%d hostile cases in the inbox", len(madeList))
	// Wait for a decision on every case that gets one.
	ok := eventually(90*time.Second, func() bool {
		reps := e.reports()
		for _, c := range madeList {
			if c.want != wantIgnored && len(reps[c.name]) == 0 && len(reps[strings.ToValidUTF8(c.name, "\uFFFD")]) == 0 {
				return false
			}
		}
		for _, j := range e.jobs() {
			if !terminal(j.State) {
				return false
			}
		}
		return true
	})
	reps := e.reports()
	engines := e.engines()
	if !ok {
		var missing []string
		for _, c := range madeList {
			if c.want != wantIgnored && len(reps[c.name]) == 0 && len(reps[strings.ToValidUTF8(c.name, "\uFFFD")]) == 0 {
				missing = append(missing, fmt.Sprintf("%q", c.name))
			}
		}
		t.Errorf("no decision after 90s for %d cases: %s", len(missing), strings.Join(missing, " "))
	}
	// The daemon is alive and still serves.
	if !e.running() {
		t.Fatalf("daemon died: %v", e.waitErr)
	}
	e.drop("after-hostile.onnx", testmodels.TinyCNN)
	if !eventually(30*time.Second, func() bool { _, ok := e.engines()["after-hostile.engine"]; return ok }) {
		t.Error("daemon stopped serving after the hostile cases")
	}
	e.stop()
	for _, c := range madeList {
		c := c
		t.Run(c.group+"/"+fmt.Sprintf("%q", c.name), func(t *testing.T) {
			rs := reps[c.name]
			if len(rs) == 0 {
				// JSON cannot carry invalid UTF-8: the report names it with U+FFFD.
				rs = reps[strings.ToValidUTF8(c.name, "\uFFFD")]
			}
			p := filepath.Join(e.inbox, c.name)
			switch c.want {
			case wantIgnored:
				if len(rs) > 0 {
					t.Fatalf("report for an ignored name: %+v", rs)
				}
				if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, c.data) {
					t.Fatalf("ignored file touched: %v", err)
				}
				return
			}
			if len(rs) == 0 {
				t.Fatal("no report")
			}
			rep := rs[0]
			if len(shadow) > 20 && strings.Contains(rep.Reason, string(shadow[:20])) {
				t.Fatal("report leaks /etc/shadow")
			}
			switch c.want {
			case wantRejected:
				if rep.Outcome == "built" || rep.Outcome == "reused" {
					t.Fatalf("hostile input was built: %+v", rep)
				}
				if rep.Reason == "" {
					t.Fatal("rejection without a reason")
				}
				if c.data != nil {
					// Nothing lost: left untouched in the inbox, or kept
					// (moved aside) where the report says.
					kept := rep.KeptModel
					if kept == "" {
						kept = p
					}
					if b, err := os.ReadFile(kept); err != nil || !bytes.Equal(b, c.data) {
						t.Fatalf("rejected file not kept as it was at %s: %v", kept, err)
					}
				}
			case wantBuilt:
				if rep.Outcome != "built" && rep.Outcome != "reused" {
					t.Fatalf("outcome %q (%s), want built", rep.Outcome, rep.Reason)
				}
				if rep.Engine == nil || engines[rep.Engine.File] == "" {
					t.Fatalf("engine %+v missing from the outbox", rep.Engine)
				}
				if c.data != nil && engines[rep.Engine.File] != hash(c.data) {
					t.Fatalf("engine %s built from other content", rep.Engine.File)
				}
				if strings.ContainsAny(rep.Engine.File, "/\n\r\x00") || strings.HasPrefix(rep.Engine.File, "-") || strings.HasPrefix(rep.Engine.File, ".") {
					t.Fatalf("unsafe outbox name %q", rep.Engine.File)
				}
			case wantAny:
				if rep.Outcome == "" {
					t.Fatal("report without an outcome")
				}
				if (rep.Outcome == "built" || rep.Outcome == "reused") && c.data != nil && (rep.Engine == nil || engines[rep.Engine.File] != hash(c.data)) {
					t.Fatal("built engine does not match the input")
				}
				if rep.Outcome != "built" && rep.Outcome != "reused" && rep.Reason == "" {
					t.Fatal("refusal without a reason")
				}
			}
		})
	}
	t.Run("outside/untouched", func(t *testing.T) {
		for _, p := range protect {
			now, err := idOf(p)
			if err != nil || now.sum != before[p].sum || now.ino != before[p].ino || now.mtime != before[p].mtime {
				t.Errorf("%s changed or moved: %v", p, err)
			}
		}
		for name, sum := range engines {
			if sum == hash(outModel) && name != "hardlink-outside-model.engine" {
				t.Errorf("%s was built from the model outside the inbox", name)
			}
		}
	})
	t.Run("outside/protected_hardlinks", func(t *testing.T) {
		if b, err := os.ReadFile("/proc/sys/fs/protected_hardlinks"); err != nil || strings.TrimSpace(string(b)) != "1" {
			t.Errorf("fs.protected_hardlinks is not 1 (%q, %v): users could hard-link files they cannot read into the inbox", b, err)
		}
	})
	t.Run("outside/fifo-never-opened", func(t *testing.T) {
		probe.Close()
		if probe.opened.Load() {
			t.Error("the daemon opened a FIFO outside the inbox for reading")
		}
	})
	t.Run("outside/never-opened", func(t *testing.T) {
		if n := opens.openedBy(daemonPID); n > 0 {
			t.Errorf("the daemon opened files outside the inbox %d times (fanotify)", n)
		}
	})
	t.Run("outside/no-files-written", func(t *testing.T) {
		ents := listDir(outside)
		sort.Strings(ents)
		if strings.Join(ents, ",") != "outside.bin,outside.fifo,outside.onnx" {
			t.Errorf("outside dir now holds %v", ents)
		}
		if _, err := os.Stat(filepath.Join(e.root, "pwned")); err == nil {
			t.Error("a file name was run as a shell command")
		}
	})
}

// TestSymlinkSwapRace swaps race.onnx between a regular file (model A) and
// a symbolic link to a model outside the inbox (model B) or to an outside
// FIFO, as fast as it can, while the daemon scans and opens it. Nothing
// built may come from B, B stays where it is, the FIFO is never opened.
func TestSymlinkSwapRace(t *testing.T) {
	suite(t)
	needRoot(t)
	// 2,000 swaps never caught the pre-claim open in daemon.companions;
	// 10,000 did (about 4 s).
	iters := 10000
	if soak() {
		iters = 50000
	}
	e := newEnv(t, withSettle(100*time.Millisecond))
	outside := filepath.Join(e.root, "outside")
	os.MkdirAll(outside, 0o755)
	a, b := identityModel(dimV(1)), identityModel(dimV(2))
	bPath := filepath.Join(outside, "b.onnx")
	os.WriteFile(bPath, b, 0o644)
	probe := newFIFOProbe(t, filepath.Join(outside, "fifo"))
	bID, _ := idOf(bPath)
	opens := newOpenWatch(t, outside)
	e.start()
	final := filepath.Join(e.inbox, "race.onnx")
	tmp := filepath.Join(e.inbox, ".race-tmp")
	for i := 0; i < iters; i++ {
		os.Remove(tmp)
		var err error
		switch i % 3 {
		case 0:
			err = os.WriteFile(tmp, a, 0o644)
		case 1:
			err = os.Symlink(bPath, tmp)
		case 2:
			err = os.Symlink(filepath.Join(outside, "fifo"), tmp)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(final)
	// Every job there will be: a stop waits for the claim under way (a
	// sleep guessed how long it takes), and with the name gone no claim
	// follows. The restart finishes the builds the stop interrupted.
	e.stop()
	n := len(e.jobs())
	e.start()
	js := e.waitJobs(n, 120*time.Second)
	probe.Close()
	t.Logf("%d swaps, %d jobs claimed from the regular file", iters, len(js))
	for _, j := range js {
		if j.ModelSHA == hash(b) {
			t.Fatalf("job %s was built from the model outside the inbox", j.ID)
		}
		if j.ModelSHA != "" && j.ModelSHA != hash(a) {
			t.Fatalf("job %s built from unexpected content", j.ID)
		}
	}
	for name, sum := range e.engines() {
		if sum == hash(b) {
			t.Fatalf("%s built from the model outside the inbox", name)
		}
	}
	if now, err := idOf(bPath); err != nil || now != bID {
		t.Fatalf("the outside model was moved or changed: %v", err)
	}
	if probe.opened.Load() {
		t.Fatal("the daemon opened the outside FIFO")
	}
	if n := opens.openedBy(e.pid()); n > 0 {
		t.Fatalf("the daemon opened files outside the inbox %d times (fanotify)", n)
	}
	if !e.running() {
		t.Fatal("daemon died")
	}
}
