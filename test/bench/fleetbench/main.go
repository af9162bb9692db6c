// Command fleetbench measures obtaining an engine from the fleet registry:
// Debian's docker-registry on loopback (TLS, htpasswd), an engine of
// -size bytes pushed once, then pulled by trtd's fleet client in a process
// of its own (streamed to disk, sha256 and provenance checked) beside the
// reference, curl fetching the same blob through the same registry. Runs
// alternate; each figure is the median with the spread. Then -devices
// processes pull the same engine at once. It prints Markdown.
//
// Usage: go run ./test/bench/fleetbench [-size 100M] [-runs 5] [-devices 50]
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/fleet/registrytest"
	"github.com/trtd/trtd/daemon/provenance"
)

var (
	size    = flag.String("size", "100M", "engine size (K, M, G: binary units)")
	runs    = flag.Int("runs", 9, "runs per figure")
	devices = flag.Int("devices", 50, "devices pulling at once")
	child   = flag.String("child", "", "internal: pull with this JSON job and exit")
)

// job is what a pulling child gets.
type job struct {
	Opt fleet.Options
	Key fleet.Key
	Dir string
}

var device = fleet.Device{Builder: protocol.Builder{Backend: "fake", TensorRT: "8.2.1", ComputeCapability: "5.3", GPU: "NVIDIA Tegra X1"},
	L4T: "32.7.4", SoC: "tegra210", Kind: "nano-4G", Host: "bench"}

var engineSize int64

func main() {
	flag.Parse()
	if *child != "" {
		os.Exit(pullChild(*child))
	}
	n, err := config.ParseSize(*size)
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "fleetbench: -size:", err)
		os.Exit(2)
	}
	engineSize = int64(n)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

func pullChild(spec string) int {
	var j job
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := fleet.New(j.Opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, err := c.Pull(context.Background(), j.Key, j.Dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p.Remove()
	return 0
}

type sample struct {
	secs  float64
	rssKB int64
}

// timed runs cmd and returns its wall time and peak RSS.
func timed(cmd *exec.Cmd) (sample, error) {
	var errb strings.Builder
	cmd.Stderr = &errb
	t0 := time.Now()
	err := cmd.Run()
	s := sample{secs: time.Since(t0).Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKB = ru.Maxrss
	}
	if err != nil {
		return s, fmt.Errorf("%s: %v: %s", cmd.Args[0], err, strings.TrimSpace(errb.String()))
	}
	return s, nil
}

func run() error {
	dir, err := os.MkdirTemp("", "trtd-fleetbench-")
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "fleetbench: not removed:", err)
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "registry"), 0o700); err != nil {
		return err
	}
	srv, err := registrytest.Start(filepath.Join(dir, "registry"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	creds, err := srv.Creds(dir, registrytest.Password)
	if err != nil {
		return err
	}
	opt := fleet.Options{Registry: srv.Repository("trtd/engines"), Credentials: creds, CA: srv.CA, Timeout: time.Minute}
	key := fleet.Key{CacheKey: "bench", ModelSHA: strings.Repeat("ab", 32), Device: device}
	engineSHA, err := pushEngine(dir, opt, key)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	spec := func(d string) string {
		b, _ := json.Marshal(job{Opt: opt, Key: key, Dir: d})
		return string(b)
	}
	url := fmt.Sprintf("https://%s/v2/trtd/engines/blobs/sha256:%s", srv.Addr, engineSHA)
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var ours, ref []sample
	for i := 0; i < *runs+1; i++ { // the first pair warms the page cache
		c, err := timed(exec.Command("curl", "-sSfL", "--cacert", srv.CA, "-u", registrytest.User+":"+registrytest.Password, "-o", filepath.Join(out, "curl.engine"), url))
		if err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(out, "curl.engine")); err != nil {
			return err
		}
		o, err := timed(exec.Command(self, "-child", spec(out)))
		if err != nil {
			return err
		}
		if i > 0 {
			ref, ours = append(ref, c), append(ours, o)
		}
	}
	mib := float64(engineSize) / (1 << 20)
	tOurs, tRef := median(ours, secs), median(ref, secs)
	rOurs, rRef := median(ours, rss), median(ref, rss)
	fmt.Printf("Engine of %.0f MiB on Debian's docker-registry (%s), loopback, TLS with a test CA and htpasswd auth; %d runs each, alternating, after one warm-up pair; median (min–max).\n\n",
		mib, registrytest.Binary, *runs)
	fmt.Println("| figure | trtd fleet pull | curl, same blob (reference) | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| time to obtain the engine | %.2f s (%s) | %.2f s (%s) | speed %.2f× curl (target ≥ 0.8×) |\n",
		tOurs, spread(ours, secs, "%.2f", 1), tRef, spread(ref, secs, "%.2f", 1), tRef/tOurs)
	fmt.Printf("| throughput | %.0f MiB/s | %.0f MiB/s | |\n", mib/tOurs, mib/tRef)
	fmt.Printf("| peak RSS of the pulling process | %.1f MiB (%s) | %.1f MiB | target ≤ 32 MiB: %s |\n\n",
		rOurs/1024, spread(ours, rss, "%.1f", 1024), rRef/1024, verdict(rOurs/1024 <= 32))
	fmt.Println("trtd's pull verifies each layer's size and sha256 while streaming it to disk and checks the provenance against the device; curl only copies the bytes.")
	fmt.Println()
	return crowd(self, dir, spec)
}

