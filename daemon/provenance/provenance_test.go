package provenance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/protocol"
)

var nano = protocol.Builder{Backend: "api", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"}

func TestDifferences(t *testing.T) {
	up := nano
	up.TensorRT = "8.5.2"
	orin := protocol.Builder{Backend: "api", TensorRT: "8.5.2", GPU: "Orin", ComputeCapability: "8.7"}
	for _, tc := range []struct {
		name string
		p    Provenance
		cur  Current
		want []string // substrings, one per difference; nil = match
	}{
		{"same", Provenance{Builder: &nano, L4T: "32.7.4"}, Current{Builder: nano, L4T: "32.7.4"}, nil},
		{"tensorrt upgrade", Provenance{Builder: &nano}, Current{Builder: up}, []string{"TensorRT 8.2.1, this device now has 8.5.2"}},
		{"other board", Provenance{Builder: &nano}, Current{Builder: orin}, []string{"TensorRT", "compute capability 5.3, this GPU is 8.7", "GPU"}},
		{"l4t upgrade", Provenance{Builder: &nano, L4T: "32.7.1"}, Current{Builder: nano, L4T: "32.7.4"}, []string{"L4T 32.7.1, this device runs L4T 32.7.4"}},
		{"l4t not recorded", Provenance{Builder: &nano}, Current{Builder: nano, L4T: "32.7.4"}, nil},
		{"plugin changed", Provenance{Builder: &nano, Plugins: map[string]string{"/usr/lib/libnvinfer_plugin.so.8": "aa"}},
			Current{Builder: nano, Plugins: map[string]string{"/usr/lib/libnvinfer_plugin.so.8": "bb"}}, []string{"plugin library /usr/lib/libnvinfer_plugin.so.8 changed"}},
		{"plugin gone", Provenance{Builder: &nano, Plugins: map[string]string{"/x/libp_plugin.so": "aa"}},
			Current{Builder: nano, Plugins: map[string]string{}}, []string{"is gone"}},
		{"no builder", Provenance{}, Current{Builder: nano}, []string{"records no builder"}},
		// The trtexec backend's start-up probe knows the TensorRT version
		// but not the GPU; a build's provenance knows both.
		{"trtexec probe knows no GPU", Provenance{Builder: &nano}, Current{Builder: protocol.Builder{Backend: "trtexec", TensorRT: "8.2.1"}}, nil},
		{"trtexec probe sees an upgrade", Provenance{Builder: &nano}, Current{Builder: protocol.Builder{Backend: "trtexec", TensorRT: "8.5.2"}},
			[]string{"TensorRT 8.2.1, this device now has 8.5.2"}},
		{"provenance without GPU", Provenance{Builder: &protocol.Builder{TensorRT: "8.2.1"}}, Current{Builder: nano}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Differences(&tc.p, tc.cur)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d differences", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("difference %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestReadL4T(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
		err                 bool
	}{
		{"nano", "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64, DATE: Fri Jun  9 04:25:08 UTC 2023\n", "32.7.4", false},
		{"orin", "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64\nINSTALL_TYPE=\n", "36.3.0", false},
		{"absent", "", "", false},
		{"garbage", "hello\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.content != "" {
				os.MkdirAll(filepath.Join(root, "etc"), 0o755)
				os.WriteFile(filepath.Join(root, "etc", "nv_tegra_release"), []byte(tc.content), 0o644)
			}
			got, err := ReadL4T(root)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ReadL4T = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPluginHashesAndTimingCacheID(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "libnvinfer_plugin.so.8")
	os.WriteFile(plugin, []byte("plugin v1"), 0o644)
	os.WriteFile(filepath.Join(dir, "libnvinfer.so.8"), []byte("core"), 0o644)
	b := protocol.Builder{Libraries: map[string]string{"libnvinfer_plugin.so.8": plugin, "libnvinfer.so.8": filepath.Join(dir, "libnvinfer.so.8")}}
	h := PluginHashes(b)
	if len(h) != 1 || h[plugin] != sum([]byte("plugin v1")) {
		t.Errorf("PluginHashes = %v", h)
	}
	cache := filepath.Join(dir, "8.2.1-sm5.3.cache")
	if TimingCacheID(cache) != "" {
		t.Error("an absent cache has an id")
	}
	os.WriteFile(cache, []byte("tc"), 0o644)
	if id := TimingCacheID(cache); !strings.HasPrefix(id, "8.2.1-sm5.3.cache@sha256:"+sum([]byte("tc"))[:16]) {
		t.Errorf("TimingCacheID = %q", id)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// world is an outbox and state dir as the daemon leaves them.
type world struct {
	Dirs
	root string
}

func newWorld(t *testing.T) *world {
	root := t.TempDir()
	w := &world{root: root, Dirs: Dirs{Inbox: filepath.Join(root, "inbox"), Outbox: filepath.Join(root, "outbox"), State: filepath.Join(root, "state")}}
	for _, d := range []string{w.Inbox, w.Outbox, w.State} {
		os.MkdirAll(d, 0o755)
	}
	return w
}

// built records an engine of model (content data) built by b in job, with
// the kept model (and a sidecar) in the job's directory.
func (w *world) built(t *testing.T, name, job string, data []byte, b protocol.Builder, keep bool) {
	t.Helper()
	os.WriteFile(filepath.Join(w.Outbox, name+".engine"), []byte("engine of "+name), 0o644)
	p := &Provenance{Engine: name + ".engine", EngineSHA: sum([]byte("engine of " + name)), ModelSHA: sum(data), Model: name + ".onnx",
		Stage: "lean", Builder: &b, Fingerprint: b.Fingerprint(), Job: job, Built: time.Now().UTC(), Tool: "trtd test"}
	if err := Write(filepath.Join(w.Outbox, name+Suffix), p); err != nil {
		t.Fatal(err)
	}
	if keep {
		md := filepath.Join(w.State, "jobs", job, "model")
		os.MkdirAll(md, 0o755)
		os.WriteFile(filepath.Join(md, name+".onnx"), data, 0o644)
		os.WriteFile(filepath.Join(md, name+".toml"), []byte("precision = \"fp16\"\n"), 0o644)
		os.WriteFile(filepath.Join(w.State, "jobs", job, "job.json"), []byte(`{"id":"`+job+`","name":"`+name+`.onnx","sidecar":"`+name+`.toml"}`), 0o644)
	}
}

func TestStaleListsOnlyInvalidatedEngines(t *testing.T) {
	w := newWorld(t)
	old := nano
	w.built(t, "fresh", "j1", []byte("model fresh"), nano, true)
	up := nano
	up.TensorRT = "8.5.2"
	w.built(t, "upgraded", "j2", []byte("model upgraded"), up, true)
	w.built(t, "removed", "j3", []byte("model removed"), up, true)
	os.Remove(filepath.Join(w.Outbox, "removed.engine")) // the user took the engine away
	os.WriteFile(filepath.Join(w.Outbox, "broken"+Suffix), []byte("{not json"), 0o644)

	// The device was upgraded from 8.2.1 to 8.5.2: fresh is stale now.
	got, err := Stale(w.Outbox, up, "")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "broken.engine.json") {
		t.Errorf("corrupt provenance: err = %v, want ErrCorrupt naming the file", err)
	}
	if len(got) != 1 || got[0].Name != "fresh" || got[0].Job != "j1" || got[0].Was != old.Fingerprint() {
		t.Fatalf("stale = %+v, want only fresh", got)
	}
	if !strings.Contains(got[0].Reasons[0], "TensorRT 8.2.1, this device now has 8.5.2") {
		t.Errorf("reason = %q", got[0].Reasons)
	}
	if len(got[0].Files) != 1 || filepath.Base(got[0].Files[0]) != "fresh.engine" {
		t.Errorf("files = %v", got[0].Files)
	}
}

func TestRequeueStaleRebuildsFromTheKeptModel(t *testing.T) {
	w := newWorld(t)
	data := []byte("the model bytes")
	w.built(t, "resnet18", "job-a", data, nano, true)
	up := Current{Builder: nano, L4T: "35.4.1"}
	up.Builder.TensorRT = "8.5.2"

	// Dry run: listed, nothing written.
	acts, err := RequeueStale(nil, w.Dirs, up, true)
	if err != nil || len(acts) != 1 || acts[0].Skipped != "" || acts[0].Requeued {
		t.Fatalf("dry run: %+v, %v", acts, err)
	}
	if ents, _ := os.ReadDir(w.Inbox); len(ents) != 0 {
		t.Fatalf("dry run wrote into the inbox: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(w.State, RebuildDir)); err == nil {
		t.Fatal("dry run recorded a request")
	}

	acts, err = RequeueStale(nil, w.Dirs, up, false)
	if err != nil || len(acts) != 1 || !acts[0].Requeued {
		t.Fatalf("requeue: %+v, %v", acts, err)
	}
	got, err := os.ReadFile(filepath.Join(w.Inbox, "resnet18.onnx"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("inbox model: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(w.Inbox, "resnet18.toml")); err != nil {
		t.Errorf("the settings file did not come along: %v", err)
	}
	ents, _ := os.ReadDir(w.Inbox)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left in the inbox: %s", e.Name())
		}
	}
	// The kept model is still there (the inbox copy is claimed away).
	if _, err := os.Stat(filepath.Join(w.State, "jobs", "job-a", "model", "resnet18.onnx")); err != nil {
		t.Errorf("kept model gone: %v", err)
	}

	// The daemon claims it (empties the inbox); a restart before the
	// rebuild finished must not requeue it again.
	os.Remove(filepath.Join(w.Inbox, "resnet18.onnx"))
	os.Remove(filepath.Join(w.Inbox, "resnet18.toml"))
	acts, _ = RequeueStale(nil, w.Dirs, up, false)
	if len(acts) != 1 || acts[0].Requeued || !strings.Contains(acts[0].Skipped, "already requested") {
		t.Fatalf("second start: %+v", acts)
	}
	// The rebuild published a fresh engine for the same model (a new job):
	// not stale, still not requeued, and the request is forgotten.
	w.built(t, "resnet18", "job-b", data, up.Builder, true)
	pv, _ := Read(filepath.Join(w.Outbox, "resnet18"+Suffix))
	pv.L4T = "35.4.1"
	Write(filepath.Join(w.Outbox, "resnet18"+Suffix), pv)
	acts, _ = RequeueStale(nil, w.Dirs, up, false)
	if len(acts) != 0 {
		t.Fatalf("after the rebuild: %+v", acts)
	}
	if ents, _ := os.ReadDir(filepath.Join(w.State, RebuildDir)); len(ents) != 0 {
		t.Errorf("request not forgotten: %v", ents)
	}
}

func TestRequeueStaleRefuses(t *testing.T) {
	up := Current{Builder: nano}
	up.Builder.TensorRT = "8.5.2"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, w *world)
		want  string
	}{
		{"kept model gone", func(t *testing.T, w *world) {
			w.built(t, "m", "j", []byte("m"), nano, false)
		}, "is gone"},
		{"kept model changed", func(t *testing.T, w *world) {
			w.built(t, "m", "j", []byte("m"), nano, true)
			os.WriteFile(filepath.Join(w.State, "jobs", "j", "model", "m.onnx"), []byte("tampered"), 0o644)
		}, "does not hash"},
		{"upload of the same name waiting", func(t *testing.T, w *world) {
			w.built(t, "m", "j", []byte("m"), nano, true)
			os.WriteFile(filepath.Join(w.Inbox, "m.onnx"), []byte("a newer upload"), 0o644)
		}, "is in the inbox"},
		{"path in the provenance", func(t *testing.T, w *world) {
			w.built(t, "m", "j", []byte("m"), nano, true)
			p, _ := Read(filepath.Join(w.Outbox, "m"+Suffix))
			p.Job = "../../etc"
			Write(filepath.Join(w.Outbox, "m"+Suffix), p)
		}, "not plain names"},
		{"job record unreadable", func(t *testing.T, w *world) {
			w.built(t, "m", "j", []byte("m"), nano, true)
			if err := os.WriteFile(filepath.Join(w.State, "jobs", "j", "job.json"), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "companions are unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(t, w)
			before, _ := os.ReadFile(filepath.Join(w.Inbox, "m.onnx"))
			acts, err := RequeueStale(nil, w.Dirs, up, false)
			if err != nil || len(acts) != 1 {
				t.Fatalf("%+v, %v", acts, err)
			}
			if acts[0].Requeued || !strings.Contains(acts[0].Skipped, tc.want) {
				t.Errorf("action %+v, want skipped with %q", acts[0], tc.want)
			}
			after, _ := os.ReadFile(filepath.Join(w.Inbox, "m.onnx"))
			if string(before) != string(after) {
				t.Errorf("the inbox changed: %q -> %q", before, after)
			}
		})
	}
}

// A kept model found changed is hashed once: the next start finds the
// same file (size, mtime, inode) recorded and says so without reading
// it again; a file changed once more is hashed again.
func TestRequeueStaleChangedModelHashedOnce(t *testing.T) {
	up, w, kept := upgradedWorld(t)
	os.WriteFile(kept, []byte("tampered"), 0o644)
	var hashed int
	orig := hashFile
	hashFile = func(p string) (string, error) { hashed++; return orig(p) }
	t.Cleanup(func() { hashFile = orig })
	for i, want := range []int{1, 1, 2} {
		if i == 2 {
			os.WriteFile(kept, []byte("tampered again"), 0o644)
		}
		acts, err := RequeueStale(nil, w.Dirs, up, false)
		if err != nil || len(acts) != 1 || acts[0].Requeued || !strings.Contains(acts[0].Skipped, "does not hash") {
			t.Fatalf("start %d: %+v, %v", i+1, acts, err)
		}
		if hashed != want {
			t.Errorf("start %d: hashed %d times in all, want %d", i+1, hashed, want)
		}
	}
	// Put back as built: hashed, matches, rebuilt.
	os.WriteFile(kept, []byte("m"), 0o644)
	acts, err := RequeueStale(nil, w.Dirs, up, false)
	if err != nil || len(acts) != 1 || !acts[0].Requeued {
		t.Fatalf("restored: %+v, %v", acts, err)
	}
}

// A model damaged in place and restored with its old size, mtime and
// inode (what `cp -p backup kept` does) is hashed again, seen whole, and
// rebuilt: only its ctime tells, and the marker holds it.
func TestRequeueStaleRestoredModelRebuilt(t *testing.T) {
	up, w, kept := upgradedWorld(t)
	fi, err := os.Stat(kept)
	if err != nil {
		t.Fatal(err)
	}
	inPlace := func(b []byte) { // same inode, same size, same mtime
		if err := os.WriteFile(kept, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(kept, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	inPlace([]byte("x"))
	acts, err := RequeueStale(nil, w.Dirs, up, false)
	if err != nil || len(acts) != 1 || acts[0].Requeued || !strings.Contains(acts[0].Skipped, "does not hash") {
		t.Fatalf("damaged: %+v, %v", acts, err)
	}
	damaged, _ := keptFile(kept)
	// The kernel's ctime is coarse (a tick): restore until it has moved,
	// as any later restore's would have.
	deadline := time.Now().Add(5 * time.Second)
	for k := damaged; k.CtimeNs == damaged.CtimeNs; k, _ = keptFile(kept) {
		if time.Now().After(deadline) {
			t.Fatal("the kept model's ctime never moved")
		}
		inPlace([]byte("m"))
	}
	if k, _ := keptFile(kept); k.Size != damaged.Size || k.MtimeNs != damaged.MtimeNs || k.Ino != damaged.Ino {
		t.Fatalf("not restored in place: %+v, damaged %+v", k, damaged)
	}
	acts, err = RequeueStale(nil, w.Dirs, up, false)
	if err != nil || len(acts) != 1 || !acts[0].Requeued {
		t.Fatalf("restored: %+v, %v", acts, err)
	}
}

// upgradedWorld is a world with one engine built from the model "m" (job
// j, kept at kept) on the Nano, and the builder upgraded since.
func upgradedWorld(t *testing.T) (up Current, w *world, kept string) {
	t.Helper()
	up = Current{Builder: nano}
	up.Builder.TensorRT = "8.5.2"
	w = newWorld(t)
	w.built(t, "m", "j", []byte("m"), nano, true)
	return up, w, filepath.Join(w.State, "jobs", "j", "model", "m.onnx")
}
