package dpkg

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstalled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	os.WriteFile(p, []byte(`Package: libnvinfer8
Status: install ok installed
Version: 8.2.1-1+cuda10.2

Package: libnvinfer-dev
Status: deinstall ok config-files
Version: 8.2.1-1+cuda10.2

Package: tensorrt
Version: 1:8.6.1.6-1+cuda12.0
Status: install ok installed
`), 0o644)
	got, err := Installed(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["libnvinfer8"] != "8.2.1-1+cuda10.2" || got["tensorrt"] != "1:8.6.1.6-1+cuda12.0" {
		t.Fatalf("%v", got)
	}
	if _, err := Installed(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
