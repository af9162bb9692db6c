package swap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trtd/trtd/internal/meminfo"
)

// ProcSwap is one line of /proc/swaps.
type ProcSwap struct {
	Path     string `json:"path"`
	Type     string `json:"type"` // file | partition
	Size     int64  `json:"size"` // bytes
	Used     int64  `json:"used"` // bytes
	Priority int    `json:"priority"`
	Deleted  bool   `json:"deleted,omitempty"` // the file was unlinked while active
}

// IsZram reports whether the device is a zram block device.
func (p ProcSwap) IsZram() bool { return strings.HasPrefix(filepath.Base(p.Path), "zram") }

// ParseProcSwaps parses the content of /proc/swaps (name is used in errors).
func ParseProcSwaps(name string, data []byte) ([]ProcSwap, error) {
	var out []ProcSwap
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if line == 1 && strings.HasPrefix(t, "Filename") {
			continue
		}
		if strings.TrimSpace(t) == "" {
			continue
		}
		f := strings.Fields(t)
		deleted := false
		// An unlinked active file shows as "/path (deleted)".
		if len(f) == 6 && f[1] == "(deleted)" {
			f = append(f[:1], f[2:]...)
			deleted = true
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 fields, got %d: %q", name, line, len(f), t)
		}
		size, err1 := strconv.ParseInt(f[2], 10, 64)
		used, err2 := strconv.ParseInt(f[3], 10, 64)
		prio, err3 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("%s:%d: bad number in %q", name, line, t)
		}
		out = append(out, ProcSwap{Path: unescapeOctal(f[0]), Type: f[1], Size: size << 10,
			Used: used << 10, Priority: prio, Deleted: deleted})
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \040-style escaping of paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MemInfo holds the /proc/meminfo fields the swap manager needs, in bytes.
type MemInfo = meminfo.Info

// ParseMemInfo parses /proc/meminfo content; the swap manager needs all
// four fields.
func ParseMemInfo(name string, data []byte) (MemInfo, error) {
	m, err := meminfo.Parse(name, data)
	if err == nil && len(m.Missing) > 0 {
		err = fmt.Errorf("%s: missing MemTotal/MemAvailable/SwapTotal/SwapFree", name)
	}
	return m, err
}

func (m *Manager) procSwaps() ([]ProcSwap, error) {
	p := filepath.Join(m.proc, "swaps")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return ParseProcSwaps(p, data)
}

func (m *Manager) memInfo() (MemInfo, error) {
	p := filepath.Join(m.proc, "meminfo")
	data, err := os.ReadFile(p)
	if err != nil {
		return MemInfo{}, fmt.Errorf("read %s: %w", p, err)
	}
	return ParseMemInfo(p, data)
}
