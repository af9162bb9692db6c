// Package meminfo reads the /proc/meminfo fields trtd plans with: the one
// parser of that file for the device diagnosis, the swap manager and the
// memory guard.
//
// gopsutil's mem.VirtualMemory reads the same file, but it estimates
// MemAvailable when the line is missing and skips malformed lines, while
// trtd must refuse to plan on a kernel without MemAvailable and report a
// malformed file; and trtd reads fixture trees under an injectable /proc.
// gopsutil stays for the process figures (RSS) of the status file.
package meminfo

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Info holds the fields in bytes. Missing names the fields the file lacked.
type Info struct {
	MemTotal, MemAvailable, SwapTotal, SwapFree int64
	Missing                                     []string
}

// Has reports whether every named field was present.
func (i Info) Has(fields ...string) bool {
	for _, f := range fields {
		for _, m := range i.Missing {
			if m == f {
				return false
			}
		}
	}
	return true
}

// Parse reads meminfo content; name is the file for error messages. A
// field of the four without a number is an error; other lines are ignored.
func Parse(name string, data []byte) (Info, error) {
	var i Info
	seen := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "MemTotal":
			dst = &i.MemTotal
		case "MemAvailable":
			dst = &i.MemAvailable
		case "SwapTotal":
			dst = &i.SwapTotal
		case "SwapFree":
			dst = &i.SwapFree
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return i, fmt.Errorf("%s: %s has no value", name, k)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return i, fmt.Errorf("%s: %s: bad number %q", name, k, f[0])
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		*dst = n
		seen[k] = true
	}
	for _, k := range []string{"MemTotal", "MemAvailable", "SwapTotal", "SwapFree"} {
		if !seen[k] {
			i.Missing = append(i.Missing, k)
		}
	}
	return i, nil
}

// Read parses procDir/meminfo ("" = /proc).
func Read(procDir string) (Info, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	p := filepath.Join(procDir, "meminfo")
	data, err := os.ReadFile(p)
	if err != nil {
		return Info{}, fmt.Errorf("read %s: %w", p, err)
	}
	return Parse(p, data)
}
