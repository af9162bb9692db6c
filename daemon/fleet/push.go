package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	specs "github.com/opencontainers/image-spec/specs-go"

	"github.com/trtd/trtd/daemon/provenance"
)

// Artifact is an engine this device built, to be shared.
type Artifact struct {
	Key        Key       `json:"key"`
	Engine     string    `json:"engine"`     // path of the engine
	Provenance string    `json:"provenance"` // path of <name>.engine.json
	Report     string    `json:"report"`     // path of <name>.report.json ("" = none)
	Model      string    `json:"model"`      // the model's file name, for people
	Stage      string    `json:"stage"`      // the first stage that worked
	Built      time.Time `json:"built"`
}

// PushResult says what a push did.
type PushResult struct {
	Tag    string
	Digest string // the manifest now under Tag
	// Pushed is true when this push created the tag; false when the
	// registry already held an artifact for the key.
	Pushed bool
	// Kept, when set, explains why the registry's artifact was left in
	// place although it differs from ours (another device built the same
	// key first, or won a concurrent push).
	Kept string
	// Replaced, when set, says why an artifact under Tag was replaced
	// (it was not a readable trtd engine).
	Replaced string
}

// Push shares a: it uploads the layers the registry lacks (streamed from
// disk), then the manifest, then the tag. It is idempotent: when the tag
// already names an artifact with the same engine it does nothing, and it
// never replaces an artifact with a different engine: that one is kept
// and the reason returned in Kept. Between two daemons pushing one key at
// once the tag ends up naming one complete artifact (the OCI
// distribution API has no compare-and-swap on tags; the check right
// before tagging keeps the window to one request).
func (c *Client) Push(ctx context.Context, a Artifact) (PushResult, error) {
	tag := a.Key.Tag()
	res := PushResult{Tag: tag}
	pv, err := provenance.Read(a.Provenance)
	if err != nil {
		return res, err
	}
	eng, err := fileDesc(a.Engine, MediaEngine)
	if err != nil {
		return res, err
	}
	if pv.EngineSHA != eng.Digest.Encoded() {
		return res, fmt.Errorf("%s: the engine changed since it was built (sha256 %s, provenance says %s)", a.Engine, eng.Digest.Encoded(), pv.EngineSHA)
	}
	kept, done, err := c.existing(ctx, tag, eng)
	if err != nil || done {
		res.Kept, res.Digest = kept.Kept, kept.Digest
		return res, err
	}
	res.Replaced = kept.Replaced
	prov, err := fileDesc(a.Provenance, MediaProvenance)
	if err != nil {
		return res, err
	}
	layers := []ocispec.Descriptor{eng, prov}
	paths := []string{a.Engine, a.Provenance}
	if a.Report != "" {
		rep, err := fileDesc(a.Report, MediaReport)
		if err != nil {
			return res, err
		}
		layers, paths = append(layers, rep), append(paths, a.Report)
	}
	titles := []string{"model.engine", "model.engine.json", "model.report.json"}
	for i := range layers {
		layers[i].Annotations = map[string]string{ocispec.AnnotationTitle: titles[i]}
		if err := c.pushBlob(ctx, layers[i], paths[i]); err != nil {
			return res, err
		}
	}
	if err := c.pushBlob(ctx, ocispec.DescriptorEmptyJSON, ""); err != nil {
		return res, err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType, Config: ocispec.DescriptorEmptyJSON, Layers: layers,
		Annotations: a.Key.annotations(a.Stage, c.opt.Tool, a.Model, a.Built)}
	b, err := json.Marshal(m)
	if err != nil {
		return res, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, b)
	blobs := append(append([]ocispec.Descriptor(nil), layers...), ocispec.DescriptorEmptyJSON)
	paths = append(paths, "")
	if err := c.putManifest(ctx, desc, b, desc.Digest.String(), blobs, paths); err != nil {
		return res, classify("push manifest", err)
	}
	// Someone may have tagged while we uploaded: look once more.
	if kept, done, err := c.existing(ctx, tag, eng); err != nil || done {
		res.Kept, res.Digest = kept.Kept, kept.Digest
		return res, err
	}
	if err := c.putManifest(ctx, desc, b, tag, blobs, paths); err != nil {
		return res, classify("tag "+tag, err)
	}
	// A concurrent push may still have tagged after our last look: say so.
	now, _, err := c.fetchManifest(ctx, tag)
	if err != nil {
		return res, err
	}
	res.Digest, res.Pushed = now.Digest.String(), now.Digest == desc.Digest
	if !res.Pushed {
		res.Kept = fmt.Sprintf("another device tagged %s with %s at the same time; theirs is kept", tag, now.Digest)
	}
	return res, nil
}

// putManifest PUTs the manifest b under ref (its digest or a tag). The
// registry checks every blob the manifest references; while another
// device uploads one of them too (the same artifact, or the empty config
// all trtd artifacts share) that check can find the blob's link file
// empty or a blob gone, and the PUT is refused with MANIFEST_BLOB_UNKNOWN
// (see retryRace). Then the blobs are looked at again, the ones the
// registry now lacks are uploaded again from disk, and the PUT is
// repeated, a bounded number of times.
func (c *Client) putManifest(ctx context.Context, desc ocispec.Descriptor, b []byte, ref string, blobs []ocispec.Descriptor, paths []string) error {
	again := false
	return retryRace(ctx, blobUnknown, func() error {
		if again {
			for i := range blobs {
				if err := c.pushBlob(ctx, blobs[i], paths[i]); err != nil {
					return err
				}
			}
		}
		again = true
		ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
		err := c.repo.Manifests().PushReference(ctx, desc, bytes.NewReader(b), ref)
		if errors.Is(err, errdef.ErrAlreadyExists) {
			return nil
		}
		return err
	})
}

// existing looks at what tag names now: done when it is an artifact (the
// same engine: an idempotent no-op; a different one: kept, with why).
func (c *Client) existing(ctx context.Context, tag string, eng ocispec.Descriptor) (PushResult, bool, error) {
	desc, m, err := c.fetchManifest(ctx, tag)
	switch {
	case errors.Is(err, ErrNotFound):
		return PushResult{}, false, nil
	case errors.Is(err, ErrRefused):
		// Garbage under our tag is replaced, and the result says why.
		return PushResult{Replaced: err.Error()}, false, nil
	case err != nil:
		return PushResult{}, false, err
	}
	res := PushResult{Tag: tag, Digest: desc.Digest.String()}
	for _, l := range m.Layers {
		if l.MediaType == MediaEngine && l.Digest == eng.Digest {
			return res, true, nil
		}
	}
	res.Kept = fmt.Sprintf("the registry already holds a different engine for this build (%s, built by %.64q on %.40s); it is kept and ours stays local",
		desc.Digest, m.Annotations[AnnBuiltBy], m.Annotations[AnnCreated])
	return res, true, nil
}
