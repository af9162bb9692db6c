package config

import (
	"strings"
	"testing"
	"time"
)

func TestFleetSection(t *testing.T) {
	c, err := Parse("t.toml", []byte("[fleet]\nregistry = \"registry.lan:5000/trtd/engines\"\ncredentials = \"/etc/trtd/registry.json\"\ntextfile = \"/var/lib/node-exporter/trtd.prom\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Fleet.Enabled() || !c.Fleet.Pull || !c.Fleet.Push || c.Fleet.Timeout.D() != 30*time.Second {
		t.Fatalf("%+v", c.Fleet)
	}
	if Default().Fleet.Enabled() {
		t.Fatal("sharing must be off by default")
	}
	_, err = Parse("t.toml", []byte("[fleet]\nregistry = \"https://r:5000/x\"\nca = \"rel/ca.pem\"\ntextfile = \"/x/trtd.txt\"\ntimeout = \"10ms\"\nbogus = 1\n"))
	for _, want := range []string{"fleet.registry", "without a scheme", "fleet.ca", "fleet.textfile", ".prom", "fleet.timeout", "t.toml:6: unknown key \"fleet.bogus\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	for _, bad := range []string{"r:5000/Trtd", "r:5000/trtd:tag", "r:5000"} {
		if _, err := Parse("t.toml", []byte("[fleet]\nregistry = \""+bad+"\"\n")); err == nil {
			t.Errorf("registry %q accepted", bad)
		}
	}
}
