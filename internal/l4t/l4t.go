// Package l4t reads the Jetson Linux (L4T) release from
// /etc/nv_tegra_release: the one parser of that file, for the device
// diagnosis and for the provenance that decides which engines an upgrade
// invalidated.
package l4t

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// File is the release file's name under /etc.
const File = "nv_tegra_release"

var re = regexp.MustCompile(`R(\d+) \(release\), REVISION: ([\d.]+)`)

// Parse returns the release of the file's content as "32.7.4" (a revision
// without a dot gets ".0"), and false when no "R<n> (release), REVISION:
// x.y" is found.
func Parse(content string) (string, bool) {
	m := re.FindStringSubmatch(content)
	if m == nil {
		return "", false
	}
	rev := strings.TrimRight(m[2], ".")
	if !strings.Contains(rev, ".") {
		rev += ".0"
	}
	return m[1] + "." + rev, true
}

// Read reads etcDir/nv_tegra_release: "" and no error when the file does
// not exist (not a Jetson), an error when it cannot be read or parsed.
func Read(etcDir string) (string, error) {
	p := filepath.Join(etcDir, File)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v, ok := Parse(string(b))
	if !ok {
		return "", fmt.Errorf("%s: no \"# R<n> (release), REVISION: x.y\" line", p)
	}
	return v, nil
}
