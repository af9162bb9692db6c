package provenance

import (
	"errors"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// FuzzParse: provenance comes back from offload peers, so any bytes must
// parse or be refused with ErrCorrupt, and comparing what parsed with this
// device never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"schema":1,"engine":"m.engine","engine_sha256":"ab","model_sha256":"cd","builder":{"backend":"api","tensorrt":"8.2.1","gpu":"NVIDIA Tegra X1","compute_capability":"5.3"},"l4t":"32.7.4","plugins":{"/x.so":"ef"},"parts":{"m.part1.engine":"01"}}`))
	f.Add([]byte(`{"model_sha256":"x","builder":null}`))
	f.Add([]byte(`{"model_sha256":"","engine_sha256":1}`))
	f.Add([]byte(`[]`))
	cur := Current{Builder: protocol.Builder{Backend: "api", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"},
		L4T: "32.7.4", Plugins: map[string]string{"/x.so": "ef"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		if p.ModelSHA == "" {
			t.Fatal("accepted a provenance without model_sha256")
		}
		Differences(p, cur)
		Differences(p, Current{})
	})
}
