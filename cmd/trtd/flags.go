package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/trtd/trtd/internal/cliout"
)

// newFlagSet returns a FlagSet whose -h prints the command's Usage.
func newFlagSet(name string, e *Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		if c, ok := commands[name]; ok {
			cliout.Fprintln(e.Stdout, strings.TrimSpace(c.Usage))
		}
		if hasFlags(fs) {
			cliout.Fprintln(e.Stdout, "\nFlags:")
			fs.SetOutput(e.Stdout)
			fs.PrintDefaults()
			fs.SetOutput(e.Stderr)
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args, allowing flags after positional arguments
// ("trtd convert model.onnx --out dir"). done is true when the caller must
// return code (help shown, or a usage error).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0, true
			}
			return 2, true
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	// Re-parse only the positional arguments to expose them via fs.Args().
	_ = fs.Parse(append([]string{"--"}, pos...))
	return 0, false
}
