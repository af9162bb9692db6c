package fleet

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/atomicfile"
)

const tempPrefix = atomicfile.TempPrefix + "fleet-"

// minRate is the slowest average transfer (bytes per second) a pull may
// have after its first timeout.
const minRate = 1 << 20

// Pulled is an engine fetched and verified against this device. Its files
// are temporary files in the directory given to Pull: the caller publishes
// them (by rename) or calls Remove.
type Pulled struct {
	Engine     string // path of the engine
	Provenance string // path of its <name>.engine.json as built
	Report     string // path of the builder's report ("" when absent)
	Prov       *provenance.Provenance
	Registry   string
	Tag        string
	Digest     string // the manifest's digest
	EngineSHA  string
	EngineSize int64
	BuiltBy    string
	Built      time.Time
	Stage      string
}

// Remove deletes the pulled files. They carry trtd's temporary prefix:
// after a placement they are gone already, and what a failed removal
// leaves is discarded as a temporary file (atomicfile.RemoveTemps) by the
// next pull into that directory.
func (p *Pulled) Remove() {
	for _, f := range []string{p.Engine, p.Provenance, p.Report} {
		if f != "" {
			_ = os.Remove(f)
		}
	}
}

// Pull looks up the engine for k (one manifest request) and, when the
// registry has one, streams its layers into dir and verifies them: each
// layer's size and sha256 against the manifest, then the provenance
// against k (model, cache key, engine sha256) and against this device's
// builder (provenance.Differences). ErrNotFound when there is none,
// ErrMismatch when what is there is for another device, ErrRefused for
// garbage, ErrUnavailable when the registry cannot be used. Nothing is
// left in dir on error.
func (c *Client) Pull(ctx context.Context, k Key, dir string) (*Pulled, error) {
	tag := k.Tag()
	desc, m, err := c.fetchManifest(ctx, tag)
	if err != nil {
		return nil, err
	}
	if d := k.mismatch(m.Annotations); len(d) > 0 {
		return nil, fmt.Errorf("%w: %s: %s", ErrMismatch, tag, strings.Join(d, "; "))
	}
	eng, prov, rep, err := c.layers(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	// A registry that trickles must not hold the build for ever: after
	// the timeout, the pull must average at least minRate.
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout+time.Duration((eng.Size+prov.Size)/minRate)*time.Second)
	defer cancel()
	p := &Pulled{Registry: c.opt.Registry, Tag: tag, Digest: desc.Digest.String(), EngineSHA: eng.Digest.Encoded(),
		EngineSize: eng.Size, BuiltBy: m.Annotations[AnnBuiltBy], Stage: m.Annotations[AnnStage]}
	ok := false
	defer func() {
		if !ok {
			p.Remove()
		}
	}()
	// The provenance first: it is small, and a mismatch is refused before
	// the engine is downloaded.
	if p.Provenance, err = c.download(ctx, *prov, dir, "provenance"); err != nil {
		return nil, err
	}
	pv, err := provenance.Read(p.Provenance)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRefused, tag, err)
	}
	if d := k.verify(pv, eng.Digest.Encoded()); len(d) > 0 {
		return nil, fmt.Errorf("%w: %s: %s", ErrMismatch, tag, strings.Join(d, "; "))
	}
	p.Prov, p.Built, p.Stage = pv, pv.Built, pv.Stage
	if p.Engine, err = c.download(ctx, *eng, dir, "engine"); err != nil {
		return nil, err
	}
	if rep != nil {
		if p.Report, err = c.download(ctx, *rep, dir, "report"); err != nil {
			return nil, err
		}
	}
	ok = true
	return p, nil
}

// verify lists where the provenance pv contradicts k or this device: the
// check that decides whether a pulled engine may be used.
func (k Key) verify(pv *provenance.Provenance, engineSHA string) []string {
	var d []string
	if pv.EngineSHA != engineSHA {
		d = append(d, fmt.Sprintf("the provenance records engine sha256 %.64q, the layer is %s", pv.EngineSHA, engineSHA))
	}
	if pv.ModelSHA != k.ModelSHA {
		d = append(d, fmt.Sprintf("built from model %.64q, not %s", pv.ModelSHA, k.ModelSHA))
	}
	if pv.CacheKey != k.CacheKey {
		d = append(d, fmt.Sprintf("built with cache key %.64q, this build's is %s", pv.CacheKey, k.CacheKey))
	}
	if len(pv.Parts) > 0 {
		d = append(d, "a segmented engine (parts are not shared)")
	}
	if pv.SoC != k.Device.SoC {
		d = append(d, fmt.Sprintf("built on SoC %.40q, this device is %q", pv.SoC, k.Device.SoC))
	}
	if pv.L4T != k.Device.L4T {
		d = append(d, fmt.Sprintf("built on L4T %.40q, this device runs %q", pv.L4T, k.Device.L4T))
	}
	plugins := k.Device.Plugins
	if plugins == nil {
		plugins = map[string]string{}
	}
	if len(pv.Plugins) != len(plugins) {
		d = append(d, fmt.Sprintf("built with %d plugin libraries, this device has %d", len(pv.Plugins), len(plugins)))
	}
	cur := provenance.Current{Builder: k.Device.Builder, L4T: k.Device.L4T, Plugins: plugins}
	return append(d, provenance.Differences(pv, cur)...)
}
