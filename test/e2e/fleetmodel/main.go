// Command fleetmodel prepares what test/e2e/fleet.sh needs from Go: the
// model both devices get (a small CNN), or with -htpasswd USER PASSWORD the
// bcrypt htpasswd line docker-registry accepts.
package main

import (
	"flag"
	"fmt"
	"os"

	"golang.org/x/crypto/bcrypt"

	"github.com/trtd/trtd/internal/testmodels"
)

func main() {
	htpasswd := flag.Bool("htpasswd", false, "print an htpasswd line for USER PASSWORD")
	flag.Parse()
	if flag.NArg() == 0 || (*htpasswd && flag.NArg() != 2) {
		fmt.Fprintln(os.Stderr, "usage: fleetmodel OUT.onnx | fleetmodel -htpasswd USER PASSWORD")
		os.Exit(2)
	}
	if *htpasswd {
		h, err := bcrypt.GenerateFromPassword([]byte(flag.Arg(1)), bcrypt.DefaultCost)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s:%s\n", flag.Arg(0), h)
		return
	}
	if err := os.WriteFile(flag.Arg(0), testmodels.TinyCNN, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
