package converter

import (
	"testing"

	"github.com/trtd/trtd/converter/report"
)

// The report says where an int8 stage's scales came from, read from what
// the API worker called or the trtexec command line it ran.
func TestInt8Source(t *testing.T) {
	for name, c := range map[string]struct {
		calls, skipped []string
		want           string
	}{
		"api calibrated":  {[]string{"setFlag(kINT8)", "setInt8Calibrator(IInt8EntropyCalibrator2, 2 batches of 1 inputs)"}, nil, report.Int8Calibrated},
		"api cache":       {[]string{"setFlag(kINT8)", "setInt8Calibrator(IInt8EntropyCalibrator2, cache m.calib.cache of 80 bytes)"}, nil, report.Int8FromCache},
		"api qdq":         {[]string{"setFlag(kINT8)", "setFlag(kFP16)"}, nil, report.Int8QDQ},
		"api refused":     {[]string{"setFlag(kFP16)"}, []string{"precision int8: refused, building fp16: the model has no QuantizeLinear/DequantizeLinear nodes"}, report.Int8Refused},
		"trtexec cache":   {[]string{"/usr/src/tensorrt/bin/trtexec", "--onnx=m.onnx", "--int8", "--calib=m.calib.cache", "--fp16"}, nil, report.Int8FromCache},
		"trtexec qdq":     {[]string{"trtexec", "--int8", "--fp16"}, nil, report.Int8QDQ},
		"trtexec refused": {[]string{"trtexec", "--fp16"}, []string{"precision int8: int8 refused: the model has no QuantizeLinear/DequantizeLinear nodes"}, report.Int8Refused},
		"typed 11.x":      {[]string{"trtexec"}, []string{"precision int8: TensorRT 11.1 networks are strongly typed"}, ""},
	} {
		if got := int8Source(c.calls, c.skipped); got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
