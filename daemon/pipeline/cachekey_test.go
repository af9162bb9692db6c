package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// The int8 calibration data is part of the engine's cache key (F-9): the
// same model with another calibration set, or without one, never reuses an
// engine calibrated from a different set; the same set gives the same key.
func TestCacheKeyCoversCalibrationData(t *testing.T) {
	b := &protocol.Builder{Backend: "api", TensorRT: "8.2.1"}
	key := func(dir string) string {
		return cacheKey("model-sha", calibSum(dir, "m.calib"), nil, nil, b)
	}
	calib := func(files map[string]string) string {
		dir := t.TempDir()
		if files == nil {
			return dir
		}
		os.Mkdir(filepath.Join(dir, "m.calib"), 0o755)
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(dir, "m.calib", n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	none := key(calib(nil))
	one := key(calib(map[string]string{"input_0.pb": "a"}))
	same := key(calib(map[string]string{"input_0.pb": "a"}))
	other := key(calib(map[string]string{"input_0.pb": "b"}))
	more := key(calib(map[string]string{"input_0.pb": "a", "input_1.pb": "a"}))
	if one != same {
		t.Errorf("the same calibration set gives two keys: %s %s", one, same)
	}
	for name, k := range map[string]string{"no calibration data": none, "another set": other, "another batch": more} {
		if k == one {
			t.Errorf("%s reuses the engine calibrated from input_0.pb=a (key %s)", name, k)
		}
	}
	// The same files as samples or as calibration data are told apart.
	d := calib(map[string]string{"input_0.pb": "a"})
	if calibSum(d, "m.calib") == samplesSum(d, "m.calib") {
		t.Error("calibration data and samples of the same files give the same key part")
	}
	if calibSum(d, "none.calib") != "" {
		t.Error("a missing calibration directory has a sum")
	}
}
