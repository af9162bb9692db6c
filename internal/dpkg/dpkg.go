// Package dpkg reads which packages are installed from dpkg's status file
// (/var/lib/dpkg/status): the one parser of that file, for the device
// diagnosis and for `trtd inspect`'s TensorRT version.
package dpkg

import (
	"bufio"
	"os"
	"strings"
)

// StatusFile is dpkg's status database, relative to the root.
const StatusFile = "var/lib/dpkg/status"

// Installed returns the version of every installed package (Status ending
// in " installed") in the status file at path, as dpkg writes it
// ("8.2.1-1+cuda10.2", epochs included).
func Installed(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only; a read error comes from the scanner
	out := map[string]string{}
	var pkg, status, version string
	flush := func() {
		if pkg != "" && strings.HasSuffix(status, " installed") {
			out[pkg] = version
		}
		pkg, status, version = "", "", ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Status: "):
			status = strings.TrimPrefix(line, "Status: ")
		case strings.HasPrefix(line, "Version: "):
			version = strings.TrimPrefix(line, "Version: ")
		}
	}
	flush()
	return out, sc.Err()
}
