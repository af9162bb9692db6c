// Package fleet shares engines between identical devices through an OCI
// registry, the store fleets already run for their containers. An engine
// is one OCI artifact (artifactType ArtifactType) whose layers are the
// engine, its <name>.engine.json provenance and the build report; its
// annotations carry everything a match needs; its tag is derived from the
// build's cache key and this device's fingerprint, so a lookup is one
// manifest request.
//
// Nothing pulled is trusted on its annotations: every layer is streamed to
// disk while its sha256 and size are checked against the manifest, the
// provenance is parsed and compared with this device's builder, and only
// then are the files handed back. A registry that is down, slow, refuses
// the credentials or returns garbage makes Pull and Push return an error
// the caller records and goes on without; pushes that failed wait in a
// small persistent Queue.
package fleet

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/filehash"
)

// Media types of the artifact and its layers.
const (
	ArtifactType      = "application/vnd.trtd.engine.v1"
	MediaEngine       = "application/vnd.trtd.engine.layer.v1.tensorrt"
	MediaProvenance   = "application/vnd.trtd.provenance.v1+json"
	MediaReport       = "application/vnd.trtd.report.v1+json"
	annotationPrefix  = "dev.trtd."
	maxAnnotations    = 32
	maxAnnotationLen  = 512
	maxManifestBytes  = 64 << 10
	maxProvenanceSize = 1 << 20
	maxReportSize     = 16 << 20
)

// Annotation keys of the manifest.
const (
	AnnModel     = annotationPrefix + "model.sha256"
	AnnCacheKey  = annotationPrefix + "cache-key"
	AnnSettings  = annotationPrefix + "settings.sha256"
	AnnTensorRT  = annotationPrefix + "tensorrt"
	AnnCC        = annotationPrefix + "compute-capability"
	AnnGPU       = annotationPrefix + "gpu"
	AnnSoC       = annotationPrefix + "soc"
	AnnL4T       = annotationPrefix + "l4t"
	AnnPlugins   = annotationPrefix + "plugins.sha256"
	AnnKind      = annotationPrefix + "device-kind"
	AnnStage     = annotationPrefix + "stage"
	AnnBuiltBy   = annotationPrefix + "built-by"
	AnnTool      = annotationPrefix + "tool"
	AnnCreated   = "org.opencontainers.image.created"
	AnnModelName = annotationPrefix + "model.name"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNotFound: the registry holds no engine for this key.
	ErrNotFound = errors.New("no engine in the registry for this device")
	// ErrMismatch: an artifact exists but does not fit this device (its
	// provenance names another builder, model or cache key).
	ErrMismatch = errors.New("the registry's engine does not match this device")
	// ErrRefused: what the registry returned is malformed or hostile (a
	// digest or size mismatch, an oversized manifest or layer, a bad
	// annotation).
	ErrRefused = errors.New("refused what the registry returned")
	// ErrUnavailable: the registry could not be reached, timed out or
	// refused the credentials.
	ErrUnavailable = errors.New("registry unavailable")
	// ErrConfig: the [fleet] settings cannot be used (credentials readable
	// by others, an unreadable CA bundle).
	ErrConfig = errors.New("fleet configuration")
)

// Device is what an engine built here is tied to, as the daemon knows it.
type Device struct {
	Builder protocol.Builder
	L4T     string
	SoC     string
	// Plugins maps plugin library paths to their sha256
	// (provenance.PluginHashes).
	Plugins map[string]string
	// Kind names the hardware class whose ladder history is shared
	// ("nano-4G"): devices of one kind run out of memory at the same stage
	// whatever their TensorRT.
	Kind string
	// Host names this device in what it pushes ("built-by").
	Host string
}

// Key identifies one engine in the registry.
type Key struct {
	// CacheKey is the daemon's build cache key: model content, settings
	// file, ladder, input shapes and builder fingerprint.
	CacheKey string
	ModelSHA string
	// Settings is the sha256 of the resolved settings (informational).
	Settings string
	Device   Device
}

