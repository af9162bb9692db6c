package version

import (
	"errors"
	"testing"
)

func TestFromInt(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{8201, "8.2.1"}, {8503, "8.5.3"}, {8601, "8.6.1"}, {100001, "10.0.1"}, {100300, "10.3.0"}, {101303, "10.13.3"}, {110100, "11.1.0"},
	} {
		v, err := FromInt(c.n)
		if err != nil || v.String() != c.want {
			t.Errorf("FromInt(%d) = %v, %v; want %s", c.n, v, err, c.want)
		}
	}
	if _, err := FromInt(42); !errors.Is(err, ErrBadVersion) {
		t.Errorf("FromInt(42) err = %v", err)
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{"8.2": "8.2.0", "8.2.1.8": "8.2.1", "8201": "8.2.1", "100300": "10.3.0"} {
		v, err := Parse(in)
		if err != nil || v.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	if _, err := Parse("v8"); err == nil {
		t.Error("Parse(v8) accepted")
	}
}

func TestCheckLibrary(t *testing.T) {
	h := Version{8, 5, 2}
	for _, c := range []struct {
		found Version
		ok    bool
	}{
		{Version{8, 5, 0}, true},  // same minor, older patch: ABI of 8.5
		{Version{8, 6, 1}, true},  // newer minor
		{Version{8, 2, 1}, false}, // older than headers
		{Version{10, 3, 0}, false},
	} {
		err := CheckLibrary(h, c.found)
		if (err == nil) != c.ok {
			t.Errorf("CheckLibrary(%v, %v) = %v", h, c.found, err)
		}
		if err != nil && !errors.Is(err, ErrIncompatible) {
			t.Errorf("error not ErrIncompatible: %v", err)
		}
	}
}

func TestAtLeast(t *testing.T) {
	v := Version{8, 6, 1}
	if !v.AtLeast(8, 4) || !v.AtLeast(8, 6) || v.AtLeast(8, 7) || v.AtLeast(10, 0) {
		t.Error("AtLeast wrong")
	}
}

func TestSettingAvailable(t *testing.T) {
	for _, tc := range []struct {
		key   string
		v     Version
		ok    bool
		known bool
	}{
		{SettingOptimizationLevel, Version{8, 2, 1}, false, true},
		{SettingOptimizationLevel, Version{8, 5, 2}, false, true},
		{SettingOptimizationLevel, Version{8, 6, 1}, true, true},
		{SettingMaxAuxStreams, Version{8, 2, 1}, false, true},
		{SettingMaxAuxStreams, Version{10, 3, 0}, true, true},
		{SettingTacticDRAM, Version{8, 4, 1}, false, true},
		{SettingTacticDRAM, Version{8, 6, 0}, true, true},
		{"workspace", Version{8, 2, 1}, false, false},
	} {
		ok, why, known := SettingAvailable(tc.key, tc.v)
		if ok != tc.ok || known != tc.known || (!ok && known && why != "exists from TensorRT 8.6") {
			t.Errorf("SettingAvailable(%s, %s) = %v, %q, %v; want %v, known %v", tc.key, tc.v, ok, why, known, tc.ok, tc.known)
		}
	}
}
