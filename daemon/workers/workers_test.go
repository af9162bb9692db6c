package workers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	fb := filepath.Join(dir, "trtd-worker")
	touch(t, fb, 0o755)
	touch(t, filepath.Join(dir, "trtd-worker-trt10"), 0o755)
	touch(t, filepath.Join(dir, "trtd-worker-trt8"), 0o755)
	touch(t, filepath.Join(dir, "trtd-worker-trt11"), 0o644) // not executable: ignored
	touch(t, filepath.Join(dir, "trtd-worker-trtx"), 0o755)  // not an ABI: ignored
	got, err := Discover(fb)
	if err != nil {
		t.Fatal(err)
	}
	want := []Worker{{filepath.Join(dir, "trtd-worker-trt8"), 8}, {filepath.Join(dir, "trtd-worker-trt10"), 10}, {fb, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %v, want %v", got, want)
	}
	if _, err := Discover(filepath.Join(t.TempDir(), "trtd-worker")); !errors.Is(err, ErrNoWorker) {
		t.Errorf("empty dir: err = %v, want ErrNoWorker", err)
	}
}

func TestInstalled(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	touch(t, filepath.Join(a, "libnvinfer.so.8.2.1"), 0o644)
	touch(t, filepath.Join(a, "libnvinfer.so.8"), 0o644)
	touch(t, filepath.Join(b, "libnvinfer.so.8"), 0o644) // shadowed by a
	touch(t, filepath.Join(b, "libnvinfer.so.10.3.0"), 0o644)
	touch(t, filepath.Join(b, "libnvinfer.so"), 0o644)           // dev link: no major
	touch(t, filepath.Join(b, "libnvinfer_plugin.so.10"), 0o644) // another library
	got := Installed([]string{a, filepath.Join(a, "missing"), b})
	want := map[int]string{8: filepath.Join(a, "libnvinfer.so.8"), 10: filepath.Join(b, "libnvinfer.so.10.3.0")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Installed = %v, want %v", got, want)
	}
}

func TestLibDirs(t *testing.T) {
	got := LibDirs([]string{"PATH=/bin", "LD_LIBRARY_PATH=/x:/y::"})
	if !reflect.DeepEqual(got[:2], []string{"/x", "/y"}) || len(got) != 2+len(DefaultLibDirs) {
		t.Errorf("LibDirs = %v", got)
	}
	if got := LibDirs([]string{"PATH=/bin"}); !reflect.DeepEqual(got, DefaultLibDirs) {
		t.Errorf("no LD_LIBRARY_PATH: %v", got)
	}
}

func TestSelect(t *testing.T) {
	w8, w10, w11 := Worker{"/l/trtd-worker-trt8", 8}, Worker{"/l/trtd-worker-trt10", 10}, Worker{"/l/trtd-worker-trt11", 11}
	fb := Worker{"/l/trtd-worker", 0}
	all := []Worker{w8, w10, w11, fb}
	ok := func(context.Context, Worker) error { return nil }
	failing := func(abi int) ProbeFunc {
		return func(_ context.Context, w Worker) error {
			if w.ABI == abi {
				return errors.New("CUDA not available: libcudart not found")
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name      string
		present   []Worker
		installed map[int]string
		probe     ProbeFunc
		chosen    Worker
		fallback  bool
		reason    []string
	}{
		{"nano jetpack 4.6", all, map[int]string{8: "/usr/lib/aarch64-linux-gnu/libnvinfer.so.8"}, ok, w8, false,
			[]string{"matches libnvinfer.so.8", "probe passed"}},
		{"jetpack 6.1", all, map[int]string{10: "/usr/lib/aarch64-linux-gnu/libnvinfer.so.10"}, ok, w10, false, []string{"libnvinfer.so.10"}},
		{"no probe", all, map[int]string{11: "/opt/tensorrt/lib/libnvinfer.so.11"}, nil, w11, false, []string{"matches libnvinfer.so.11"}},
		{"newest major first", all, map[int]string{8: "/a/libnvinfer.so.8", 10: "/b/libnvinfer.so.10"}, ok, w10, false, nil},
		{"newest fails, older passes", all, map[int]string{8: "/a/libnvinfer.so.8", 10: "/b/libnvinfer.so.10"}, failing(10), w8, false, nil},
		{"no TensorRT", all, nil, ok, fb, true, []string{"trtexec fallback", "no libnvinfer.so.N found"}},
		{"probe fails", all, map[int]string{8: "/a/libnvinfer.so.8"}, failing(8), fb, true,
			[]string{"trtexec fallback", "trtd-worker-trt8 matches libnvinfer.so.8 but its probe failed: CUDA not available"}},
		{"unknown major", all, map[int]string{7: "/a/libnvinfer.so.7"}, ok, fb, true,
			[]string{"libnvinfer.so.7 is TensorRT 7.x, and no worker for it is installed (present: 8, 10, 11)"}},
		{"only fallback installed", []Worker{fb}, map[int]string{8: "/a/libnvinfer.so.8"}, ok, fb, true, []string{"(present: none)"}},
		{"nothing", nil, nil, ok, Worker{}, true, []string{"no worker can build"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Select(context.Background(), tc.present, tc.installed, tc.probe)
			if s.Chosen != tc.chosen || s.Fallback != tc.fallback {
				t.Errorf("chosen %v fallback %v, want %v %v (%s)", s.Chosen, s.Fallback, tc.chosen, tc.fallback, s.Reason)
			}
			for _, r := range tc.reason {
				if !strings.Contains(s.Reason, r) {
					t.Errorf("reason %q lacks %q", s.Reason, r)
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	s := Selection{Present: []Worker{{"/l/trtd-worker-trt8", 8}, {"/l/trtd-worker", 0}}, Chosen: Worker{"/l/trtd-worker", 0}, Reason: "r"}
	if got := s.PresentNames(); got != "trt8, trtexec" {
		t.Errorf("PresentNames = %q", got)
	}
	if got := s.Line(); got != "trtexec (/l/trtd-worker): r" {
		t.Errorf("Line = %q", got)
	}
}

func TestCredentialNeedsAUser(t *testing.T) {
	// The groups themselves are converter.WorkerCredential's, tested there
	// with real users.
	if _, err := Credential(""); err == nil {
		t.Error("an empty worker.user resolved")
	}
}
