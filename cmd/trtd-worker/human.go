package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt"
	"github.com/trtd/trtd/converter/trtexec"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/nodeaccess"
)

func versionLine() string {
	hdr := "built without TensorRT headers"
	if v, ok := trt.Compiled(); ok {
		hdr = "compiled against TensorRT " + v.String() + " headers"
	}
	return fmt.Sprintf("trtd-worker (%s, %s/%s, %s)", hdr, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func cmdProbe(ctx context.Context, args []string, w io.Writer, log *slog.Logger) int {
	asJSON := len(args) > 0 && args[0] == "--json"
	req := protocol.Request{Version: protocol.Version, Op: protocol.OpProbe, Backend: "auto"}
	b, c, msg := probe(ctx, req, trt.Options{Log: log, DevDir: os.Getenv(trt.DevDirEnv)}, trtexec.Options{Log: log})
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(protocol.Result{Class: c, Message: msg, Builder: b}); err != nil {
			log.Error("probe result not written", "err", err)
			return 1
		}
		return protocol.ExitCode(c)
	}
	cliout.Fprintln(w, versionLine())
	cliout.Fprintf(w, "class:       %s\n", c)
	if msg != "" {
		cliout.Fprintf(w, "message:     %s\n", msg)
	}
	cliout.Fprintf(w, "backend:     %s\n", b.Backend)
	if b.TensorRT != "" {
		cliout.Fprintf(w, "tensorrt:    %s (headers %s)\n", b.TensorRT, b.CompiledTensorRT)
	}
	if b.Trtexec != "" {
		cliout.Fprintf(w, "trtexec:     %s\n", b.Trtexec)
	}
	cliout.Fprintf(w, "cuda:        runtime %s, driver %s\n", orNone(b.CUDARuntime), orNone(b.CUDADriver))
	cliout.Fprintf(w, "gpu:         %s (compute capability %s), %s total, %s free\n", orNone(b.GPU), orNone(b.ComputeCapability), bytesize.MiB(b.GPUMemTotal), bytesize.MiB(b.GPUMemFree))
	var libs []string
	for k, v := range b.Libraries {
		libs = append(libs, k+" => "+v)
	}
	sort.Strings(libs)
	cliout.Fprintf(w, "libraries:   %s\n", orNone(strings.Join(libs, ", ")))
	return protocol.ExitCode(c)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// cmdCUDASelftest checks the CUDA side through libcudart loaded with
// dlopen: device, compute capability, memory; then a small cudaMalloc that
// must succeed and one of free memory + 1 GiB that must fail and be
// classified as out of memory.
func cmdCUDASelftest(_ []string, w io.Writer) int {
	cliout.Fprintln(w, versionLine())
	ci, err := trt.ProbeCUDA(trt.CUDACandidates("/"))
	for _, t := range ci.Tried {
		cliout.Fprintf(w, "tried:       %s\n", t)
	}
	if err != nil {
		cliout.Fprintf(w, "cuda:        %v (cudaError_t %d)\n", err, ci.Error)
		uid, gids := nodeaccess.Self()
		cliout.Fprintf(w, "class:       %s: %s\n", protocol.ClassBuilderUnavailable, trt.CUDAUnavailable(ci.Error, err, devDir(), uid, gids))
		return protocol.ExitBuilderUnavailable
	}
	cliout.Fprintf(w, "libcudart:   %s\n", ci.Library)
	cliout.Fprintf(w, "cuda:        runtime %s, driver %s, %d device(s)\n", trt.CUDAVersionString(ci.RuntimeVersion), trt.CUDAVersionString(ci.DriverVersion), ci.Devices)
	cliout.Fprintf(w, "device 0:    %s, compute capability %s, integrated=%v\n", ci.Name, ci.ComputeCapability(), ci.Integrated)
	cliout.Fprintf(w, "memory:      %s total, %s free\n", bytesize.MiB(int64(ci.Total)), bytesize.MiB(int64(ci.Free)))
	small := trt.CUDAMalloc(64 << 20)
	cliout.Fprintf(w, "small:       %s\n", small.LogLine())
	big := trt.CUDAMalloc(ci.Free + 1<<30)
	cliout.Fprintf(w, "beyond free: %s\n", big.LogLine())
	c, r, ok := classify.ClassifyLog([]byte(big.LogLine()))
	if !ok {
		c, r = protocol.ClassCrashed, "unclassified"
	}
	cliout.Fprintf(w, "classified:  %s (%s)\n", c, r)
	if small.Code != 0 || c != protocol.ClassOutOfMemory {
		cliout.Fprintln(w, "selftest:    FAILED")
		return 1
	}
	cliout.Fprintln(w, "selftest:    ok")
	return 0
}

// devDir is where the GPU's device nodes are: $TRTD_DEV_DIR, else /dev.
func devDir() string {
	if d := os.Getenv(trt.DevDirEnv); d != "" {
		return d
	}
	return "/dev"
}
