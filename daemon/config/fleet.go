package config

import (
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Fleet shares engines between identical devices through an OCI registry
// (docs/FLEET.md).
type Fleet struct {
	// Registry is an OCI repository, "registry.lan:5000/trtd/engines";
	// "" turns sharing off.
	Registry string `toml:"registry"`
	// Pull looks for a matching engine before building.
	Pull bool `toml:"pull"`
	// Push shares what this device built.
	Push bool `toml:"push"`
	// Credentials is a docker-style config.json with auths for the
	// registry, readable by root only.
	Credentials string `toml:"credentials"`
	// CA is an extra CA bundle for a private registry.
	CA string `toml:"ca"`
	// PlainHTTP talks http:// to the registry (a trusted network only).
	PlainHTTP bool `toml:"plain_http"`
	// Timeout bounds connecting, each answer and every stall of a transfer.
	Timeout Duration `toml:"timeout"`
	// Textfile is where trtd writes its counters in node_exporter's
	// textfile-collector format ("" = not written).
	Textfile string `toml:"textfile"`
}

// DefaultFleet is the [fleet] section's defaults: off.
func DefaultFleet() Fleet {
	return Fleet{Pull: true, Push: true, Timeout: Duration(30 * time.Second)}
}

// Enabled says whether a registry is configured.
func (f Fleet) Enabled() bool { return f.Registry != "" }

// repoRe is an OCI repository reference without tag or digest:
// host[:port]/path (distribution-spec's name grammar, lower case).
var repoRe = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+$`)

// check reports the [fleet] section's problems through bad.
func (f Fleet) check(bad func(format string, a ...any)) {
	if f.Registry != "" {
		switch {
		case strings.Contains(f.Registry, "://"):
			bad("fleet.registry: %q: give host:port/repository without a scheme (plain_http = true for http)", f.Registry)
		case !repoRe.MatchString(f.Registry):
			bad("fleet.registry: %q is not an OCI repository like \"registry.lan:5000/trtd/engines\" (no tag, lower-case path)", f.Registry)
		}
	}
	for key, v := range map[string]string{"fleet.credentials": f.Credentials, "fleet.ca": f.CA, "fleet.textfile": f.Textfile} {
		if v != "" && !filepath.IsAbs(v) {
			bad("%s: %q must be an absolute path", key, v)
		}
	}
	if f.Textfile != "" && !strings.HasSuffix(f.Textfile, ".prom") {
		bad("fleet.textfile: %q must end in .prom (node_exporter's textfile collector reads only those)", f.Textfile)
	}
	if f.Timeout < Duration(time.Second) || f.Timeout > Duration(time.Hour) {
		bad("fleet.timeout: %s is not in 1s..1h", f.Timeout)
	}
}