// PluginsHash is one sha256 over the plugin libraries' hashes ("" when
// there are none).
func (d Device) PluginsHash() string {
	if len(d.Plugins) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d.Plugins))
	for k := range d.Plugins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := filehash.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, d.Plugins[k])
	}
	return h.Sum()
}

// Tag is the artifact's tag: the model's sha256 prefix (so `fleet ls` and
// the history lookup can list a model's engines) and a hash over the cache
// key and every part of the fingerprint (so a lookup is one manifest
// request and two devices that differ anywhere never share a tag).
func (k Key) Tag() string {
	h := filehash.New()
	b := k.Device.Builder
	fmt.Fprintf(h, "cache %s\nmodel %s\ntrt %s\ncc %s\ngpu %s\nsoc %s\nl4t %s\nplugins %s\n",
		k.CacheKey, k.ModelSHA, b.TensorRT, b.ComputeCapability, b.GPU, k.Device.SoC, k.Device.L4T, k.Device.PluginsHash())
	return modelPrefix(k.ModelSHA) + "-" + h.Sum()[:40]
}

// modelPrefix is the tag prefix of every engine built from one model.
func modelPrefix(modelSHA string) string {
	s := strings.ToLower(modelSHA)
	if len(s) > 24 {
		s = s[:24]
	}
	return "m" + s
}

// annotations is what the manifest says about k (never trusted on pull).
func (k Key) annotations(stage, tool, model string, built time.Time) map[string]string {
	b := k.Device.Builder
	a := map[string]string{
		AnnModel: k.ModelSHA, AnnCacheKey: k.CacheKey, AnnSettings: k.Settings,
		AnnTensorRT: b.TensorRT, AnnCC: b.ComputeCapability, AnnGPU: b.GPU,
		AnnSoC: k.Device.SoC, AnnL4T: k.Device.L4T, AnnPlugins: k.Device.PluginsHash(),
		AnnKind: k.Device.Kind, AnnStage: stage, AnnBuiltBy: k.Device.Host, AnnTool: tool,
		AnnModelName: model, AnnCreated: built.UTC().Format(time.RFC3339),
	}
	for n, v := range a {
		if v == "" {
			delete(a, n)
		}
	}
	return a
}

// checkAnnotations refuses a hostile annotation set: too many, too long,
// or with control characters (which would end up in reports and logs).
func checkAnnotations(a map[string]string) error {
	if len(a) > maxAnnotations {
		return fmt.Errorf("%w: %d annotations (at most %d)", ErrRefused, len(a), maxAnnotations)
	}
	for k, v := range a {
		if len(k) > maxAnnotationLen || len(v) > maxAnnotationLen {
			return fmt.Errorf("%w: annotation %.40q longer than %d bytes", ErrRefused, k, maxAnnotationLen)
		}
		if !printable(k) || !printable(v) {
			return fmt.Errorf("%w: annotation %.40q holds control characters", ErrRefused, k)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// mismatch lists, in words, where the manifest's annotations contradict
// the key: a cheap early refusal before any layer is fetched. The
// provenance check after the download is the one that decides.
func (k Key) mismatch(a map[string]string) []string {
	b := k.Device.Builder
	want := []struct{ key, v, what string }{
		{AnnModel, k.ModelSHA, "model sha256"}, {AnnCacheKey, k.CacheKey, "cache key"},
		{AnnTensorRT, b.TensorRT, "TensorRT version"}, {AnnCC, b.ComputeCapability, "compute capability"},
		{AnnGPU, b.GPU, "GPU"}, {AnnSoC, k.Device.SoC, "SoC"}, {AnnL4T, k.Device.L4T, "L4T release"},
		{AnnPlugins, k.Device.PluginsHash(), "plugin libraries"},
	}
	var d []string
	for _, w := range want {
		if a[w.key] != w.v {
			d = append(d, fmt.Sprintf("%s %q, this device %q", w.what, a[w.key], w.v))
		}
	}
	return d
}
