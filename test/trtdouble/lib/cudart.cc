// cudart.cc: the libcudart.so.N of the TensorRT test double: the CUDA
// runtime calls the worker's shim resolves (converter/trt/shim.cc,
// trtd_cuda_load) and the ones the nvinfer double uses. "Device" memory is
// host memory, counted against a budget (TRTD_DOUBLE gpu_mem=, default
// 4 GiB like a Jetson Nano, whose GPU shares the CPU's memory), so the
// worker, the guard and the report see real numbers.
//
// Error codes are the CUDA runtime's cudaError_t values (CUDA Runtime API,
// driver_types.h; stable across releases): cudaSuccess 0,
// cudaErrorMemoryAllocation 2, cudaErrorInvalidValue 1,
// cudaErrorInsufficientDriver 35, cudaErrorInvalidDevice 101,
// cudaErrorNoDevice 100.
//
// Test-only, never shipped. See README.md.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <map>
#include <mutex>

#include "double.h"

namespace {

enum { kSuccess = 0, kInvalidValue = 1, kMemoryAllocation = 2, kInsufficientDriver = 35, kNoDevice = 100, kInvalidDevice = 101 };
// Large blocks are mapped without reserve (untouched pages cost nothing, as
// a workspace TensorRT never fills); small ones come from malloc, so
// AddressSanitizer watches them.
constexpr size_t kMapAbove = 64u << 20;

struct State {
	std::mutex mu;
	std::map<void *, size_t> blocks;
	size_t used = 0;
	size_t total() const {
		double g = trtdouble::Script::get().num("gpu_mem", 4294967296.0);
		return static_cast<size_t>(g);
	}
};
State &st() {
	static State s;
	return s;
}

// The device is unusable: "eperm" is a Jetson whose worker is not in
// group video (/dev/nvmap, /dev/nvhost-* are root:video 0660), where the
// runtime reports no device after NvRmMemInitNvmap fails; "nodriver" is a
// machine without the driver.
int blocked() {
	std::string c = trtdouble::Script::get().str("cuda", "ok");
	if (c == "eperm") {
		static bool said = false;
		if (!said) {
			said = true;
			fprintf(stderr, "NvRmMemInitNvmap failed with Permission denied\n");
		}
		return kNoDevice;
	}
	if (c == "nodriver") return kInsufficientDriver;
	return kSuccess;
}

} // namespace

extern "C" {

int cudaGetDeviceCount(int *n) {
	int e = blocked();
	*n = e == kSuccess ? 1 : 0;
	return e;
}

// CUDART_VERSION of the soname this file is built as (10.2 on JetPack 4.6,
// 12.x with TensorRT 10, 13.x with TensorRT 11).
int cudaRuntimeGetVersion(int *v) {
	*v = static_cast<int>(trtdouble::Script::get().num("cuda_runtime", TRTDOUBLE_CUDART_VERSION));
	return kSuccess;
}
int cudaDriverGetVersion(int *v) {
	*v = blocked() == kInsufficientDriver ? 0 : TRTDOUBLE_CUDART_VERSION;
	return kSuccess;
}
int cudaSetDevice(int d) {
	int e = blocked();
	if (e != kSuccess) return e;
	return d == 0 ? kSuccess : kInvalidDevice;
}

// cudaDeviceAttr values: 18 cudaDevAttrIntegrated, 75/76 compute capability.
int cudaDeviceGetAttribute(int *v, int attr, int dev) {
	if (dev != 0) return kInvalidDevice;
	switch (attr) {
	case 18: *v = 1; break; // integrated, like every Jetson
	case 75: *v = 5; break; // sm_53: Jetson Nano's Maxwell
	case 76: *v = 3; break;
	default: *v = 0;
	}
	return kSuccess;
}

// cudaDeviceProp starts with char name[256] in every CUDA release.
int cudaGetDeviceProperties_v2(void *prop, int dev) {
	if (dev != 0) return kInvalidDevice;
	snprintf(static_cast<char *>(prop), 256, "%s", "TensorRT test double (host memory)");
	return kSuccess;
}
int cudaGetDeviceProperties(void *prop, int dev) { return cudaGetDeviceProperties_v2(prop, dev); }

int cudaMemGetInfo(size_t *fr, size_t *tot) {
	int e = blocked();
	if (e != kSuccess) return e;
	State &s = st();
	std::lock_guard<std::mutex> l(s.mu);
	*tot = s.total();
	*fr = s.used < *tot ? *tot - s.used : 0;
	return kSuccess;
}

int cudaMalloc(void **p, size_t n) {
	*p = nullptr;
	int e = blocked();
	if (e != kSuccess) return e;
	State &s = st();
	std::lock_guard<std::mutex> l(s.mu);
	if (n == 0) n = 1;
	if (s.used + n > s.total()) return kMemoryAllocation;
	void *q;
	if (n > kMapAbove) {
		q = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (q == MAP_FAILED) return kMemoryAllocation;
	} else if ((q = malloc(n)) == nullptr) {
		return kMemoryAllocation;
	}
	s.blocks[q] = n;
	s.used += n;
	*p = q;
	return kSuccess;
}

int cudaFree(void *p) {
	if (p == nullptr) return kSuccess;
	State &s = st();
	std::lock_guard<std::mutex> l(s.mu);
	auto it = s.blocks.find(p);
	if (it == s.blocks.end()) return kInvalidValue;
	if (it->second > kMapAbove) munmap(p, it->second);
	else free(p);
	s.used -= it->second;
	s.blocks.erase(it);
	return kSuccess;
}

int cudaMemcpy(void *dst, void const *src, size_t n, int kind) {
	(void)kind;
	if (n > 0) memcpy(dst, src, n);
	return kSuccess;
}

struct Stream {
	int magic;
};
int cudaStreamCreate(void **s) {
	*s = new Stream{0x5743};
	return kSuccess;
}
int cudaStreamDestroy(void *s) {
	delete static_cast<Stream *>(s);
	return kSuccess;
}
int cudaStreamSynchronize(void *) { return kSuccess; }

char const *cudaGetErrorName(int e) {
	switch (e) {
	case kSuccess: return "cudaSuccess";
	case kInvalidValue: return "cudaErrorInvalidValue";
	case kMemoryAllocation: return "cudaErrorMemoryAllocation";
	case kInsufficientDriver: return "cudaErrorInsufficientDriver";
	case kNoDevice: return "cudaErrorNoDevice";
	case kInvalidDevice: return "cudaErrorInvalidDevice";
	}
	return "cudaErrorUnknown";
}
char const *cudaGetErrorString(int e) {
	switch (e) {
	case kSuccess: return "no error";
	case kInvalidValue: return "invalid argument";
	case kMemoryAllocation: return "out of memory";
	case kInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
	case kNoDevice: return "no CUDA-capable device is detected";
	case kInvalidDevice: return "invalid device ordinal";
	}
	return "unknown error";
}

} // extern "C"
