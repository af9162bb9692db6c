package trt

import (
	"io"
	"log/slog"

	"github.com/trtd/trtd/converter/protocol"
)

// Options are what Probe and Build need from the worker.
type Options struct {
	Log *slog.Logger
	// Emit receives events for the parent (progress, memory accounting,
	// warnings and errors of TensorRT's logger).
	Emit func(protocol.Event)
	// Stderr receives every TensorRT logger line, as text.
	Stderr io.Writer
	// Root prefixes the directories searched for libraries ("/" in production).
	Root string
	// DevDir holds the GPU's device nodes ("/dev"; the worker takes
	// $TRTD_DEV_DIR when set, for tests).
	DevDir string
	// MinSeverity of logger lines kept: error, warning, info (default), verbose.
	MinSeverity string
	// Cancel, when closed, asks a running build to stop (TensorRT 10+).
	Cancel <-chan struct{}
}

// DevDirEnv names the environment variable that overrides /dev as the
// directory of the GPU's device nodes (permission checks only).
const DevDirEnv = "TRTD_DEV_DIR"

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Emit == nil {
		o.Emit = func(protocol.Event) {}
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.DevDir == "" {
		o.DevDir = "/dev"
	}
	if o.MinSeverity == "" {
		o.MinSeverity = "info"
	}
}
