package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {300 << 20, "300.0 MiB"}, {46766080, "44.6 MiB"}, {3<<29 + 1, "1.5 GiB"},
		{4154654720, "3.9 GiB"}, {-(2 << 20), "-2.0 MiB"}, {3 << 40, "3.0 TiB"},
	} {
		if got := Format(c.n); got != c.want {
			t.Errorf("Format(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	if got := Limit(-1); got != "unlimited" {
		t.Errorf("Limit(-1) = %q", got)
	}
	if got := Limit(1 << 30); got != "1.0 GiB" {
		t.Errorf("Limit(1 GiB) = %q", got)
	}
	if got := MiB(3<<19 + 1); got != "2 MiB" {
		t.Errorf("MiB(1.5 MiB) = %q", got)
	}
}
