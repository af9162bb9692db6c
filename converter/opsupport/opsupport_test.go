package opsupport

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTablesLoadWithSource(t *testing.T) {
	want := []string{"8.0", "8.2", "8.4", "8.5", "8.6", "10.0", "10.1"}
	if got := Versions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Versions() = %v, want %v", got, want)
	}
	for _, v := range want {
		tb := loadTables()[v]
		if len(tb.Ops()) < 150 {
			t.Errorf("%s: only %d ops", v, len(tb.Ops()))
		}
		if len(tb.Source) < 2 {
			t.Errorf("%s: no source header", v)
		}
		// Ops every version documents as supported.
		for _, op := range []string{"Conv", "Relu", "MatMul", "Gemm", "Add", "Reshape", "Concat"} {
			if s := tb.Status("", op); s != Supported {
				t.Errorf("%s: %s is %v", v, op, s)
			}
		}
	}
}

func TestStatusAcrossVersions(t *testing.T) {
	tests := []struct {
		version, domain, op string
		want                Status
	}{
		// 8.0-GA docs/operators.md: ScatterND, GatherND and Einsum N;
		// 8.2-GA: Y (JetPack 4.6 vs 4.6.1).
		{"8.0", "", "ScatterND", Unsupported},
		{"8.2", "", "ScatterND", Supported},
		{"8.0", "", "GatherND", Unsupported},
		{"8.0", "", "Einsum", Unsupported},
		{"8.0", "", "NonMaxSuppression", Experimental},
		{"8.0", "", "Conv", Supported},
		{"8.2", "", "NonMaxSuppression", Experimental},
		{"8.6", "", "NonMaxSuppression", Supported},
		{"8.2", "", "LayerNormalization", NotListed}, // opset 17 op, not in 8.2's list
		{"8.6", "", "LayerNormalization", Supported},
		{"8.2", "", "NonZero", Unsupported},
		{"8.6", "", "NonZero", Supported},
		{"10.1", "ai.onnx", "Conv", Supported},
		{"10.1", "com.microsoft", "Conv", NotListed},
	}
	for _, tt := range tests {
		tb, _, err := For(tt.version)
		if err != nil {
			t.Fatal(err)
		}
		if got := tb.Status(tt.domain, tt.op); got != tt.want {
			t.Errorf("TensorRT %s: %s::%s = %v, want %v", tt.version, tt.domain, tt.op, got, tt.want)
		}
	}
}

func TestFor(t *testing.T) {
	tests := []struct {
		in        string
		table     string
		exact     bool
		wantError bool
	}{
		{"8.2", "8.2", true, false},
		{"8.2.1", "8.2", true, false},
		{"8.2.1.8", "8.2", true, false},
		{"8.3", "8.2", false, false},
		{"8.6.1.6", "8.6", true, false},
		{"10.3.0", "10.1", false, false},
		{"11.1", "10.1", false, false},
		{"8.0", "8.0", true, false},
		{"8.0.1", "8.0", true, false},
		{"8.1", "8.0", false, false},
		{"7.1", "", false, true},
		{"x", "", false, true},
		{"", "", false, true},
	}
	for _, tt := range tests {
		tb, exact, err := For(tt.in)
		if tt.wantError {
			if !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("For(%q) err = %v, want ErrUnknownVersion", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("For(%q): %v", tt.in, err)
			continue
		}
		if tb.Version != tt.table || exact != tt.exact {
			t.Errorf("For(%q) = %s exact=%v, want %s exact=%v", tt.in, tb.Version, exact, tt.table, tt.exact)
		}
	}
}

func TestCheck(t *testing.T) {
	tb, _, _ := For("8.2")
	ps := tb.Check([]Op{
		{OpType: "Conv", Count: 3},
		{OpType: "NonZero", Count: 1},
		{OpType: "NonMaxSuppression", Count: 1},
		{Domain: "com.microsoft", OpType: "FusedConv", Count: 2},
		{OpType: "LayerNormalization", Count: 4},
	})
	var got []string
	for _, p := range ps {
		got = append(got, p.OpType+":"+p.Status.String())
	}
	want := []string{"NonZero:not supported", "NonMaxSuppression:experimental", "FusedConv:not listed", "LayerNormalization:not listed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check = %v, want %v", got, want)
	}
	if w := tb.CheckOpset(17); w == "" {
		t.Error("opset 17 on TensorRT 8.2: no warning")
	}
	if w := tb.CheckOpset(13); w != "" {
		t.Errorf("opset 13 on TensorRT 8.2: %s", w)
	}
	t10, _, _ := For("10.0")
	if w := t10.CheckOpset(7); w == "" {
		t.Error("opset 7 on TensorRT 10.0: no warning")
	}
}

func TestParseTableRejectsBadData(t *testing.T) {
	for name, text := range map[string]string{
		"bad status": "max_opset 13\nConv X\n",
		"duplicate":  "max_opset 13\nConv Y\nConv N\n",
		"no opset":   "Conv Y\n",
		"empty":      "# nothing\n",
		"extra":      "max_opset 13\nConv Y Z\n",
	} {
		if _, err := parseTable("x", text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDetectVersion(t *testing.T) {
	write := func(t *testing.T, root, rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("jetpack 4.6 dpkg", func(t *testing.T) {
		root := t.TempDir()
		write(t, root, "var/lib/dpkg/status", `Package: libnvinfer-dev
Status: install ok installed
Version: 8.2.1-1+cuda10.2

Package: libnvinfer8
Status: install ok installed
Version: 8.2.1-1+cuda10.2

Package: libnvinfer7
Status: deinstall ok config-files
Version: 7.1.3-1+cuda10.2
`)
		if v, err := DetectVersion(root); err != nil || v != "8.2.1" {
			t.Errorf("DetectVersion = %q, %v; want 8.2.1", v, err)
		}
	})
	t.Run("library name", func(t *testing.T) {
		root := t.TempDir()
		write(t, root, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8.5.2", "")
		if v, err := DetectVersion(root); err != nil || v != "8.5.2" {
			t.Errorf("DetectVersion = %q, %v; want 8.5.2", v, err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := DetectVersion(t.TempDir()); !errors.Is(err, ErrNotDetected) {
			t.Errorf("err = %v, want ErrNotDetected", err)
		}
	})
}
