// Package opsupport tells which ONNX operators the ONNX parser of a given
// TensorRT version can import, so `trtd inspect` can name the ops a build
// would fail on before anyone waits for it.
//
// The tables are data (data/trt-*.txt, embedded): the operator lists of
// onnx-tensorrt's docs/operators.md at each release, with the ref they came
// from in each file's header. They say what NVIDIA documented, not what a
// given build of the parser does with every attribute and type; ops outside
// the default domain are never in them (TensorRT imports those only through
// plugins).
//
// DetectVersion finds the installed TensorRT from dpkg's status file or the
// libnvinfer library names, under an injectable root.
package opsupport

import (
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/trtd/trtd/internal/dpkg"
)

//go:embed data/trt-*.txt
var dataFS embed.FS

// ErrUnknownVersion: no table covers the requested TensorRT version.
var ErrUnknownVersion = errors.New("no operator table for this TensorRT version")

// ErrNotDetected: no TensorRT installation was found.
var ErrNotDetected = errors.New("TensorRT not found")

// Status is an operator's support in one TensorRT version.
type Status int

// Statuses.
const (
	// NotListed: the op is not in the table (a newer ONNX op, or a
	// custom-domain op that needs a TensorRT plugin).
	NotListed Status = iota
	Supported
	Experimental
	Unsupported
)

func (s Status) String() string {
	switch s {
	case Supported:
		return "supported"
	case Experimental:
		return "experimental"
	case Unsupported:
		return "not supported"
	}
	return "not listed"
}

// Table is the operator support of one TensorRT version's ONNX parser.
type Table struct {
	Version  string   // "8.6"
	Source   []string // header comment of the data file (where it came from)
	MinOpset int64    // 0 if the document states none
	MaxOpset int64
	ops      map[string]Status
}

// Status returns the support of op in domain ("" and "ai.onnx" are the
// default domain; any other domain is NotListed).
func (t *Table) Status(domain, op string) Status {
	if domain != "" && domain != "ai.onnx" {
		return NotListed
	}
	return t.ops[op]
}

// Ops returns the table's operators, sorted.
func (t *Table) Ops() []string {
	ops := make([]string, 0, len(t.ops))
	for op := range t.ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// loadTables parses the embedded tables once, on first use (not at
// start-up of every trtd command).
var loadTables = sync.OnceValue(mustLoad)

func mustLoad() map[string]*Table {
	ents, err := dataFS.ReadDir("data")
	if err != nil {
		panic(err)
	}
	out := map[string]*Table{}
	for _, e := range ents {
		b, err := dataFS.ReadFile("data/" + e.Name())
		if err != nil {
			panic(err)
		}
		v := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "trt-"), ".txt")
		t, err := parseTable(v, string(b))
		if err != nil {
			panic(fmt.Sprintf("opsupport: data/%s: %v", e.Name(), err))
		}
		out[v] = t
	}
	return out
}

func parseTable(version, text string) (*Table, error) {
	t := &Table{Version: version, ops: map[string]Status{}}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			t.Source = append(t.Source, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want 2 fields, got %q", i+1, line)
		}
		switch f[0] {
		case "min_opset", "max_opset":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			if f[0] == "min_opset" {
				t.MinOpset = n
			} else {
				t.MaxOpset = n
			}
			continue
		}
		var s Status
		switch f[1] {
		case "Y":
			s = Supported
		case "E":
			s = Experimental
		case "N":
			s = Unsupported
		default:
			return nil, fmt.Errorf("line %d: status %q is not Y, E or N", i+1, f[1])
		}
		if _, dup := t.ops[f[0]]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", i+1, f[0])
		}
		t.ops[f[0]] = s
	}
	if len(t.ops) == 0 || t.MaxOpset == 0 {
		return nil, errors.New("no operators or no max_opset")
	}
	return t, nil
}

// Versions returns the versions that have a table, oldest first.
func Versions() []string {
	tables := loadTables()
	vs := make([]string, 0, len(tables))
	for v := range tables {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return less(parseVersion(vs[i]), parseVersion(vs[j])) })
	return vs
}

type ver struct{ major, minor int }

func less(a, b ver) bool { return a.major < b.major || a.major == b.major && a.minor < b.minor }

func parseVersion(s string) ver {
	var v ver
	parts := strings.SplitN(s, ".", 3)
	v.major, _ = strconv.Atoi(parts[0])
	if len(parts) > 1 {
		v.minor, _ = strconv.Atoi(parts[1])
	}
	return v
}

var versionRE = regexp.MustCompile(`^\d+(\.\d+){0,3}$`)

