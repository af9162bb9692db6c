package safename

import (
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	for in, want := range map[string]string{"net": "net", "résumé": "résumé", "a/b": "a_b-", "-x": "_x-", ".hidden": "_hidden-", "": "_-"} {
		got := File(in)
		if want[len(want)-1] == '-' {
			if !strings.HasPrefix(got, want) || len(got) != len(want)+16 {
				t.Errorf("File(%q) = %q, want %s<16 hex>", in, got, want)
			}
		} else if got != want {
			t.Errorf("File(%q) = %q, want %q", in, got, want)
		}
	}
	if File("a/b") == File("a\\b") {
		t.Error("two different uploads share an outbox name")
	}
}

func TestPortable(t *testing.T) {
	if got := Portable("8.2.1-sm5.3-NVIDIA Tegra X1/ü"); got != "8.2.1-sm5.3-NVIDIA_Tegra_X1__" {
		t.Errorf("Portable = %q", got)
	}
}
