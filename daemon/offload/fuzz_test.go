package offload

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/filehash"
)

// FuzzVerify: whatever provenance a peer sends back, Verify accepts the
// fetched engine only when the provenance names the model that was sent,
// a builder matching this device, and the engine's actual sha256.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	engine := filepath.Join(dir, "m.engine")
	os.WriteFile(engine, []byte("engine bytes"), 0o644)
	sum, _ := filehash.SHA256(engine)
	local := Fingerprint{Builder: protocol.Builder{Backend: "api", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"}, L4T: "32.7.4"}
	const model = "1111111111111111111111111111111111111111111111111111111111111111"
	f.Add([]byte(`{"model_sha256":"` + model + `","engine_sha256":"` + sum + `","builder":{"backend":"api","tensorrt":"8.2.1","gpu":"NVIDIA Tegra X1","compute_capability":"5.3"},"l4t":"32.7.4"}`))
	f.Add([]byte(`{"model_sha256":"` + model + `","engine_sha256":"` + sum + `","builder":{"tensorrt":"10.3"}}`))
	f.Add([]byte(`{"model_sha256":"` + model + `","engine_sha256":"` + sum + `"}`))
	f.Add([]byte(`{}`))
	n := 0
	f.Fuzz(func(t *testing.T, b []byte) {
		n++
		prov := filepath.Join(t.TempDir(), "m.engine.json")
		if err := os.WriteFile(prov, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Verify(engine, prov, model, local); err != nil {
			return
		}
		pv, err := os.ReadFile(prov)
		if err != nil {
			t.Fatal(err)
		}
		p, err := provenance.Parse(pv)
		if err != nil || p.ModelSHA != model || p.EngineSHA != sum || p.Builder == nil || Mismatch(local, Fingerprint{Builder: *p.Builder, L4T: local.L4T}) != "" {
			t.Fatalf("accepted provenance %s", b)
		}
	})
}
