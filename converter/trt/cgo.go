//go:build cgo

package trt

/*
#cgo CXXFLAGS: -std=c++17 -Wall -Wextra
#cgo tensorrt CPPFLAGS: -DTRTD_TENSORRT=1
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/trt/version"
)

// This is the only file of trtd that calls C. Everything below is a thin
// wrapper over shim.h; the logic lives in the pure-Go files.

const errLen = 2048

func cerr(b []C.char) string { return C.GoString(&b[0]) }

func cgoEnabled() bool { return true }

func cudaLoad(candidates []string) (tried string, err error) {
	cs := make([]*C.char, len(candidates))
	for i, s := range candidates {
		cs[i] = C.CString(s)
	}
	defer func() {
		for _, p := range cs {
			C.free(unsafe.Pointer(p))
		}
	}()
	var triedBuf [8192]C.char
	var e [errLen]C.char
	var arr **C.char
	if len(cs) > 0 {
		arr = &cs[0]
	}
	if C.trtd_cuda_load(arr, C.int(len(cs)), &triedBuf[0], C.size_t(len(triedBuf)), &e[0], errLen) != 0 {
		return C.GoString(&triedBuf[0]), errors.New(cerr(e[:]))
	}
	return C.GoString(&triedBuf[0]), nil
}

func cudaInfo(dev int) (CUDAInfo, error) {
	var ci C.trtd_cuda_info
	var e [errLen]C.char
	rc := C.trtd_cuda_info_get(C.int(dev), &ci, &e[0], errLen)
	info := CUDAInfo{
		Library:        C.GoString(&ci.path[0]),
		RuntimeVersion: int(ci.runtime_version),
		DriverVersion:  int(ci.driver_version),
		Devices:        int(ci.device_count),
		Name:           C.GoString(&ci.name[0]),
		CCMajor:        int(ci.cc_major),
		CCMinor:        int(ci.cc_minor),
		Integrated:     ci.integrated != 0,
		Total:          uint64(ci.total),
		Free:           uint64(ci.free),
		Error:          int(ci.cuda_error),
	}
	if rc != 0 {
		return info, errors.New(cerr(e[:]))
	}
	return info, nil
}

func cudaMallocTest(bytes uint64) MallocResult {
	var name [128]C.char
	var msg [512]C.char
	code := C.trtd_cuda_malloc_test(C.uint64_t(bytes), &name[0], 128, &msg[0], 512)
	return MallocResult{Bytes: bytes, Code: int(code), Name: C.GoString(&name[0]), Message: C.GoString(&msg[0])}
}

func hasTensorRT() bool { return C.trtd_has_tensorrt() != 0 }

// guardSelfTest throws inside the shim's exception guard (1 std::bad_alloc,
// 2 std::runtime_error, 3 an int) and returns what came back over extern "C".
func guardSelfTest(kind int) (int, string) {
	var e [errLen]C.char
	rc := C.trtd_guard_selftest(C.int(kind), &e[0], errLen)
	return int(rc), cerr(e[:])
}

func compiledVersion() version.Version {
	var ma, mi, pa C.int
	C.trtd_compiled_version(&ma, &mi, &pa)
	return version.Version{Major: int(ma), Minor: int(mi), Patch: int(pa)}
}

func canCancel() bool { return C.trtd_can_cancel() != 0 }

// libs is what trtd_trt_load found.
type libs struct {
	LibVersion, ParserVersion int
	NvInfer, Parser, Plugin   string
}

func trtLoad(nvinfer, parser, plugin string) (libs, error) {
	a, b, c := C.CString(nvinfer), C.CString(parser), C.CString(plugin)
	defer C.free(unsafe.Pointer(a))
	defer C.free(unsafe.Pointer(b))
	defer C.free(unsafe.Pointer(c))
	var out C.trtd_trt_libs
	var e [errLen]C.char
	if C.trtd_trt_load(a, b, c, &out, &e[0], errLen) != 0 {
		return libs{}, errors.New(cerr(e[:]))
	}
	return libs{
		LibVersion: int(out.lib_version), ParserVersion: int(out.parser_version),
		NvInfer: C.GoString(&out.nvinfer[0]), Parser: C.GoString(&out.parser[0]), Plugin: C.GoString(&out.plugin[0]),
	}, nil
}

// session wraps a trtd_session (logger + builder + network + parser + config).
// mu orders cancel (from the cancel goroutine) against free.
type session struct {
	mu sync.Mutex
	p  *C.trtd_session
}

func newSession(minSeverity string) (*session, error) {
	s := C.CString(minSeverity)
	defer C.free(unsafe.Pointer(s))
	var e [errLen]C.char
	p := C.trtd_session_new(s, &e[0], errLen)
	if p == nil {
		return nil, errors.New(cerr(e[:]))
	}
	ss := &session{p: p}
	if cerr(e[:]) != "" {
		return ss, errors.New(cerr(e[:]))
	}
	return ss, nil
}

func (s *session) free() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.trtd_session_free(s.p)
		s.p = nil
	}
}

// event is one queued logger / progress-monitor event.
type event struct {
	Kind, Severity, Text string
	Step, Steps, Dropped int
}

func (s *session) nextEvent() (event, bool) {
	var ev C.trtd_event
	if C.trtd_next_event(s.p, &ev) == 0 {
		return event{}, false
	}
	return event{
		Kind: C.GoString(&ev.kind[0]), Severity: C.GoString(&ev.severity[0]), Text: C.GoString(&ev.text[0]),
		Step: int(ev.step), Steps: int(ev.steps), Dropped: int(ev.dropped),
	}, true
}

// cancel asks a running build to stop; after free it does nothing.
func (s *session) cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.trtd_cancel(s.p)
	}
}

func (s *session) platform() Platform {
	var p C.trtd_platform
	C.trtd_platform_get(s.p, &p)
	return Platform{FastFP16: p.fast_fp16 != 0, FastINT8: p.fast_int8 != 0, DLACores: int(p.dla_cores)}
}

func (s *session) call0(f func(e *C.char) C.int) error {
	var e [errLen]C.char
	if f(&e[0]) != 0 {
		return errors.New(cerr(e[:]))
	}
	return nil
}

func (s *session) networkNew(flags string) error {
	f := C.CString(flags)
	defer C.free(unsafe.Pointer(f))
	return s.call0(func(e *C.char) C.int { return C.trtd_network_new(s.p, f, e, errLen) })
}

func (s *session) parse(path string) error {
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	return s.call0(func(e *C.char) C.int { return C.trtd_parse(s.p, p, e, errLen) })
}

// ParserError is one error of the ONNX parser.
type ParserError struct {
	Code, Desc, File, Func string
	Line, Node             int
	NodeName, NodeOp       string
}

func (p ParserError) String() string {
	s := fmt.Sprintf("In node %d (%s): %s: %s", p.Node, p.Func, p.Code, p.Desc)
	if p.NodeName != "" || p.NodeOp != "" {
		s += fmt.Sprintf(" [node %q, op %s]", p.NodeName, p.NodeOp)
	}
	return s
}

func (s *session) parserErrors() []ParserError {
	n := int(C.trtd_parser_nb_errors(s.p))
	out := make([]ParserError, 0, n)
	for i := 0; i < n; i++ {
		var pe C.trtd_parser_error
		C.trtd_parser_error_get(s.p, C.int(i), &pe)
		out = append(out, ParserError{
			Code: C.GoString(&pe.code[0]), Desc: C.GoString(&pe.desc[0]), File: C.GoString(&pe.file[0]), Func: C.GoString(&pe._func[0]),
			Line: int(pe.line), Node: int(pe.node), NodeName: C.GoString(&pe.node_name[0]), NodeOp: C.GoString(&pe.node_op[0]),
		})
	}
	return out
}

func tensorOut(t *C.trtd_tensor) Input {
	in := Input{Name: C.GoString(&t.name[0]), DType: C.GoString(&t.dtype[0]), IsShape: t.is_shape != 0}
	for i := 0; i < int(t.nb_dims); i++ {
		in.Dims = append(in.Dims, int64(t.dims[i]))
	}
	return in
}

func (s *session) inputs() []Input {
	n := int(C.trtd_nb_inputs(s.p))
	out := make([]Input, 0, n)
	for i := 0; i < n; i++ {
		var t C.trtd_tensor
		C.trtd_input_get(s.p, C.int(i), &t)
		out = append(out, tensorOut(&t))
	}
	return out
}

func (s *session) configCall(c Call) error {
	fn, arg := C.CString(c.Fn), C.CString(c.Arg)
	defer C.free(unsafe.Pointer(fn))
	defer C.free(unsafe.Pointer(arg))
	return s.call0(func(e *C.char) C.int { return C.trtd_config_call(s.p, fn, arg, C.int64_t(c.Value), e, errLen) })
}

func int64s(v []int64) *C.int64_t {
	if len(v) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&v[0]))
}

func (s *session) profileSet(p ProfileCall) error {
	name := C.CString(p.Input)
	defer C.free(unsafe.Pointer(name))
	return s.call0(func(e *C.char) C.int {
		return C.trtd_profile_set(s.p, name, C.int(len(p.Min)), int64s(p.Min), int64s(p.Opt), int64s(p.Max), e, errLen)
	})
}

func (s *session) progressAttach() error {
	return s.call0(func(e *C.char) C.int { return C.trtd_progress_attach(s.p, e, errLen) })
}

func (s *session) timingCacheSet(blob []byte) error {
	var p unsafe.Pointer
	if len(blob) > 0 {
		p = C.CBytes(blob)
		defer C.free(p)
	}
	return s.call0(func(e *C.char) C.int { return C.trtd_timing_cache_set(s.p, p, C.size_t(len(blob)), e, errLen) })
}

func blobBytes(b *C.trtd_blob) []byte {
	defer C.trtd_blob_free(b)
	return C.GoBytes(C.trtd_blob_data(b), C.int(C.trtd_blob_size(b)))
}

// hostBlob is memory TensorRT (or the shim) owns: the serialized engine
// stays in its IHostMemory, the only host copy, until free.
type hostBlob struct{ b *C.trtd_blob }

// Bytes views the blob's memory without copying; valid until free.
func (h *hostBlob) Bytes() []byte {
	if h == nil || h.b == nil {
		return nil
	}
	n := int(C.trtd_blob_size(h.b))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(C.trtd_blob_data(h.b)), n)
}

func (h *hostBlob) free() {
	if h != nil && h.b != nil {
		C.trtd_blob_free(h.b)
		h.b = nil
	}
}

func (s *session) build() (*hostBlob, error) {
	var b *C.trtd_blob
	var e [errLen]C.char
	if C.trtd_build(s.p, &b, &e[0], errLen) != 0 {
		return nil, errors.New(cerr(e[:]))
	}
	return &hostBlob{b: b}, nil
}

// hostTensors copies tensors to C memory (a Go struct may hold C
// pointers, not the other way round); release frees them.
func hostTensors(ts []accuracy.Tensor) (cs []C.trtd_host_tensor, release func(), err error) {
	cs = make([]C.trtd_host_tensor, len(ts))
	var ptrs []unsafe.Pointer
	release = func() {
		for _, p := range ptrs {
			C.free(p)
		}
	}
	for i, t := range ts {
		if len(t.Dims) > len(cs[i].dims) || len(t.Name) >= len(cs[i].name) || len(t.DType) >= len(cs[i].dtype) {
			release()
			return nil, func() {}, fmt.Errorf("tensor %s: name, type or rank too long for the shim", t.Name)
		}
		for k := 0; k < len(t.Name); k++ {
			cs[i].name[k] = C.char(t.Name[k])
		}
		for k := 0; k < len(t.DType); k++ {
			cs[i].dtype[k] = C.char(t.DType[k])
		}
		cs[i].nb_dims = C.int(len(t.Dims))
		for k, d := range t.Dims {
			cs[i].dims[k] = C.int64_t(d)
		}
		if len(t.Data) > 0 {
			p := C.CBytes(t.Data)
			ptrs = append(ptrs, p)
			cs[i].data = p
		}
		cs[i].bytes = C.uint64_t(len(t.Data))
	}
	return cs, release, nil
}

// calibratorSet attaches an entropy calibrator fed batches (each one
// tensor per input, in the same order) and, when cache is not empty,
// reusing that calibration cache.
func (s *session) calibratorSet(batches [][]accuracy.Tensor, cache []byte) error {
	var flat []accuracy.Tensor
	nin := 0
	if len(batches) > 0 {
		nin = len(batches[0])
	}
	for _, b := range batches {
		flat = append(flat, b...)
	}
	cs, release, err := hostTensors(flat)
	if err != nil {
		return err
	}
	defer release()
	var cp unsafe.Pointer
	if len(cache) > 0 {
		cp = C.CBytes(cache)
		defer C.free(cp)
	}
	var bp *C.trtd_host_tensor
	if len(cs) > 0 {
		bp = &cs[0]
	}
	return s.call0(func(e *C.char) C.int {
		return C.trtd_calibrator_set(s.p, bp, C.int(nin), C.int(len(batches)), cp, C.size_t(len(cache)), e, errLen)
	})
}

// calibrationCache is the cache TensorRT wrote while calibrating.
func (s *session) calibrationCache() ([]byte, error) {
	var b *C.trtd_blob
	var e [errLen]C.char
	if C.trtd_calibration_cache_get(s.p, &b, &e[0], errLen) != 0 {
		return nil, errors.New(cerr(e[:]))
	}
	return blobBytes(b), nil
}

func (s *session) timingCacheGet() ([]byte, error) {
	var b *C.trtd_blob
	var e [errLen]C.char
	if C.trtd_timing_cache_get(s.p, &b, &e[0], errLen) != 0 {
		return nil, errors.New(cerr(e[:]))
	}
	return blobBytes(b), nil
}

func (s *session) releaseBuilder() { C.trtd_release_builder(s.p) }

// validation is what trtd_validate measured.
type validation struct {
	Times           []float64
	Outputs         []Input
	DeviceMemUsed   uint64
	EngineDeviceMem uint64
	// OutputData holds each output's values after the last run, when the
	// engine ran on samples.
	OutputData []accuracy.Tensor
}

// validate runs the engine (the build's own blob, not a copy) on DLA core
// dla (-1: the GPU): on random inputs, or on samples (named and typed as
// the engine's inputs) whose outputs it then returns.
func (s *session) validate(engine *hostBlob, dla int, hints []ProfileCall, samples []accuracy.Tensor, warmup, runs int) (validation, error) {
	if engine == nil || engine.b == nil || C.trtd_blob_size(engine.b) == 0 {
		return validation{}, errors.New("empty engine")
	}
	ch := make([]C.trtd_shape_hint, len(hints))
	for i, h := range hints {
		name := C.CString(h.Input)
		C.strncpy(&ch[i].name[0], name, C.size_t(len(ch[i].name)-1))
		C.free(unsafe.Pointer(name))
		ch[i].nb_dims = C.int(len(h.Opt))
		for k, d := range h.Opt {
			if k < len(ch[i].dims) {
				ch[i].dims[k] = C.int64_t(d)
			}
		}
	}
	var hp *C.trtd_shape_hint
	if len(ch) > 0 {
		hp = &ch[0]
	}
	cs, release, err := hostTensors(samples)
	if err != nil {
		return validation{}, err
	}
	defer release()
	var sp *C.trtd_host_tensor
	if len(cs) > 0 {
		sp = &cs[0]
	}
	times := make([]C.double, runs)
	var tp *C.double
	if runs > 0 {
		tp = &times[0]
	}
	var out C.trtd_validation
	var e [errLen]C.char
	rc := C.trtd_validate(s.p, engine.b, C.int(dla), hp, C.int(len(ch)), sp, C.int(len(cs)), C.int(warmup), C.int(runs), tp, &out, &e[0], errLen)
	v := validation{DeviceMemUsed: uint64(out.device_mem_used), EngineDeviceMem: uint64(out.engine_device_mem)}
	for i := 0; i < int(out.nb_outputs); i++ {
		o := tensorOut(&out.outputs[i])
		v.Outputs = append(v.Outputs, o)
		if p := out.output_data[i]; p != nil {
			data := make([]byte, int(out.output_bytes[i]))
			copy(data, unsafe.Slice((*byte)(p), len(data)))
			C.trtd_host_free(p)
			v.OutputData = append(v.OutputData, accuracy.Tensor{Name: o.Name, DType: o.DType, Dims: o.Dims, Data: data})
		}
	}
	if rc != 0 {
		return v, errors.New(cerr(e[:]))
	}
	for _, t := range times {
		v.Times = append(v.Times, float64(t))
	}
	return v, nil
}