// crowd starts -devices pulling processes at once.
func crowd(self, dir string, spec func(string) string) error {
	var wg sync.WaitGroup
	res := make([]sample, *devices)
	errs := make([]error, *devices)
	t0 := time.Now()
	for i := 0; i < *devices; i++ {
		d := filepath.Join(dir, fmt.Sprintf("device%02d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i], errs[i] = timed(exec.Command(self, "-child", spec(d)))
		}(i)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	ok := 0
	var failed []string
	for i, err := range errs {
		if err == nil {
			ok++
		} else {
			failed = append(failed, fmt.Sprintf("device %d: %v", i, err))
		}
	}
	fmt.Printf("%d simulated devices (separate processes, each its own client) pulling the same engine at once: **%d of %d succeeded** (every engine verified), all done in %.1f s; per device %.1f s median (%s), peak RSS %.1f MiB median, %.1f MiB max.\n",
		*devices, ok, *devices, wall, median(res, secs), spread(res, secs, "%.1f", 1), median(res, rss)/1024, maxOf(res, rss)/1024)
	for _, f := range failed {
		fmt.Printf("\n- %s", f)
	}
	fmt.Println()
	if ok != *devices {
		return fmt.Errorf("%d of %d devices failed", *devices-ok, *devices)
	}
	return nil
}

// pushEngine writes a random engine of -size with its provenance, pushes
// it and returns its sha256.
func pushEngine(dir string, opt fleet.Options, key fleet.Key) (string, error) {
	eng := filepath.Join(dir, "model.engine")
	f, err := os.Create(eng)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, engineSize); err != nil {
		_ = f.Close() // the write's error is the one to return
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	b := key.Device.Builder
	prov := filepath.Join(dir, "model.engine.json")
	if err := provenance.Write(prov, &provenance.Provenance{Engine: "model.engine", EngineSHA: sum, ModelSHA: key.ModelSHA,
		Model: "model.onnx", Stage: "fast", Builder: &b, CacheKey: key.CacheKey, Built: time.Now().UTC(), L4T: key.Device.L4T, SoC: key.Device.SoC}); err != nil {
		return "", err
	}
	c, err := fleet.New(opt)
	if err != nil {
		return "", err
	}
	if _, err := c.Push(context.Background(), fleet.Artifact{Key: key, Engine: eng, Provenance: prov, Model: "model.onnx", Stage: "fast", Built: time.Now()}); err != nil {
		return "", err
	}
	return sum, os.Remove(eng)
}

func secs(s sample) float64 { return s.secs }
func rss(s sample) float64  { return float64(s.rssKB) }

func median(s []sample, f func(sample) float64) float64 {
	v := values(s, f)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

func maxOf(s []sample, f func(sample) float64) float64 {
	v := values(s, f)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

func values(s []sample, f func(sample) float64) []float64 {
	v := make([]float64, 0, len(s))
	for _, x := range s {
		v = append(v, f(x))
	}
	sort.Float64s(v)
	return v
}

// spread is "min–max" of f over s, divided by scale.
func spread(s []sample, f func(sample) float64, format string, scale float64) string {
	v := values(s, f)
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf(format+"–"+format, v[0]/scale, v[len(v)-1]/scale)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
