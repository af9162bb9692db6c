package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/fleet/registrytest"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/atomicfile"
)

var (
	nano = protocol.Builder{Backend: "fake", TensorRT: "8.2.1", ComputeCapability: "5.3", GPU: "NVIDIA Tegra X1"}
	devA = Device{Builder: nano, L4T: "32.7.4", SoC: "tegra210", Kind: "nano-4G", Host: "nano-a"}
	devB = Device{Builder: nano, L4T: "32.7.4", SoC: "tegra210", Kind: "nano-4G", Host: "nano-b"}
	devC = Device{Builder: protocol.Builder{Backend: "fake", TensorRT: "8.5.2", ComputeCapability: "7.2", GPU: "Xavier"},
		L4T: "35.4.1", SoC: "tegra194", Kind: "xavier-8G", Host: "xavier-c"}
)

const modelSHA = "5f2b9c0e7a1d4b3c8e6f0a9d2c4b6e8f1a3c5e7d9b0f2a4c6e8d0b2f4a6c8e0d"

func keyFor(d Device, cacheKey string) Key {
	return Key{CacheKey: cacheKey, ModelSHA: modelSHA, Settings: "abc", Device: d}
}

// built writes what a build on d leaves: engine, provenance and report.
func built(t testing.TB, dir string, d Device, k Key, size int) Artifact {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	eng := make([]byte, size)
	rand.Read(eng)
	a := Artifact{Key: k, Engine: filepath.Join(dir, "model.engine"), Provenance: filepath.Join(dir, "model.engine.json"),
		Report: filepath.Join(dir, "model.report.json"), Model: "model.onnx", Stage: "lean", Built: time.Now().UTC()}
	if err := os.WriteFile(a.Engine, eng, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(eng)
	b := d.Builder
	p := &provenance.Provenance{Engine: "model.engine", EngineSHA: hex.EncodeToString(sum[:]), ModelSHA: k.ModelSHA,
		Model: "model.onnx", Stage: "lean", Builder: &b, Fingerprint: b.Fingerprint(), CacheKey: k.CacheKey,
		Job: "j1", Built: a.Built, Tool: "trtd test", L4T: d.L4T, SoC: d.SoC, Plugins: d.Plugins}
	if err := provenance.Write(a.Provenance, p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.Report, []byte(`{"outcome":"built"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

func client(t testing.TB, s *registrytest.Server, mod func(*Options)) *Client {
	t.Helper()
	creds, err := s.Creds(t.TempDir(), registrytest.Password)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Registry: s.Repository("trtd/engines"), Credentials: creds, CA: s.CA, Timeout: 10 * time.Second, Tool: "trtd test"}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%d and %d bytes)", a, b, len(x), len(y))
	}
}

// noFiles fails when dir holds anything (a failed pull leaves nothing).
func noFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left in %s: %s", dir, e.Name())
	}
}

func TestTagTiesEveryPartOfTheFingerprint(t *testing.T) {
	base := keyFor(devA, "ck1")
	if got := keyFor(devB, "ck1").Tag(); got != base.Tag() {
		t.Fatalf("same fingerprint, other host: tag %s != %s", got, base.Tag())
	}
	if !strings.HasPrefix(base.Tag(), modelPrefix(modelSHA)+"-") || len(base.Tag()) > 128 {
		t.Fatalf("tag %q", base.Tag())
	}
	variants := map[string]func(*Key){
		"cache key": func(k *Key) { k.CacheKey = "ck2" },
		"tensorrt":  func(k *Key) { k.Device.Builder.TensorRT = "8.2.2" },
		"cc":        func(k *Key) { k.Device.Builder.ComputeCapability = "7.2" },
		"gpu":       func(k *Key) { k.Device.Builder.GPU = "other" },
		"soc":       func(k *Key) { k.Device.SoC = "tegra186" },
		"l4t":       func(k *Key) { k.Device.L4T = "32.7.5" },
		"plugins":   func(k *Key) { k.Device.Plugins = map[string]string{"/usr/lib/libnvinfer_plugin.so.8": "ab"} },
	}
	for name, f := range variants {
		k := keyFor(devA, "ck1")
		f(&k)
		if k.Tag() == base.Tag() {
			t.Errorf("%s differs but the tag does not", name)
		}
	}
}

func TestCheckAnnotations(t *testing.T) {
	cases := map[string]map[string]string{
		"control":   {AnnStage: "lean\x1b[31m"},
		"newline":   {AnnBuiltBy: "a\nb"},
		"too long":  {AnnStage: strings.Repeat("x", maxAnnotationLen+1)},
		"bad utf-8": {AnnGPU: "\xff\xfe"},
	}
	many := map[string]string{}
	for i := 0; i <= maxAnnotations; i++ {
		many[fmt.Sprint("k", i)] = "v"
	}
	cases["too many"] = many
	for name, a := range cases {
		if err := checkAnnotations(a); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: got %v, want ErrRefused", name, err)
		}
	}
	if err := checkAnnotations(keyFor(devA, "ck").annotations("lean", "trtd 1", "m.onnx", time.Now())); err != nil {
		t.Errorf("our own annotations refused: %v", err)
	}
}

// Device A builds and pushes; device B (same fingerprint) pulls and gets
// the same bytes without building; device C (another GPU) finds nothing.
func TestPushThenPeerPulls(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	ca, cb, cc := client(t, s, nil), client(t, s, nil), client(t, s, nil)
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck1"), 1<<20+123)
	res, err := ca.Push(ctx, a)
	if err != nil || !res.Pushed || res.Kept != "" {
		t.Fatalf("push: %+v %v", res, err)
	}
	again, err := ca.Push(ctx, a)
	if err != nil || again.Pushed || again.Kept != "" || again.Digest != res.Digest {
		t.Fatalf("second push of the same engine must be a no-op: %+v %v", again, err)
	}
	dir := t.TempDir()
	p, err := cb.Pull(ctx, keyFor(devB, "ck1"), dir)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, a.Engine, p.Engine)
	sameFile(t, a.Provenance, p.Provenance)
	sameFile(t, a.Report, p.Report)
	if p.Digest != res.Digest || p.BuiltBy != "nano-a" || p.Stage != "lean" || !p.Built.Equal(a.Built) {
		t.Errorf("pulled %+v", p)
	}
	if !atomicfile.IsTemp(p.Engine) {
		t.Errorf("pulled engine %s is not a temporary name the outbox ignores", p.Engine)
	}
	p.Remove()
	noFiles(t, dir)

	if _, err := cc.Pull(ctx, keyFor(devC, "ck1"), dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("device C: got %v, want ErrNotFound", err)
	}
	es, skipped, err := cc.List(ctx, "")
	if err != nil || skipped != 0 || len(es) != 1 || !es[0].Fits(devB) || es[0].Fits(devC) || es[0].EngineSize != 1<<20+123 {
		t.Fatalf("list: %+v skipped %d %v", es, skipped, err)
	}
	// C must build, but starts where its peers of the same kind did; a
	// Nano's history says nothing to a Xavier.
	if st, err := cc.FirstStage(ctx, modelSHA, "nano-4G"); err != nil || st != "lean" {
		t.Errorf("first stage for nano-4G: %q %v", st, err)
	}
	if st, err := cc.FirstStage(ctx, modelSHA, "xavier-8G"); err != nil || st != "" {
		t.Errorf("first stage for xavier-8G: %q %v", st, err)
	}
}

// The annotations say "this device", the provenance inside says another
// compute capability: the provenance wins and nothing is pulled.
func TestPullVerifiesProvenanceNotAnnotations(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	c := client(t, s, nil)
	k := keyFor(devA, "ck-lie")
	liar := devA
	liar.Builder.ComputeCapability = "7.2"
	a := built(t, t.TempDir(), liar, k, 4096)
	if _, err := c.Push(ctx, a); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := c.Pull(ctx, keyFor(devB, "ck-lie"), dir)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "compute capability 7.2") {
		t.Fatalf("got %v, want ErrMismatch naming the compute capability", err)
	}
	noFiles(t, dir)
}

func TestBrokenRegistryFailsFast(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	// A server that accepts and never answers.
	stall, _ := net.Listen("tcp", "127.0.0.1:0")
	defer stall.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"down", func(o *Options) { o.Registry = down + "/trtd/engines" }, "connection refused"},
		// Only the stalled registry runs into the timeout: the others
		// answer, and each answer (a TLS handshake, a bcrypt check of the
		// password) must not be cut short by a loaded machine.
		{"stalled", func(o *Options) {
			o.Registry = stall.Addr().String() + "/trtd/engines"
			o.Timeout = 500 * time.Millisecond
		}, "timeout"},
		{"no CA: TLS is verified", func(o *Options) { o.CA = "" }, "certificate"},
		{"wrong password", func(o *Options) {
			registrytest.WriteCredentials(o.Credentials, s.Addr, registrytest.User, "wrong")
		}, "refused the credentials"},
		{"no credentials", func(o *Options) { o.Credentials = "" }, "has none for it"},
	}
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck1"), 1000)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, s, func(o *Options) { o.Timeout = 20 * time.Second; tc.mod(o) })
			start := time.Now()
			dir := t.TempDir()
			_, err := c.Pull(ctx, keyFor(devB, "ck1"), dir)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("pull: got %v, want ErrUnavailable with %q", err, tc.want)
			}
			if _, err := c.Push(ctx, a); !errors.Is(err, ErrUnavailable) {
				t.Errorf("push: got %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to give up", d)
			}
			noFiles(t, dir)
		})
	}
}

func TestCredentialsMustBeOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.json")
	registrytest.WriteCredentials(p, "r:5000", "u", "p")
	os.Chmod(p, 0o644)
	_, err := New(Options{Registry: "r:5000/trtd/engines", Credentials: p})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("got %v, want ErrConfig naming the mode", err)
	}
	os.Chmod(p, 0o600)
	if _, err := New(Options{Registry: "r:5000/trtd/engines", Credentials: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Registry: "r:5000/trtd/engines:latest"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a tagged reference: got %v", err)
	}
}

// Blobs changed on the registry's disk: same size other bytes, and more
// bytes than the manifest declares. Both are refused and nothing is left.
func TestCorruptedBlobsAreRefused(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	c := client(t, s, nil)
	for i, corrupt := range []func(path string){
		func(path string) { b, _ := os.ReadFile(path); b[len(b)/2] ^= 0xff; os.WriteFile(path, b, 0o644) },
		func(path string) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("trailing garbage"))
			f.Close()
		},
	} {
		ck := fmt.Sprint("ck-corrupt-", i)
		a := built(t, t.TempDir(), devA, keyFor(devA, ck), 64<<10)
		if _, err := c.Push(ctx, a); err != nil {
			t.Fatal(err)
		}
		pv, _ := provenance.Read(a.Provenance)
		corrupt(s.Blob(pv.EngineSHA))
		dir := t.TempDir()
		_, err := c.Pull(ctx, keyFor(devB, ck), dir)
		if !errors.Is(err, ErrRefused) && !errors.Is(err, ErrUnavailable) {
			t.Errorf("case %d: got %v, want a refusal", i, err)
		}
		if err == nil || !strings.Contains(err.Error(), "engine") {
			t.Errorf("case %d: the error should name the engine: %v", i, err)
		}
		noFiles(t, dir)
	}
}

// pushRaw stores a hand-made manifest under k's tag.
func pushRaw(t *testing.T, c *Client, k Key, m ocispec.Manifest) {
	t.Helper()
	ctx := context.Background()
	if err := c.pushBlob(ctx, ocispec.DescriptorEmptyJSON, ""); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digestOf(b), Size: int64(len(b))}
	if err := c.repo.PushReference(ctx, desc, bytes.NewReader(b), k.Tag()); err != nil {
		t.Fatal(err)
	}
}

func TestHostileManifestsAreRefused(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	c := client(t, s, nil)
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck-good"), 2048)
	if _, err := c.Push(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, good, err := c.fetchManifest(ctx, keyFor(devA, "ck-good").Tag())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(k Key, m *ocispec.Manifest){
		"control characters": func(k Key, m *ocispec.Manifest) { m.Annotations[AnnBuiltBy] = "nano\x1b]0;pwned\x07" },
		"not a trtd engine":  func(k Key, m *ocispec.Manifest) { m.ArtifactType = "application/vnd.other" },
		"no provenance layer": func(k Key, m *ocispec.Manifest) {
			m.Layers = m.Layers[:1]
		},
		"engine larger than allowed": func(k Key, m *ocispec.Manifest) { m.Layers[0].Size = 1 << 50 },
		"engine smaller than stored": func(k Key, m *ocispec.Manifest) { m.Layers[0].Size-- },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			k := keyFor(devA, "ck-"+strings.ReplaceAll(name, " ", "-"))
			m := *good
			m.Annotations = k.annotations("lean", "x", "m", time.Now())
			m.Layers = append([]ocispec.Descriptor(nil), good.Layers...)
			f(k, &m)
			pushRaw(t, c, k, m)
			dir := t.TempDir()
			if _, err := c.Pull(ctx, keyFor(devB, k.CacheKey), dir); !errors.Is(err, ErrRefused) && !errors.Is(err, ErrMismatch) {
				t.Errorf("got %v, want a refusal", err)
			}
			noFiles(t, dir)
		})
	}
}

// Two daemons push the same build at once (different engine bytes, as
// TensorRT builds are not bit-reproducible): the tag ends up naming one
// complete artifact, every push returns, and a push that did not win
// says why.
func TestConcurrentPushesLeaveOneArtifact(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		ck := fmt.Sprint("ck-race-", round)
		arts := []Artifact{built(t, t.TempDir(), devA, keyFor(devA, ck), 256<<10), built(t, t.TempDir(), devB, keyFor(devB, ck), 256<<10)}
		res := make([]PushResult, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range arts {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res[i], errs[i] = client(t, s, nil).Push(ctx, arts[i])
			}(i)
		}
		wg.Wait()
		for i := range res {
			if errs[i] != nil {
				t.Fatalf("push %d: %v", i, errs[i])
			}
			if !res[i].Pushed && res[i].Kept == "" {
				t.Errorf("push %d neither pushed nor said why not: %+v", i, res[i])
			}
		}
		p, err := client(t, s, nil).Pull(ctx, keyFor(devB, ck), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p.Engine)
		a0, _ := os.ReadFile(arts[0].Engine)
		a1, _ := os.ReadFile(arts[1].Engine)
		if !bytes.Equal(got, a0) && !bytes.Equal(got, a1) {
			t.Fatal("the tag names neither engine")
		}
	}
}

// trickle forwards to target but sends the answers at about 10 KB/s.
func trickle(t *testing.T, target string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go io.Copy(u, c)
			go func() {
				buf := make([]byte, 1024)
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for range tick.C {
					n, err := u.Read(buf)
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A registry that keeps sending, but too slowly, does not hold the build:
// the pull gives up once it averages less than minRate after its timeout.
func TestTricklingRegistryGivesUp(t *testing.T) {
	s := registrytest.T(t)
	ctx := context.Background()
	a := built(t, t.TempDir(), devA, keyFor(devA, "ck-slow"), 2<<20)
	if _, err := client(t, s, nil).Push(ctx, a); err != nil {
		t.Fatal(err)
	}
	slow := trickle(t, s.Addr)
	c := client(t, s, func(o *Options) {
		o.Registry = slow + "/trtd/engines"
		o.Timeout = 2 * time.Second
		registrytest.WriteCredentials(o.Credentials, slow, registrytest.User, registrytest.Password)
	})
	dir := t.TempDir()
	start := time.Now()
	_, err := c.Pull(ctx, keyFor(devB, "ck-slow"), dir)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v, want ErrUnavailable past the deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s; the deadline is 2s + 2 MiB at 1 MiB/s", d)
	}
	noFiles(t, dir)
}
