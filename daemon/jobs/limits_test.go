package jobs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// F-5: companions over their caps are claimed with the model (nothing is
// left behind) and the job carries the refusal; nothing reads them.
func TestClaimRefusesOversizedCompanions(t *testing.T) {
	cases := map[string]func(inbox string) (string, string){
		"2 GiB sidecar": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.toml")
			f, _ := os.Create(p)
			f.Truncate(2 << 30) // sparse: costs no disk
			f.Close()
			return p, "settings file m.toml is 2147483648 bytes (limit 65536)"
		},
		"300 sample files": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.test")
			os.Mkdir(p, 0o755)
			for i := 0; i < 300; i++ {
				os.WriteFile(filepath.Join(p, fmt.Sprintf("input_%d.pb", i)), nil, 0o644)
			}
			return p, "accuracy samples m.test/ hold more than 256 files"
		},
		"2 GiB of samples": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.test")
			os.Mkdir(p, 0o755)
			f, _ := os.Create(filepath.Join(p, "input_0.pb"))
			f.Truncate(2 << 30)
			f.Close()
			return p, "accuracy samples m.test/ are 2147483648 bytes (limit 1073741824)"
		},
		// name.calib/ is claimed and capped like name.test/ (issue 11).
		"1100 calibration files": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.calib")
			os.Mkdir(p, 0o755)
			for i := 0; i < 1100; i++ {
				os.WriteFile(filepath.Join(p, fmt.Sprintf("input_%d.pb", i)), nil, 0o644)
			}
			return p, "calibration data m.calib/ hold more than 1024 files"
		},
		"3 GiB of calibration data": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.calib")
			os.Mkdir(p, 0o755)
			f, _ := os.Create(filepath.Join(p, "input_0.pb"))
			f.Truncate(3 << 30)
			f.Close()
			return p, "calibration data m.calib/ are 3221225472 bytes (limit 2147483648)"
		},
		"a link among the calibration data": func(inbox string) (string, string) {
			p := filepath.Join(inbox, "m.calib")
			os.Mkdir(p, 0o755)
			os.Symlink("/etc/passwd", filepath.Join(p, "input_0.pb"))
			return p, "calibration data m.calib/ hold input_0.pb, which is symbolic link, not a regular file: the calibration data must be plain input_N.pb files"
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s, inbox := newStore(t)
			m := filepath.Join(inbox, "m.onnx")
			os.WriteFile(m, []byte("model"), 0o644)
			comp, want := mk(inbox)
			j, err := s.Claim(m, "m.onnx", 5, 0, []string{comp})
			if err != nil {
				t.Fatal(err)
			}
			if j.Refused != want {
				t.Errorf("refused %q, want %q", j.Refused, want)
			}
			back, _ := s.Load(j.ID)
			if back == nil || back.Refused != want {
				t.Errorf("refusal not persisted: %+v", back)
			}
			if _, err := os.Lstat(comp); !os.IsNotExist(err) {
				t.Errorf("%s left in the inbox", comp)
			}
			if _, err := os.Lstat(filepath.Join(s.Dir(j), "model", filepath.Base(comp))); err != nil {
				t.Errorf("companion not claimed with the model: %v", err)
			}
		})
	}
	// Within the caps: nothing refused.
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "ok.onnx")
	os.WriteFile(m, []byte("model"), 0o644)
	sc := filepath.Join(inbox, "ok.toml")
	os.WriteFile(sc, []byte(strings.Repeat("#", 60<<10)), 0o644)
	j, err := s.Claim(m, "ok.onnx", 5, 0, []string{sc})
	if err != nil || j.Refused != "" {
		t.Fatalf("claim %+v %v", j, err)
	}
}
