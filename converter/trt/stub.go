//go:build !tensorrt || !cgo

package trt

import (
	"context"
	"fmt"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
)

// Probe reports what this worker can use: without TensorRT headers only
// the CUDA side, and builder_unavailable with what TensorRT libraries the
// machine has.
func Probe(o Options) (protocol.Builder, protocol.Class, string) {
	o.defaults()
	b := protocol.Builder{Backend: "api"}
	var notes []string
	if ci, err := fillCUDA(&b, o.Root); err != nil {
		notes = append(notes, cudaUnavailable(ci, err, o.DevDir))
	}
	found := FindInstalled(SearchDirs(o.Root), "libnvinfer.so")
	lib := "no libnvinfer.so* on this machine (searched the dynamic linker path and " + strings.Join(SearchDirs(o.Root), ", ") + ")"
	if len(found) > 0 {
		lib = "present: " + strings.Join(found, ", ")
	}
	msg := fmt.Sprintf("%s: this worker was %s; %s", ErrNoTensorRT, ErrNotCompiled, lib)
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return b, protocol.ClassBuilderUnavailable, msg
}

// Load says that this worker cannot use the TensorRT API; it touches no
// CUDA (the worker decides its backend before the GPU).
func Load(o Options) (protocol.Builder, protocol.Class, string) {
	o.defaults()
	b := protocol.Builder{Backend: "api"}
	return b, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: this worker was %s", ErrNoTensorRT, ErrNotCompiled)
}

// Build always fails: this worker was built without TensorRT headers.
func Build(_ context.Context, _ protocol.Request, o Options) *protocol.Result {
	b, c, msg := Probe(o)
	return &protocol.Result{Class: c, Message: msg, Builder: b}
}