// For returns the table for a TensorRT version such as "8.2", "8.2.1" or
// "8.6.1.6": the table of the same major version with the highest minor
// version not above the requested one. exact is false when the table is of
// an older minor version (later releases only add operators), or, for a
// major version newer than every table, of the newest table.
func For(version string) (t *Table, exact bool, err error) {
	version = strings.TrimSpace(version)
	if !versionRE.MatchString(version) {
		return nil, false, fmt.Errorf("%w: %q is not a version like 8.6 or 10.3.0", ErrUnknownVersion, version)
	}
	want := parseVersion(version)
	tables := loadTables()
	vs := Versions()
	var best string
	for _, v := range vs {
		pv := parseVersion(v)
		if pv.major == want.major && !less(want, pv) {
			best = v
		}
	}
	if best == "" {
		newest := vs[len(vs)-1]
		if want.major > parseVersion(newest).major {
			return tables[newest], false, nil
		}
		return nil, false, fmt.Errorf("%w %s (tables: %s)", ErrUnknownVersion, version, strings.Join(vs, ", "))
	}
	pb := parseVersion(best)
	return tables[best], pb == want, nil
}

// Op is one operator used by a model.
type Op struct {
	Domain string
	OpType string
	Count  int
}

// Problem is an operator the parser cannot import (or may not).
type Problem struct {
	Domain string `json:"domain"`
	OpType string `json:"op_type"`
	Count  int    `json:"count"`
	Status Status `json:"-"`
	Reason string `json:"reason"`
}

// Check returns the ops that are not plainly supported, in the order given.
func (t *Table) Check(ops []Op) []Problem {
	var ps []Problem
	for _, o := range ops {
		s := t.Status(o.Domain, o.OpType)
		if s == Supported {
			continue
		}
		p := Problem{Domain: o.Domain, OpType: o.OpType, Count: o.Count, Status: s}
		switch {
		case s == Unsupported:
			p.Reason = fmt.Sprintf("not supported by the TensorRT %s ONNX parser", t.Version)
		case s == Experimental:
			p.Reason = fmt.Sprintf("experimental in the TensorRT %s ONNX parser", t.Version)
		case o.Domain != "" && o.Domain != "ai.onnx":
			p.Reason = fmt.Sprintf("custom domain %q: needs a TensorRT plugin named %s", o.Domain, o.OpType)
		default:
			p.Reason = fmt.Sprintf("not in the TensorRT %s operator list (newer ONNX op?)", t.Version)
		}
		ps = append(ps, p)
	}
	return ps
}

// CheckOpset returns a warning when the model's default-domain opset is
// outside the range the table's document states, "" otherwise.
func (t *Table) CheckOpset(opset int64) string {
	switch {
	case opset > t.MaxOpset:
		return fmt.Sprintf("opset %d is newer than the %d the TensorRT %s ONNX parser documents", opset, t.MaxOpset, t.Version)
	case t.MinOpset > 0 && opset < t.MinOpset:
		return fmt.Sprintf("opset %d is older than the %d the TensorRT %s ONNX parser documents", opset, t.MinOpset, t.Version)
	}
	return ""
}

// DetectVersion finds the installed TensorRT version under root ("/" on a
// live system): first dpkg's status (packages libnvinfer8, libnvinfer10,
// tensorrt, nvidia-tensorrt...), then libnvinfer.so.X.Y.Z in the usual
// library directories. It returns ErrNotDetected when neither is found.
func DetectVersion(root string) (string, error) {
	if v := fromDpkg(filepath.Join(root, "var/lib/dpkg/status")); v != "" {
		return v, nil
	}
	for _, dir := range []string{"usr/lib/aarch64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/lib", "usr/local/lib", "usr/local/tensorrt/lib", "opt/tensorrt/lib"} {
		matches, _ := filepath.Glob(filepath.Join(root, dir, "libnvinfer.so.*.*.*"))
		sort.Strings(matches)
		for i := len(matches) - 1; i >= 0; i-- {
			v := strings.TrimPrefix(filepath.Base(matches[i]), "libnvinfer.so.")
			if versionRE.MatchString(v) {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("%w under %s (no libnvinfer package in dpkg status, no libnvinfer.so.X.Y.Z)", ErrNotDetected, root)
}

var dpkgRE = regexp.MustCompile(`^(\d+\.\d+(\.\d+){0,2})`)

func fromDpkg(path string) string {
	installed, err := dpkg.Installed(path)
	if err != nil {
		return ""
	}
	var found string
	for pkg, version := range installed {
		if !strings.HasPrefix(pkg, "libnvinfer") || strings.Contains(pkg, "-dev") || strings.Contains(pkg, "-doc") ||
			strings.Contains(pkg, "plugin") || strings.Contains(pkg, "lean") || strings.Contains(pkg, "dispatch") ||
			strings.Contains(pkg, "headers") || strings.Contains(pkg, "bin") || strings.Contains(pkg, "samples") {
			continue
		}
		if m := dpkgRE.FindString(version); m != "" && (found == "" || less(parseVersion(found), parseVersion(m))) {
			found = m
		}
	}
	return found
}
