// Command trtd turns ONNX models into TensorRT engines on memory-starved
// NVIDIA Jetson boards. It is a thin dispatcher: every subcommand lives in
// its own cmd_*.go file and does its work through the daemon and converter
// packages.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/cliout"
)

// command is one subcommand.
type command struct {
	Name    string
	Summary string // one line
	Usage   string // full help text with an example, printed by -h
	Run     func(ctx context.Context, e *Env, args []string) int
}

// Env is what a command may use of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// loadConfig loads path, or the packaged config (or built-in defaults when
// it does not exist) when path is "".
func loadConfig(path string) (*config.Config, error) {
	return config.Load(path)
}

func usage(w io.Writer) {
	cliout.Fprintln(w, "trtd builds TensorRT engines from ONNX models dropped into an inbox, stepping down")
	cliout.Fprintln(w, "to cheaper build settings when memory runs out.")
	cliout.Fprintln(w)
	cliout.Fprintln(w, "Usage: trtd COMMAND [flags]")
	cliout.Fprintln(w)
	cliout.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cliout.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	cliout.Fprintln(w)
	cliout.Fprintln(w, "Run 'trtd COMMAND -h' for a command's flags and an example.")
}

func main() {
	os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
}

// mainArgs runs the command args name. Output that did not reach stdout
// (a full disk behind `> file`) fails the command even where the command
// itself succeeded: a script must not take a cut-short report for one.
func mainArgs(args []string, stdout, stderr io.Writer) int {
	out := cliout.NewLatch(stdout)
	code := dispatch(args, out, stderr)
	if err := out.Err(); err != nil {
		cliout.Fprintf(stderr, "trtd: writing the output: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				cliout.Fprintln(stdout, strings.TrimSpace(c.Usage))
				return 0
			}
		}
		usage(stdout)
		return 0
	case "--version", "-version":
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		cliout.Fprintf(stderr, "trtd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &Env{Stdout: stdout, Stderr: stderr,
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	return c.Run(ctx, e, args[1:])
}
