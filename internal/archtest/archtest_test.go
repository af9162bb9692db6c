package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/trtd/trtd/"

// goList runs go list from the module root and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// imports maps each project package to the project packages it imports,
// test files included, under the given build tags.
func imports(t *testing.T, tags string) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, l := range goList(t, "-tags", tags, "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...") {
		f := strings.Fields(l)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				m[f[0]] = append(m[f[0]], imp)
			}
		}
	}
	return m
}

func layer(pkg string) string {
	rel := strings.TrimPrefix(pkg, mod)
	first, _, _ := strings.Cut(rel, "/")
	return first
}

func TestLayersPointOneWay(t *testing.T) {
	for _, tags := range []string{"", "tensorrt"} {
		for pkg, imps := range imports(t, tags) {
			for _, imp := range imps {
				from, to := layer(pkg), layer(imp)
				switch {
				case from == "converter" && to == "daemon":
					t.Errorf("tags %q: %s imports %s: converter never imports daemon", tags, pkg, imp)
				case from == "converter" && to == "cmd", from == "daemon" && to == "cmd":
					t.Errorf("tags %q: %s imports %s: nothing imports cmd", tags, pkg, imp)
				case from == "internal" && to != "internal":
					t.Errorf("tags %q: %s imports %s: internal/ leaves import no project package above them", tags, pkg, imp)
				}
			}
		}
	}
}

func TestWorkerLinksNothingOfTheDaemon(t *testing.T) {
	for _, tags := range []string{"", "tensorrt"} {
		for _, pkg := range goList(t, "-deps", "-tags", tags, "./cmd/trtd-worker") {
			if strings.HasPrefix(pkg, mod+"daemon") {
				t.Errorf("tags %q: trtd-worker links %s", tags, pkg)
			}
		}
	}
}

func TestDaemonLinksNoCgoAndNoTensorRT(t *testing.T) {
	for _, tags := range []string{"", "tensorrt"} {
		for _, l := range goList(t, "-deps", "-tags", tags, "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./cmd/trtd") {
			pkg, n, _ := strings.Cut(l, " ")
			if pkg == mod+"converter/trt" {
				t.Errorf("tags %q: trtd links %s", tags, pkg)
			}
			if strings.HasPrefix(pkg, mod) && n != "0" {
				t.Errorf("tags %q: %s uses cgo", tags, pkg)
			}
		}
	}
}

// TestOnlyConverterTRTUsesCgo keeps `import "C"` in one package.
func TestOnlyConverterTRTUsesCgo(t *testing.T) {
	for _, l := range goList(t, "-tags", "tensorrt", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./...") {
		pkg, n, _ := strings.Cut(l, " ")
		if n != "0" && pkg != mod+"converter/trt" {
			t.Errorf("%s uses cgo; only converter/trt may", pkg)
		}
	}
}
