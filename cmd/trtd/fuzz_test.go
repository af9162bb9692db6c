package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/status"
)

// FuzzStatusView: `trtd status` reads status.json (written by the daemon,
// but holding upload names and readable by anyone who can replace it): any
// content is either refused or shown without a single control character
// reaching the terminal.
func FuzzStatusView(f *testing.F) {
	f.Add([]byte(`{"pid":1,"version":"1","state":"building","current":{"job":"j","model":"\u001b]0;x\u0007a.onnx","stage":"fast","stage_index":1,"stages":4,"phase":"tactics","step":3,"steps":9},"queue":[{"model":"b\r.onnx"}],"last":[{"model":"c.onnx","outcome":"failed","reason":"\u009b2J"}],"memory":{"mem_available":1}}`))
	f.Add([]byte(`{"pid":-1,"last":[{"reason":"` + strings.Repeat("é", 80) + `"}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"current":null,"waiting":[{}]}`))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "status.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := status.Read(p)
		if err != nil {
			return
		}
		var out bytes.Buffer
		printStatus(&out, s, true, now)
		printStatus(&out, s, false, now)
		for _, r := range out.String() {
			if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
				t.Fatalf("control character %U reaches the terminal: %q", r, out.String())
			}
		}
	})
}
