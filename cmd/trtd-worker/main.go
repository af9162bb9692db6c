// Command trtd-worker builds one TensorRT engine per run, in a process of
// its own so that an out-of-memory kill takes only the worker.
//
// Without arguments it reads one protocol.Request (JSON) from stdin,
// changes to the request's working directory, writes protocol.Events as
// newline-delimited JSON to stdout (the last one is the result), TensorRT's
// log lines to stderr, and exits with protocol.ExitCode(class).
//
// For people:
//
//	trtd-worker probe [--json]     what this machine has (TensorRT, trtexec, CUDA, GPU)
//	trtd-worker cuda-selftest      CUDA runtime check and a cudaMalloc beyond free memory
//	trtd-worker version
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/trtd/trtd/internal/cliout"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(args) == 0 {
		return serve(ctx, stdin, stdout, stderr, log)
	}
	// For people: output that did not reach stdout fails the command.
	out := cliout.NewLatch(stdout)
	code := command(ctx, args, out, stderr, log)
	if err := out.Err(); err != nil {
		cliout.Fprintf(stderr, "trtd-worker: writing the output: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func command(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	switch args[0] {
	case "probe":
		return cmdProbe(ctx, args[1:], stdout, log)
	case "cuda-selftest":
		return cmdCUDASelftest(args[1:], stdout)
	case "version":
		cliout.Fprintln(stdout, versionLine())
		return 0
	case "-h", "--help", "help":
		cliout.Fprint(stdout, usage)
		return 0
	}
	cliout.Fprintf(stderr, "trtd-worker: unknown command %q\n%s", args[0], usage)
	return 2
}

const usage = `usage:
  trtd-worker < request.json     build or probe as the daemon asks (NDJSON events on stdout)
  trtd-worker probe [--json]     show the TensorRT libraries, trtexec, CUDA runtime and GPU found
  trtd-worker cuda-selftest      check the CUDA runtime and classify a cudaMalloc beyond free memory
  trtd-worker version
`
