package fleet

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzManifest feeds untrusted manifests to the parser and the layer
// picker: they never panic, refuse with ErrRefused, and what they accept
// has sane annotations and bounded layers.
func FuzzManifest(f *testing.F) {
	k := keyFor(devA, "ck")
	good := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType, Config: ocispec.DescriptorEmptyJSON, Annotations: k.annotations("lean", "trtd", "m.onnx", time.Unix(0, 0)),
		Layers: []ocispec.Descriptor{
			{MediaType: MediaEngine, Digest: "sha256:" + modelSHA, Size: 100},
			{MediaType: MediaProvenance, Digest: "sha256:" + modelSHA, Size: 10},
		}}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.trtd.engine.v1","annotations":{"a":"\u001b[31m"}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.trtd.engine.v1","layers":[{"mediaType":"application/vnd.trtd.engine.layer.v1.tensorrt","digest":"md5:00","size":-1}]}`))
	f.Add([]byte(`[]`))
	c := &Client{opt: Options{MaxEngine: 1 << 30}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("refusal without ErrRefused: %v", err)
			}
			return
		}
		if checkAnnotations(m.Annotations) != nil {
			t.Fatal("accepted hostile annotations")
		}
		eng, prov, _, err := c.layers(m)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("layer refusal without ErrRefused: %v", err)
			}
			return
		}
		if eng.Size < 0 || eng.Size > 1<<30 || prov.Size > maxProvenanceSize || eng.Digest.Validate() != nil {
			t.Fatalf("accepted layers %+v %+v", eng, prov)
		}
		_ = k.mismatch(m.Annotations)
	})
}
