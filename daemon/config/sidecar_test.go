package config

import (
	"strings"
	"testing"
)

func TestSidecarGood(t *testing.T) {
	src := `precision = "fp32"
workspace = "128M"
stages = ["lean", "minimal"]
[[shape]]
input = "input"
min = [1, 3, 224, 224]
opt = [4, 3, 224, 224]
max = [8, 3, 224, 224]
[accuracy]
atol = 0.01
`
	s, err := ParseSidecar("m.toml", []byte(src), DefaultStages())
	if err != nil {
		t.Fatal(err)
	}
	if s.Precision != "fp32" || s.Workspace != 128<<20 || *s.Accuracy.ATol != 0.01 {
		t.Fatalf("%+v", s)
	}
	sh := s.ProtocolShapes()
	if len(sh) != 1 || sh[0].Opt[0] != 4 || sh[0].Max[0] != 8 {
		t.Fatalf("shapes %+v", sh)
	}
	l := s.Ladder(DefaultStages())
	if len(l) != 2 || l[0].Name != "lean" {
		t.Fatalf("ladder %+v", l)
	}
}

func TestSidecarProblemsAllAtOnce(t *testing.T) {
	src := `precision = "fp64"
stages = ["turbo"]
colour = "red"
[[shape]]
input = "x"
min = [4]
max = [2]
[[shape]]
input = "y"
min = [1, 2]
max = [1]
`
	_, err := ParseSidecar("bad.toml", []byte(src), DefaultStages())
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`bad.toml:3: unknown key "colour"`, `precision: "fp64"`, `no stage named "turbo"`,
		`(x): dim 0 needs 1 <= min <= opt <= max`, `(y): min, opt and max must have the same rank`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
