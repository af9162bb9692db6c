// shim.cc: the extern "C" side of shim.h. The CUDA runtime part is always
// compiled; the TensorRT part only with TRTD_TENSORRT (build tag tensorrt),
// against the headers of exactly one TensorRT release, guarded by
// NV_TENSORRT_MAJOR/MINOR. Nothing here is linked against TensorRT or CUDA:
// every entry point is resolved with dlsym.
#include "shim.h"

#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

static void seterr(char *err, size_t n, const char *fmt, ...) {
	if (err == nullptr || n == 0) return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

static void copystr(char *dst, size_t n, const char *src) {
	if (n == 0) return;
	snprintf(dst, n, "%s", src ? src : "");
}

// The exception guard of every shim entry point that can throw: what it
// throws becomes an error message and a failure return, never an unwind
// through the extern "C" boundary into Go.
#define TRTD_TRY try {
#define TRTD_CATCH(err, n, ret)                                                                                                            \
	}                                                                                                                                  \
	catch (std::bad_alloc const &) {                                                                                                   \
		seterr(err, n, "out of host memory (std::bad_alloc)");                                                                    \
		return ret;                                                                                                                \
	}                                                                                                                                  \
	catch (std::exception const &ex) {                                                                                                 \
		seterr(err, n, "C++ exception: %s", ex.what());                                                                            \
		return ret;                                                                                                                \
	}                                                                                                                                  \
	catch (...) {                                                                                                                      \
		seterr(err, n, "unknown C++ exception");                                                                                   \
		return ret;                                                                                                                \
	}

int trtd_guard_selftest(int kind, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	switch (kind) {
	case 1: throw std::bad_alloc();
	case 2: throw std::runtime_error("thrown on purpose");
	case 3: throw 42;
	}
	return 0;
	TRTD_CATCH(err, n, -1)
}

static void libpath(void *h, char *out, size_t n) {
	struct link_map *lm = nullptr;
	if (h != nullptr && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != nullptr && lm->l_name != nullptr) {
		copystr(out, n, lm->l_name);
	} else {
		copystr(out, n, "");
	}
}

/* ---- CUDA runtime ---------------------------------------------------------- */

// CUDA runtime ABI values (cudaDeviceAttr, cudaMemcpyKind); stable across
// CUDA releases.
enum { kAttrIntegrated = 18, kAttrCCMajor = 75, kAttrCCMinor = 76 };
enum { kMemcpyHostToDevice = 1, kMemcpyDeviceToHost = 2 };

static struct {
	void *h;
	int (*GetDeviceCount)(int *);
	int (*RuntimeGetVersion)(int *);
	int (*DriverGetVersion)(int *);
	int (*SetDevice)(int);
	int (*DeviceGetAttribute)(int *, int, int);
	int (*GetDeviceProperties)(void *, int);
	int (*MemGetInfo)(size_t *, size_t *);
	int (*Malloc)(void **, size_t);
	int (*Free)(void *);
	int (*Memcpy)(void *, const void *, size_t, int);
	int (*StreamCreate)(void **);
	int (*StreamDestroy)(void *);
	int (*StreamSynchronize)(void *);
	const char *(*GetErrorName)(int);
	const char *(*GetErrorString)(int);
} cu;

template <typename F> static bool sym(void *h, const char *name, F *f) {
	*f = reinterpret_cast<F>(dlsym(h, name));
	return *f != nullptr;
}

static const char *cuname(int e) {
	const char *s = cu.GetErrorName ? cu.GetErrorName(e) : nullptr;
	return s ? s : "cudaError";
}
static const char *custr(int e) {
	const char *s = cu.GetErrorString ? cu.GetErrorString(e) : nullptr;
	return s ? s : "unknown CUDA error";
}

int trtd_cuda_load(const char *const *candidates, int n, char *tried, size_t triedlen, char *err, size_t errlen) TRTD_NOEXCEPT {
	TRTD_TRY
	if (cu.h != nullptr) return 0;
	std::string log;
	for (int i = 0; i < n; i++) {
		void *h = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
		if (h == nullptr) {
			const char *e = dlerror();
			log += std::string(candidates[i]) + ": " + (e ? e : "not loadable") + "\n";
			continue;
		}
		bool ok = sym(h, "cudaGetDeviceCount", &cu.GetDeviceCount) && sym(h, "cudaRuntimeGetVersion", &cu.RuntimeGetVersion) &&
		          sym(h, "cudaDriverGetVersion", &cu.DriverGetVersion) && sym(h, "cudaSetDevice", &cu.SetDevice) &&
		          sym(h, "cudaDeviceGetAttribute", &cu.DeviceGetAttribute) && sym(h, "cudaMemGetInfo", &cu.MemGetInfo) &&
		          sym(h, "cudaMalloc", &cu.Malloc) && sym(h, "cudaFree", &cu.Free) && sym(h, "cudaMemcpy", &cu.Memcpy) &&
		          sym(h, "cudaStreamCreate", &cu.StreamCreate) && sym(h, "cudaStreamDestroy", &cu.StreamDestroy) &&
		          sym(h, "cudaStreamSynchronize", &cu.StreamSynchronize) && sym(h, "cudaGetErrorName", &cu.GetErrorName) &&
		          sym(h, "cudaGetErrorString", &cu.GetErrorString);
		if (!ok) {
			log += std::string(candidates[i]) + ": missing CUDA runtime entry points\n";
			dlclose(h);
			continue;
		}
		// CUDA 12+ exports the current struct layout as _v2; only the name
		// (the first member in every release) is read.
		if (!sym(h, "cudaGetDeviceProperties_v2", &cu.GetDeviceProperties)) sym(h, "cudaGetDeviceProperties", &cu.GetDeviceProperties);
		cu.h = h;
		copystr(tried, triedlen, log.c_str());
		return 0;
	}
	copystr(tried, triedlen, log.c_str());
	seterr(err, errlen, "no loadable libcudart");
	return -1;
	TRTD_CATCH(err, errlen, -1)
}

int trtd_cuda_info_get(int device, trtd_cuda_info *out, char *err, size_t errlen) TRTD_NOEXCEPT {
	TRTD_TRY
	memset(out, 0, sizeof(*out));
	if (cu.h == nullptr) {
		seterr(err, errlen, "libcudart not loaded");
		return -1;
	}
	libpath(cu.h, out->path, sizeof(out->path));
	cu.RuntimeGetVersion(&out->runtime_version);
	cu.DriverGetVersion(&out->driver_version);
	int e = cu.GetDeviceCount(&out->device_count);
	out->cuda_error = e;
	if (e != 0) {
		seterr(err, errlen, "cudaGetDeviceCount: %s: %s", cuname(e), custr(e));
		return -1;
	}
	if (device >= out->device_count) {
		seterr(err, errlen, "device %d: only %d CUDA devices", device, out->device_count);
		return -1;
	}
	if ((e = cu.SetDevice(device)) != 0) {
		out->cuda_error = e;
		seterr(err, errlen, "cudaSetDevice(%d): %s: %s", device, cuname(e), custr(e));
		return -1;
	}
	cu.DeviceGetAttribute(&out->cc_major, kAttrCCMajor, device);
	cu.DeviceGetAttribute(&out->cc_minor, kAttrCCMinor, device);
	cu.DeviceGetAttribute(&out->integrated, kAttrIntegrated, device);
	if (cu.GetDeviceProperties != nullptr) {
		// cudaDeviceProp is about 1 KiB in CUDA 12; 16 KiB leaves room for growth.
		std::vector<char> prop(16384, 0);
		if (cu.GetDeviceProperties(prop.data(), device) == 0) copystr(out->name, sizeof(out->name), prop.data());
	}
	size_t fr = 0, tot = 0;
	if ((e = cu.MemGetInfo(&fr, &tot)) != 0) {
		out->cuda_error = e;
		seterr(err, errlen, "cudaMemGetInfo: %s: %s", cuname(e), custr(e));
		return -1;
	}
	out->free = fr;
	out->total = tot;
	return 0;
	TRTD_CATCH(err, errlen, -1)
}

int trtd_cuda_malloc_test(uint64_t bytes, char *name, size_t namelen, char *msg, size_t msglen) TRTD_NOEXCEPT {
	if (cu.h == nullptr) {
		copystr(name, namelen, "not_loaded");
		copystr(msg, msglen, "libcudart not loaded");
		return -1;
	}
	void *p = nullptr;
	int e = cu.Malloc(&p, (size_t)bytes);
	copystr(name, namelen, cuname(e));
	copystr(msg, msglen, custr(e));
	if (e == 0) cu.Free(p);
	return e;
}

void trtd_host_free(void *p) TRTD_NOEXCEPT { free(p); }

/* ---- TensorRT -------------------------------------------------------------- */

#ifndef TRTD_TENSORRT

int trtd_has_tensorrt(void) TRTD_NOEXCEPT { return 0; }
void trtd_compiled_version(int *major, int *minor, int *patch) TRTD_NOEXCEPT { *major = *minor = *patch = 0; }
int trtd_can_cancel(void) TRTD_NOEXCEPT { return 0; }

#define NOTRT(err, n) seterr(err, n, "built without TensorRT headers")
int trtd_trt_load(const char *, const char *, const char *, trtd_trt_libs *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
trtd_session *trtd_session_new(const char *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return nullptr; }
void trtd_session_free(trtd_session *) TRTD_NOEXCEPT {}
int trtd_next_event(trtd_session *, trtd_event *) TRTD_NOEXCEPT { return 0; }
void trtd_cancel(trtd_session *) TRTD_NOEXCEPT {}
void trtd_platform_get(trtd_session *, trtd_platform *p) TRTD_NOEXCEPT { memset(p, 0, sizeof(*p)); }
int trtd_network_new(trtd_session *, const char *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_parse(trtd_session *, const char *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_parser_nb_errors(trtd_session *) TRTD_NOEXCEPT { return 0; }
void trtd_parser_error_get(trtd_session *, int, trtd_parser_error *o) TRTD_NOEXCEPT { memset(o, 0, sizeof(*o)); }
int trtd_nb_inputs(trtd_session *) TRTD_NOEXCEPT { return 0; }
void trtd_input_get(trtd_session *, int, trtd_tensor *o) TRTD_NOEXCEPT { memset(o, 0, sizeof(*o)); }
int trtd_config_call(trtd_session *, const char *, const char *, int64_t, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_profile_set(trtd_session *, const char *, int, const int64_t *, const int64_t *, const int64_t *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_progress_attach(trtd_session *, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_timing_cache_set(trtd_session *, const void *, size_t, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
const void *trtd_blob_data(trtd_blob *) TRTD_NOEXCEPT { return nullptr; }
size_t trtd_blob_size(trtd_blob *) TRTD_NOEXCEPT { return 0; }
void trtd_blob_free(trtd_blob *) TRTD_NOEXCEPT {}
int trtd_build(trtd_session *, trtd_blob **, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_timing_cache_get(trtd_session *, trtd_blob **, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
void trtd_release_builder(trtd_session *) TRTD_NOEXCEPT {}
int trtd_calibrator_set(trtd_session *, const trtd_host_tensor *, int, int, const void *, size_t, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_calibration_cache_get(trtd_session *, trtd_blob **, char *err, size_t n) TRTD_NOEXCEPT { NOTRT(err, n); return -1; }
int trtd_validate(trtd_session *, trtd_blob *, int, const trtd_shape_hint *, int, const trtd_host_tensor *, int, int, int, double *, trtd_validation *o, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	memset(o, 0, sizeof(*o));
	NOTRT(err, n);
	return -1;
	TRTD_CATCH(err, n, -1)
}

#else // TRTD_TENSORRT

#include <NvInfer.h>
#include <NvOnnxParser.h>

using namespace nvinfer1;

#define TRTD_AT_LEAST(ma, mi) (NV_TENSORRT_MAJOR > (ma) || (NV_TENSORRT_MAJOR == (ma) && NV_TENSORRT_MINOR >= (mi)))
// Calls that are deprecated in some releases but are the only way on the
// releases where they are compiled in.
#define TRTD_DEPRECATED_OK_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define TRTD_DEPRECATED_OK_END _Pragma("GCC diagnostic pop")

int trtd_has_tensorrt(void) TRTD_NOEXCEPT { return 1; }
void trtd_compiled_version(int *major, int *minor, int *patch) TRTD_NOEXCEPT {
	*major = NV_TENSORRT_MAJOR;
	*minor = NV_TENSORRT_MINOR;
	*patch = NV_TENSORRT_PATCH;
}
int trtd_can_cancel(void) TRTD_NOEXCEPT { return NV_TENSORRT_MAJOR >= 10; }

static struct {
	void *infer, *parser, *plugin;
	void *(*createBuilder)(void *, int32_t);
	void *(*createRuntime)(void *, int32_t);
	int32_t (*libVersion)();
	void *(*createParser)(void *, void *, int);
	int (*parserVersion)();
	bool (*initPlugins)(void *, const char *);
} g;

int trtd_trt_load(const char *nvinfer, const char *parser, const char *plugin, trtd_trt_libs *out, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	memset(out, 0, sizeof(*out));
	if (g.infer == nullptr) {
		if ((g.infer = dlopen(nvinfer, RTLD_NOW | RTLD_GLOBAL)) == nullptr) {
			seterr(err, n, "%s", dlerror());
			return -1;
		}
		if (!sym(g.infer, "createInferBuilder_INTERNAL", &g.createBuilder) || !sym(g.infer, "createInferRuntime_INTERNAL", &g.createRuntime) ||
		    !sym(g.infer, "getInferLibVersion", &g.libVersion)) {
			seterr(err, n, "%s: missing TensorRT entry points (createInferBuilder_INTERNAL, createInferRuntime_INTERNAL, getInferLibVersion)", nvinfer);
			return -1;
		}
	}
	if (g.parser == nullptr) {
		if ((g.parser = dlopen(parser, RTLD_NOW | RTLD_GLOBAL)) == nullptr) {
			seterr(err, n, "%s", dlerror());
			return -1;
		}
		if (!sym(g.parser, "createNvOnnxParser_INTERNAL", &g.createParser) || !sym(g.parser, "getNvOnnxParserVersion", &g.parserVersion)) {
			seterr(err, n, "%s: missing createNvOnnxParser_INTERNAL/getNvOnnxParserVersion", parser);
			return -1;
		}
	}
	if (g.plugin == nullptr) {
		if ((g.plugin = dlopen(plugin, RTLD_NOW | RTLD_GLOBAL)) == nullptr) {
			seterr(err, n, "%s", dlerror());
			return -1;
		}
		if (!sym(g.plugin, "initLibNvInferPlugins", &g.initPlugins)) {
			seterr(err, n, "%s: missing initLibNvInferPlugins", plugin);
			return -1;
		}
	}
	out->lib_version = g.libVersion();
	out->parser_version = g.parserVersion();
	libpath(g.infer, out->nvinfer, sizeof(out->nvinfer));
	libpath(g.parser, out->parser, sizeof(out->parser));
	libpath(g.plugin, out->plugin, sizeof(out->plugin));
	return 0;
	TRTD_CATCH(err, n, -1)
}

struct Ev {
	const char *kind;
	const char *sev;
	std::string text;
	int step, steps;
};

class Queue {
  public:
	void push(const char *kind, const char *sev, const char *text, int step, int steps) noexcept {
		try {
			std::lock_guard<std::mutex> l(mu_);
			if (q_.size() >= kCap) {
				q_.pop_front();
				dropped_++;
			}
			q_.push_back(Ev{kind, sev, text ? text : "", step, steps});
		} catch (...) {
			// Out of memory while logging: the message is lost, the build goes on.
		}
	}
	bool pop(trtd_event *ev) {
		std::lock_guard<std::mutex> l(mu_);
		if (q_.empty()) return false;
		Ev &e = q_.front();
		copystr(ev->kind, sizeof(ev->kind), e.kind);
		copystr(ev->severity, sizeof(ev->severity), e.sev);
		copystr(ev->text, sizeof(ev->text), e.text.c_str());
		ev->step = e.step;
		ev->steps = e.steps;
		ev->dropped = dropped_;
		dropped_ = 0;
		q_.pop_front();
		return true;
	}

  private:
	static constexpr size_t kCap = 50000;
	std::mutex mu_;
	std::deque<Ev> q_;
	int dropped_ = 0;
};

static const char *sevname(ILogger::Severity s) {
	switch (s) {
	case ILogger::Severity::kINTERNAL_ERROR: return "internal_error";
	case ILogger::Severity::kERROR: return "error";
	case ILogger::Severity::kWARNING: return "warning";
	case ILogger::Severity::kINFO: return "info";
	case ILogger::Severity::kVERBOSE: return "verbose";
	}
	return "unknown";
}

// Logger queues messages; Go drains the queue from its own thread (TensorRT
// calls the logger from its worker threads, which must not enter Go).
class Logger : public ILogger {
  public:
	Queue *q = nullptr;
	Severity min = Severity::kINFO;
	void log(Severity s, AsciiChar const *msg) noexcept override {
		if (s > min) return;
		q->push("log", sevname(s), msg, 0, 0);
	}
};

#if NV_TENSORRT_MAJOR >= 10
class Progress : public IProgressMonitor {
  public:
	Queue *q = nullptr;
	std::atomic<bool> *cancel = nullptr;
	void phaseStart(char const *phase, char const *parent, int32_t steps) noexcept override {
		std::string p = parent ? std::string(parent) + "/" + phase : std::string(phase);
		q->push("phase_start", "", p.c_str(), 0, steps);
	}
	bool stepComplete(char const *phase, int32_t step) noexcept override {
		q->push("step", "", phase, step, 0);
		return !cancel->load();
	}
	void phaseFinish(char const *phase) noexcept override { q->push("phase_end", "", phase, 0, 0); }
};
#endif

#if NV_TENSORRT_MAJOR < 11
// Calibrator feeds uploaded calibration batches to TensorRT's entropy
// calibration. It is the calibrator class trtexec uses
// (samples/common/sampleEngines.cpp: RndInt8Calibrator derives from
// IInt8EntropyCalibrator2 and returns batch size 1), so the cache TensorRT
// writes through it is one trtexec --calib= reads back: trtexec passes the
// file's bytes unchanged to readCalibrationCache.
class Calibrator : public IInt8EntropyCalibrator2 {
  public:
	struct Input {
		std::string name;
		size_t bytes = 0;
		std::vector<std::vector<unsigned char>> batches;
		void *dev = nullptr;
	};
	std::vector<Input> inputs;
	int nbatches = 0, next = 0;
	std::vector<unsigned char> cache_in, cache_out;
	bool wrote = false;
	Queue *q = nullptr;

	~Calibrator() override {
		for (Input &in : inputs)
			if (in.dev != nullptr) cu.Free(in.dev);
	}
	TRTD_DEPRECATED_OK_BEGIN
	int32_t getBatchSize() const noexcept override { return 1; }
	TRTD_DEPRECATED_OK_END
	bool getBatch(void *bindings[], char const *names[], int32_t nb) noexcept override {
		if (next >= nbatches) return false;
		for (int32_t i = 0; i < nb; i++) {
			Input *in = nullptr;
			for (Input &x : inputs)
				if (x.name == names[i]) in = &x;
			if (in == nullptr) {
				q->push("log", "error", (std::string("calibration: no data for input ") + names[i]).c_str(), 0, 0);
				return false;
			}
			if (in->dev == nullptr && cu.Malloc(&in->dev, in->bytes) != 0) {
				q->push("log", "error", "calibration: cudaMalloc failed", 0, 0);
				return false;
			}
			if (cu.Memcpy(in->dev, in->batches[next].data(), in->bytes, kMemcpyHostToDevice) != 0) return false;
			bindings[i] = in->dev;
		}
		next++;
		return true;
	}
	void const *readCalibrationCache(std::size_t &length) noexcept override {
		length = cache_in.size();
		return cache_in.empty() ? nullptr : cache_in.data();
	}
	void writeCalibrationCache(void const *ptr, std::size_t length) noexcept override {
		try {
			const unsigned char *p = static_cast<const unsigned char *>(ptr);
			cache_out.assign(p, p + length);
			wrote = true;
		} catch (...) {
			q->push("log", "error", "calibration: out of host memory for the cache", 0, 0);
		}
	}
};
#endif

struct trtd_session {
	Queue q;
	Logger logger;
	std::atomic<bool> cancel{false};
#if NV_TENSORRT_MAJOR >= 10
	Progress progress;
#endif
	IBuilder *builder = nullptr;
	INetworkDefinition *network = nullptr;
	nvonnxparser::IParser *parser = nullptr;
	IBuilderConfig *config = nullptr;
	IOptimizationProfile *profile = nullptr;
	ITimingCache *cache = nullptr;
#if NV_TENSORRT_MAJOR < 11
	Calibrator *calib = nullptr;
#endif
};

// A blob is TensorRT's IHostMemory (the engine, the timing cache) or bytes
// the shim holds (the calibration cache).
struct trtd_blob {
	IHostMemory *mem;
	std::vector<unsigned char> bytes;
};
const void *trtd_blob_data(trtd_blob *b) TRTD_NOEXCEPT { return b->mem ? b->mem->data() : b->bytes.data(); }
size_t trtd_blob_size(trtd_blob *b) TRTD_NOEXCEPT { return b->mem ? b->mem->size() : b->bytes.size(); }
void trtd_blob_free(trtd_blob *b) TRTD_NOEXCEPT {
	if (b == nullptr) return;
	delete b->mem;
	delete b;
}

trtd_session *trtd_session_new(const char *min_severity, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	if (g.createBuilder == nullptr) {
		seterr(err, n, "TensorRT libraries not loaded");
		return nullptr;
	}
	trtd_session *s = new trtd_session();
	s->logger.q = &s->q;
	std::string m = min_severity ? min_severity : "info";
	s->logger.min = m == "error" ? ILogger::Severity::kERROR
	                : m == "warning" ? ILogger::Severity::kWARNING
	                : m == "verbose" ? ILogger::Severity::kVERBOSE
	                                 : ILogger::Severity::kINFO;
#if NV_TENSORRT_MAJOR >= 10
	s->progress.q = &s->q;
	s->progress.cancel = &s->cancel;
#endif
	if (!g.initPlugins(&s->logger, "")) s->q.push("log", "warning", "initLibNvInferPlugins failed; models that need TensorRT's plugins will not parse", 0, 0);
	s->builder = static_cast<IBuilder *>(g.createBuilder(&s->logger, NV_TENSORRT_VERSION));
	if (s->builder == nullptr) {
		seterr(err, n, "createInferBuilder failed (see the TensorRT log)");
		return s; // the caller reads the log, then frees
	}
	s->config = s->builder->createBuilderConfig();
	return s;
	TRTD_CATCH(err, n, nullptr)
}

void trtd_release_builder(trtd_session *s) TRTD_NOEXCEPT {
	if (s == nullptr) return;
	delete s->cache;
	s->cache = nullptr;
	delete s->parser;
	s->parser = nullptr;
	delete s->network;
	s->network = nullptr;
	delete s->config;
	s->config = nullptr;
	delete s->builder;
	s->builder = nullptr;
	s->profile = nullptr; // owned by the builder
#if NV_TENSORRT_MAJOR < 11
	delete s->calib; // after the config that referenced it
	s->calib = nullptr;
#endif
}

void trtd_session_free(trtd_session *s) TRTD_NOEXCEPT {
	if (s == nullptr) return;
	trtd_release_builder(s);
	delete s;
}

int trtd_next_event(trtd_session *s, trtd_event *ev) TRTD_NOEXCEPT { return s->q.pop(ev) ? 1 : 0; }
void trtd_cancel(trtd_session *s) TRTD_NOEXCEPT { s->cancel.store(true); }

void trtd_platform_get(trtd_session *s, trtd_platform *p) TRTD_NOEXCEPT {
	memset(p, 0, sizeof(*p));
	if (s->builder == nullptr) return;
#if NV_TENSORRT_MAJOR < 11
	TRTD_DEPRECATED_OK_BEGIN
	p->fast_fp16 = s->builder->platformHasFastFp16();
	p->fast_int8 = s->builder->platformHasFastInt8();
	TRTD_DEPRECATED_OK_END
#endif
	p->dla_cores = s->builder->getNbDLACores();
}

int trtd_network_new(trtd_session *s, const char *flags, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	if (s->builder == nullptr) {
		seterr(err, n, "no builder");
		return -1;
	}
	uint32_t f = 0;
	std::string fl = flags ? flags : "";
	if (fl == "kEXPLICIT_BATCH") {
#if NV_TENSORRT_MAJOR < 10
		f = 1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
#else
		seterr(err, n, "kEXPLICIT_BATCH is not used from TensorRT 10.0");
		return -1;
#endif
	} else if (!fl.empty()) {
		seterr(err, n, "unknown network flag %s", fl.c_str());
		return -1;
	}
	s->network = s->builder->createNetworkV2(f);
	if (s->network == nullptr) {
		seterr(err, n, "createNetworkV2 failed");
		return -1;
	}
	s->parser = static_cast<nvonnxparser::IParser *>(g.createParser(s->network, &s->logger, NV_ONNX_PARSER_VERSION));
	if (s->parser == nullptr) {
		seterr(err, n, "createNvOnnxParser failed");
		return -1;
	}
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_parse(trtd_session *s, const char *path, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	if (!s->parser->parseFromFile(path, static_cast<int>(ILogger::Severity::kWARNING))) {
		seterr(err, n, "the ONNX parser rejected %s", path);
		return -1;
	}
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_parser_nb_errors(trtd_session *s) TRTD_NOEXCEPT { return s->parser ? s->parser->getNbErrors() : 0; }

// The parser's error codes by name: NvOnnxParser.h's ErrorCode of the
// release compiled against (kSUCCESS..kUNSUPPORTED_NODE in 8.x, plus
// kUNSUPPORTED_NODE_ATTR/_INPUT/_DATATYPE/_DYNAMIC/_SHAPE and kREFIT_FAILED
// from 10.0). No default: -Wswitch (-Wall) makes a release with a code this
// switch lacks fail `make check-trt`. A newer library's code beyond the
// headers is reported by number.
static const char *parsercode(nvonnxparser::ErrorCode c, char *buf, size_t n) {
	switch (c) {
	case nvonnxparser::ErrorCode::kSUCCESS: return "SUCCESS";
	case nvonnxparser::ErrorCode::kINTERNAL_ERROR: return "INTERNAL_ERROR";
	case nvonnxparser::ErrorCode::kMEM_ALLOC_FAILED: return "MEM_ALLOC_FAILED";
	case nvonnxparser::ErrorCode::kMODEL_DESERIALIZE_FAILED: return "MODEL_DESERIALIZE_FAILED";
	case nvonnxparser::ErrorCode::kINVALID_VALUE: return "INVALID_VALUE";
	case nvonnxparser::ErrorCode::kINVALID_GRAPH: return "INVALID_GRAPH";
	case nvonnxparser::ErrorCode::kINVALID_NODE: return "INVALID_NODE";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_GRAPH: return "UNSUPPORTED_GRAPH";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE: return "UNSUPPORTED_NODE";
#if NV_TENSORRT_MAJOR >= 10
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE_ATTR: return "UNSUPPORTED_NODE_ATTR";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE_INPUT: return "UNSUPPORTED_NODE_INPUT";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE_DATATYPE: return "UNSUPPORTED_NODE_DATATYPE";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE_DYNAMIC: return "UNSUPPORTED_NODE_DYNAMIC";
	case nvonnxparser::ErrorCode::kUNSUPPORTED_NODE_SHAPE: return "UNSUPPORTED_NODE_SHAPE";
	case nvonnxparser::ErrorCode::kREFIT_FAILED: return "REFIT_FAILED";
#endif
	}
	snprintf(buf, n, "ErrorCode(%d)", static_cast<int>(c));
	return buf;
}

void trtd_parser_error_get(trtd_session *s, int i, trtd_parser_error *o) TRTD_NOEXCEPT {
	memset(o, 0, sizeof(*o));
	nvonnxparser::IParserError const *e = s->parser->getError(i);
	if (e == nullptr) return;
	char code[32];
	copystr(o->code, sizeof(o->code), parsercode(e->code(), code, sizeof(code)));
	copystr(o->desc, sizeof(o->desc), e->desc());
	copystr(o->file, sizeof(o->file), e->file());
	o->line = e->line();
	copystr(o->func, sizeof(o->func), e->func());
	o->node = e->node();
#if NV_TENSORRT_MAJOR >= 10
	copystr(o->node_name, sizeof(o->node_name), e->nodeName());
	copystr(o->node_op, sizeof(o->node_op), e->nodeOperator());
#endif
}

static const char *dtypename(DataType t) {
	switch (t) {
	case DataType::kFLOAT: return "float32";
	case DataType::kHALF: return "float16";
	case DataType::kINT8: return "int8";
	case DataType::kINT32: return "int32";
	case DataType::kBOOL: return "bool";
#if TRTD_AT_LEAST(8, 5)
	case DataType::kUINT8: return "uint8";
#endif
#if TRTD_AT_LEAST(8, 6)
	case DataType::kFP8: return "fp8";
#endif
#if NV_TENSORRT_MAJOR >= 10
	case DataType::kBF16: return "bfloat16";
	case DataType::kINT64: return "int64";
	case DataType::kINT4: return "int4";
#endif
	default: return "unknown";
	}
}

static size_t dtypesize(DataType t) {
	switch (t) {
	case DataType::kFLOAT:
	case DataType::kINT32: return 4;
	case DataType::kHALF: return 2;
#if NV_TENSORRT_MAJOR >= 10
	case DataType::kBF16: return 2;
	case DataType::kINT64: return 8;
#endif
	default: return 1; // int8, bool, uint8, fp8; packed 4-bit types over-allocate
	}
}

static void dimsout(Dims const &d, trtd_tensor *o) {
	o->nb_dims = d.nbDims < TRTD_MAX_DIMS ? d.nbDims : TRTD_MAX_DIMS;
	for (int i = 0; i < o->nb_dims; i++) o->dims[i] = d.d[i];
}

int trtd_nb_inputs(trtd_session *s) TRTD_NOEXCEPT { return s->network ? s->network->getNbInputs() : 0; }

void trtd_input_get(trtd_session *s, int i, trtd_tensor *o) TRTD_NOEXCEPT {
	memset(o, 0, sizeof(*o));
	ITensor *t = s->network->getInput(i);
	copystr(o->name, sizeof(o->name), t->getName());
	copystr(o->dtype, sizeof(o->dtype), dtypename(t->getType()));
	dimsout(t->getDimensions(), o);
	o->is_shape = t->isShapeTensor() ? 1 : 0;
}

static bool flagbyname(const std::string &n, BuilderFlag *f) {
#if NV_TENSORRT_MAJOR < 11
	if (n == "kFP16") return *f = BuilderFlag::kFP16, true;
	if (n == "kINT8") return *f = BuilderFlag::kINT8, true;
#endif
	if (n == "kTF32") return *f = BuilderFlag::kTF32, true;
	if (n == "kGPU_FALLBACK") return *f = BuilderFlag::kGPU_FALLBACK, true;
	return false;
}

static bool tacticbyname(const std::string &n, TacticSource *t) {
#if NV_TENSORRT_MAJOR < 10
	if (n == "kCUBLAS") return *t = TacticSource::kCUBLAS, true;
	if (n == "kCUBLAS_LT") return *t = TacticSource::kCUBLAS_LT, true;
	if (n == "kCUDNN") return *t = TacticSource::kCUDNN, true;
#endif
#if TRTD_AT_LEAST(8, 4)
	if (n == "kEDGE_MASK_CONVOLUTIONS") return *t = TacticSource::kEDGE_MASK_CONVOLUTIONS, true;
#endif
#if TRTD_AT_LEAST(8, 5)
	if (n == "kJIT_CONVOLUTIONS") return *t = TacticSource::kJIT_CONVOLUTIONS, true;
#endif
	return false;
}

int trtd_config_call(trtd_session *s, const char *fnc, const char *argc, int64_t value, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	if (s->config == nullptr) {
		seterr(err, n, "no builder config");
		return -1;
	}
	std::string fn = fnc ? fnc : "", arg = argc ? argc : "";
	if (fn == "setFlag" || fn == "clearFlag") {
		BuilderFlag f;
		if (!flagbyname(arg, &f)) {
			seterr(err, n, "%s(%s): no such builder flag in TensorRT %d.%d", fn.c_str(), arg.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR);
			return -1;
		}
		if (fn == "setFlag") s->config->setFlag(f);
		else s->config->clearFlag(f);
		return 0;
	}
	if (fn == "setMaxWorkspaceSize") {
#if !TRTD_AT_LEAST(8, 4)
		TRTD_DEPRECATED_OK_BEGIN
		s->config->setMaxWorkspaceSize(static_cast<size_t>(value));
		TRTD_DEPRECATED_OK_END
		return 0;
#endif
	}
	if (fn == "setMemoryPoolLimit") {
#if TRTD_AT_LEAST(8, 4)
		MemoryPoolType p;
		if (arg == "kWORKSPACE") p = MemoryPoolType::kWORKSPACE;
#if TRTD_AT_LEAST(8, 6)
		else if (arg == "kTACTIC_DRAM") p = MemoryPoolType::kTACTIC_DRAM;
#endif
		else {
			seterr(err, n, "setMemoryPoolLimit(%s): no such pool in TensorRT %d.%d", arg.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR);
			return -1;
		}
		s->config->setMemoryPoolLimit(p, static_cast<size_t>(value));
		return 0;
#endif
	}
	if (fn == "setTacticSources") {
		uint32_t mask = 0;
		size_t start = 0;
		while (start < arg.size()) {
			size_t bar = arg.find('|', start);
			std::string name = arg.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
			TacticSource t;
			if (!tacticbyname(name, &t)) {
				seterr(err, n, "setTacticSources: no tactic source %s in TensorRT %d.%d", name.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR);
				return -1;
			}
			mask |= 1U << static_cast<uint32_t>(t);
			if (bar == std::string::npos) break;
			start = bar + 1;
		}
		if (!s->config->setTacticSources(mask)) {
			seterr(err, n, "setTacticSources(%s) was refused", arg.c_str());
			return -1;
		}
		return 0;
	}
	if (fn == "setBuilderOptimizationLevel") {
#if TRTD_AT_LEAST(8, 6)
		s->config->setBuilderOptimizationLevel(static_cast<int32_t>(value));
		return 0;
#endif
	}
	if (fn == "setMaxAuxStreams") {
#if TRTD_AT_LEAST(8, 6)
		s->config->setMaxAuxStreams(static_cast<int32_t>(value));
		return 0;
#endif
	}
	if (fn == "setDefaultDeviceType") {
		if (arg == "kDLA") s->config->setDefaultDeviceType(DeviceType::kDLA);
		else if (arg == "kGPU") s->config->setDefaultDeviceType(DeviceType::kGPU);
		else {
			seterr(err, n, "setDefaultDeviceType(%s): unknown device type", arg.c_str());
			return -1;
		}
		return 0;
	}
	if (fn == "setDLACore") {
		s->config->setDLACore(static_cast<int32_t>(value));
		return 0;
	}
	seterr(err, n, "%s: not available in TensorRT %d.%d", fn.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR);
	return -1;
	TRTD_CATCH(err, n, -1)
}

int trtd_profile_set(trtd_session *s, const char *input, int nb, const int64_t *mn, const int64_t *op, const int64_t *mx, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	if (nb < 0 || nb > Dims::MAX_DIMS) {
		seterr(err, n, "input %s: rank %d", input, nb);
		return -1;
	}
	if (s->profile == nullptr) s->profile = s->builder->createOptimizationProfile();
	const int64_t *v[3] = {mn, op, mx};
	const OptProfileSelector sel[3] = {OptProfileSelector::kMIN, OptProfileSelector::kOPT, OptProfileSelector::kMAX};
	bool shape = false;
	for (int i = 0; s->network != nullptr && i < s->network->getNbInputs(); i++) {
		ITensor *t = s->network->getInput(i);
		if (strcmp(t->getName(), input) == 0) shape = t->isShapeTensor();
	}
	if (shape) {
		// A shape tensor's profile is its values: setShapeValues (int32) in
		// 8.x and 10.x, setShapeValuesV2 (int64) in 11.x, where the int32
		// call is gone.
		for (int k = 0; k < 3; k++) {
#if NV_TENSORRT_MAJOR >= 11
			bool ok = s->profile->setShapeValuesV2(input, sel[k], v[k], nb);
#else
			std::vector<int32_t> vals(v[k], v[k] + nb);
			bool ok = s->profile->setShapeValues(input, sel[k], vals.data(), nb);
#endif
			if (!ok) {
				seterr(err, n, "setShapeValues(%s) was refused (see the TensorRT log)", input);
				return -1;
			}
		}
		return 0;
	}
	for (int k = 0; k < 3; k++) {
		Dims d{};
		d.nbDims = nb;
		for (int i = 0; i < nb; i++) d.d[i] = static_cast<decltype(d.d[0] + 0)>(v[k][i]);
		if (!s->profile->setDimensions(input, sel[k], d)) {
			seterr(err, n, "setDimensions(%s) was refused (see the TensorRT log)", input);
			return -1;
		}
	}
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_progress_attach(trtd_session *s, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	(void)s;
	(void)err;
	(void)n;
#if NV_TENSORRT_MAJOR >= 10
	s->config->setProgressMonitor(&s->progress);
	return 0;
#else
	seterr(err, n, "IProgressMonitor exists from TensorRT 10.0");
	return -1;
#endif
	TRTD_CATCH(err, n, -1)
}

// A retry (the first cache refused) replaces the cache: the refused one is
// deleted, never leaked; the one in use lives until the builder is released
// (IBuilderConfig::setTimingCache: the cache must outlive the build).
int trtd_timing_cache_set(trtd_session *s, const void *blob, size_t size, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	ITimingCache *c = s->config->createTimingCache(blob, size);
	if (c == nullptr) {
		seterr(err, n, "createTimingCache failed");
		return -1;
	}
	if (!s->config->setTimingCache(*c, false)) {
		delete c;
		seterr(err, n, "setTimingCache refused the cache (written by another TensorRT or GPU?)");
		return -1;
	}
	delete s->cache;
	s->cache = c;
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_build(trtd_session *s, trtd_blob **out, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	*out = nullptr;
	if (s->profile != nullptr && s->config->addOptimizationProfile(s->profile) < 0) {
		seterr(err, n, "addOptimizationProfile failed (see the TensorRT log)");
		return -1;
	}
#if NV_TENSORRT_MAJOR < 11
	// Calibrating a network with runtime dimensions needs a calibration
	// profile; TensorRT calibrates at its kOPT dims (NvInfer.h,
	// setCalibrationProfile).
	if (s->calib != nullptr && s->profile != nullptr && !s->config->setCalibrationProfile(s->profile)) {
		seterr(err, n, "setCalibrationProfile failed (see the TensorRT log)");
		return -1;
	}
#endif
	IHostMemory *m = s->builder->buildSerializedNetwork(*s->network, *s->config);
	if (m == nullptr) {
		seterr(err, n, s->cancel.load() ? "build canceled" : "buildSerializedNetwork returned no engine (see the TensorRT log)");
		return -1;
	}
	*out = new trtd_blob{m, {}};
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_timing_cache_get(trtd_session *s, trtd_blob **out, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	*out = nullptr;
	ITimingCache const *c = s->config ? s->config->getTimingCache() : nullptr;
	if (c == nullptr) {
		seterr(err, n, "no timing cache");
		return -1;
	}
	IHostMemory *m = c->serialize();
	if (m == nullptr) {
		seterr(err, n, "timing cache serialize failed");
		return -1;
	}
	*out = new trtd_blob{m, {}};
	return 0;
	TRTD_CATCH(err, n, -1)
}

int trtd_calibrator_set(trtd_session *s, const trtd_host_tensor *batches, int nin, int nb, const void *cache, size_t csize, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
#if NV_TENSORRT_MAJOR >= 11
	(void)s, (void)batches, (void)nin, (void)nb, (void)cache, (void)csize;
	seterr(err, n, "TensorRT %d.%d has no int8 calibrator (networks are strongly typed)", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR);
	return -1;
#else
	if (s->config == nullptr || (nb <= 0 && csize == 0) || (nb > 0 && nin <= 0)) {
		seterr(err, n, "calibration: no config, inputs or batches");
		return -1;
	}
	Calibrator *c = new Calibrator();
	c->q = &s->q;
	c->nbatches = nb;
	for (int i = 0; i < nin; i++) {
		Calibrator::Input in;
		in.name = batches[i].name;
		in.bytes = static_cast<size_t>(batches[i].bytes);
		for (int b = 0; b < nb; b++) {
			const trtd_host_tensor &t = batches[b * nin + i];
			if (strcmp(t.name, batches[i].name) != 0 || t.bytes != batches[i].bytes) {
				seterr(err, n, "calibration batch %d: input %s is %llu bytes, batch 1 had %s of %llu", b + 1, t.name,
				       static_cast<unsigned long long>(t.bytes), batches[i].name, static_cast<unsigned long long>(batches[i].bytes));
				delete c;
				return -1;
			}
			const unsigned char *p = static_cast<const unsigned char *>(t.data);
			in.batches.emplace_back(p, p + t.bytes);
		}
		c->inputs.push_back(std::move(in));
	}
	if (csize > 0) {
		const unsigned char *p = static_cast<const unsigned char *>(cache);
		c->cache_in.assign(p, p + csize);
	}
	TRTD_DEPRECATED_OK_BEGIN
	s->config->setInt8Calibrator(c);
	TRTD_DEPRECATED_OK_END
	delete s->calib;
	s->calib = c;
	return 0;
#endif
	TRTD_CATCH(err, n, -1)
}

int trtd_calibration_cache_get(trtd_session *s, trtd_blob **out, char *err, size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	*out = nullptr;
#if NV_TENSORRT_MAJOR >= 11
	(void)s;
#else
	if (s->calib != nullptr && s->calib->wrote) {
		*out = new trtd_blob{nullptr, s->calib->cache_out};
		return 0;
	}
#endif
	seterr(err, n, "TensorRT wrote no calibration cache");
	return -1;
	TRTD_CATCH(err, n, -1)
}

// Random input values: floats uniform in [-1, 1); integer and boolean inputs
// are zero (they are often indices, which must stay in range).
static void fillrandom(std::vector<unsigned char> &buf, DataType t, std::mt19937 &rng) {
	std::uniform_real_distribution<float> u(-1.f, 1.f);
	if (t == DataType::kFLOAT) {
		float *f = reinterpret_cast<float *>(buf.data());
		for (size_t i = 0; i < buf.size() / 4; i++) f[i] = u(rng);
	} else if (t == DataType::kHALF) {
		uint16_t *h = reinterpret_cast<uint16_t *>(buf.data());
		for (size_t i = 0; i < buf.size() / 2; i++) {
			// |x| < 1: sign, exponent 14 (0.5..1) or 13, 10-bit mantissa.
			float x = u(rng);
			uint16_t sign = x < 0 ? 0x8000 : 0;
			float a = std::fabs(x);
			int e = a >= 0.5f ? 14 : 13;
			float m = a / std::ldexp(1.f, e - 15) - 1.f;
			if (m < 0) m = 0;
			h[i] = static_cast<uint16_t>(sign | (e << 10) | (static_cast<int>(m * 1024) & 0x3ff));
		}
	}
}

static int64_t volume(const int64_t *d, int nb) {
	int64_t v = 1;
	for (int i = 0; i < nb; i++) v *= d[i] > 0 ? d[i] : 1;
	return v;
}

static const trtd_shape_hint *findhint(const trtd_shape_hint *h, int n, const char *name) {
	for (int i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0) return &h[i];
	return nullptr;
}

// The exact element count (a 0 dim makes an empty tensor; volume() rounds
// dims up to 1 for allocation).
static int64_t elements(const int64_t *d, int nb) {
	int64_t v = 1;
	for (int i = 0; i < nb; i++) v *= d[i] > 0 ? d[i] : 0;
	return v;
}

static const trtd_host_tensor *findsample(const trtd_host_tensor *h, int n, const char *name) {
	for (int i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0) return &h[i];
	return nullptr;
}

static std::string dimstr(const int64_t *d, int nb) {
	std::string s = "[";
	for (int i = 0; i < nb; i++) s += (i ? " " : "") + std::to_string(d[i]);
	return s + "]";
}

struct Buffers {
	std::vector<void *> ptrs;
	~Buffers() {
		for (void *p : ptrs)
			if (p) cu.Free(p);
	}
};

int trtd_validate(trtd_session *s, trtd_blob *engine, int dla_core, const trtd_shape_hint *hints, int nhints,
                  const trtd_host_tensor *samples, int nsamples, int warmup, int runs, double *times, trtd_validation *out, char *err,
                  size_t n) TRTD_NOEXCEPT {
	TRTD_TRY
	memset(out, 0, sizeof(*out));
	if (cu.h == nullptr) {
		seterr(err, n, "libcudart not loaded");
		return -1;
	}
	size_t free0 = 0, total = 0, free1 = 0;
	cu.MemGetInfo(&free0, &total);
	IRuntime *rt = static_cast<IRuntime *>(g.createRuntime(&s->logger, NV_TENSORRT_VERSION));
	if (rt == nullptr) {
		seterr(err, n, "createInferRuntime failed");
		return -1;
	}
	// A DLA engine deserializes onto the runtime's DLA core, which must be
	// set first (IRuntime::setDLACore, NvInferRuntime.h).
	if (dla_core >= 0) rt->setDLACore(dla_core);
	ICudaEngine *e = rt->deserializeCudaEngine(trtd_blob_data(engine), trtd_blob_size(engine));
	if (e == nullptr) {
		delete rt;
		seterr(err, n, "deserializeCudaEngine failed: the engine cannot be loaded (see the TensorRT log)");
		return -1;
	}
	IExecutionContext *ctx = e->createExecutionContext();
	if (ctx == nullptr) {
		delete e;
		delete rt;
		seterr(err, n, "createExecutionContext failed (out of memory?)");
		return -1;
	}
#if NV_TENSORRT_MAJOR >= 11
	out->engine_device_mem = e->getDeviceMemorySizeV2();
#else
	TRTD_DEPRECATED_OK_BEGIN
	out->engine_device_mem = e->getDeviceMemorySize();
	TRTD_DEPRECATED_OK_END
#endif
	std::mt19937 rng(42);
	int rc = 0;
	void *stream = nullptr;
	{
		Buffers bufs;
		std::vector<std::string> names;
		std::vector<bool> isin;
		std::vector<DataType> types;
		std::vector<int> outidx; // the I/O index of out->outputs[k]
		std::vector<bool> isshape;
		std::vector<std::vector<unsigned char>> hostvals; // shape-tensor inputs' values (host memory)
#if TRTD_AT_LEAST(8, 5)
		int nio = e->getNbIOTensors();
		for (int i = 0; i < nio; i++) {
			const char *name = e->getIOTensorName(i);
			names.push_back(name);
			isin.push_back(e->getTensorIOMode(name) == TensorIOMode::kINPUT);
			types.push_back(e->getTensorDataType(name));
			isshape.push_back(e->isShapeInferenceIO(name));
		}
#else
		int nio = e->getNbBindings();
		for (int i = 0; i < nio; i++) {
			names.push_back(e->getBindingName(i));
			isin.push_back(e->bindingIsInput(i));
			types.push_back(e->getBindingDataType(i));
			isshape.push_back(e->isShapeBinding(i));
		}
#endif
		hostvals.resize(nio);
		// Shape-tensor inputs first: their values (from the sample, else the
		// hint's dims read as values) go in host memory, set before any
		// shape is inferred: setInputShapeBinding up to 8.4,
		// setInputTensorAddress from 8.6 (setTensorAddress in 8.5).
		for (int i = 0; i < nio && rc == 0; i++) {
			if (!isin[i] || !isshape[i]) continue;
			const trtd_host_tensor *smp = nsamples > 0 ? findsample(samples, nsamples, names[i].c_str()) : nullptr;
			const trtd_shape_hint *h = findhint(hints, nhints, names[i].c_str());
			size_t es = dtypesize(types[i]);
			std::vector<unsigned char> &hv = hostvals[i];
			if (smp != nullptr) {
				const unsigned char *p = static_cast<const unsigned char *>(smp->data);
				hv.assign(p, p + smp->bytes);
			} else if (h != nullptr) {
				hv.resize(static_cast<size_t>(h->nb_dims) * es);
				for (int k = 0; k < h->nb_dims; k++) {
					if (es == 8) reinterpret_cast<int64_t *>(hv.data())[k] = h->dims[k];
					else reinterpret_cast<int32_t *>(hv.data())[k] = static_cast<int32_t>(h->dims[k]);
				}
			} else {
				seterr(err, n, "shape-tensor input %s has no values to validate with", names[i].c_str());
				rc = -1;
				break;
			}
			if (hv.empty()) hv.resize(es);
#if TRTD_AT_LEAST(8, 6)
			bool ok = ctx->setInputTensorAddress(names[i].c_str(), hv.data());
#elif TRTD_AT_LEAST(8, 5)
			bool ok = ctx->setTensorAddress(names[i].c_str(), hv.data());
#else
			bool ok = ctx->setInputShapeBinding(i, reinterpret_cast<const int32_t *>(hv.data()));
#endif
			if (!ok) {
				seterr(err, n, "shape-tensor input %s: values refused by the engine", names[i].c_str());
				rc = -1;
			}
		}
		// Input shapes next: output shapes follow from them.
		for (int i = 0; i < nio && rc == 0; i++) {
			if (!isin[i]) continue;
#if TRTD_AT_LEAST(8, 5)
			Dims d = e->getTensorShape(names[i].c_str());
#else
			Dims d = e->getBindingDimensions(i);
#endif
			bool dyn = false;
			for (int k = 0; k < d.nbDims; k++) dyn = dyn || d.d[k] < 0;
			const trtd_host_tensor *smp = nullptr;
			if (nsamples > 0) {
				smp = findsample(samples, nsamples, names[i].c_str());
				if (smp == nullptr) {
					seterr(err, n, "input %s has no sample", names[i].c_str());
					rc = -1;
					break;
				}
				if (smp->nb_dims != d.nbDims || smp->nb_dims > TRTD_MAX_DIMS) {
					seterr(err, n, "input %s: the sample has rank %d, the engine %d", names[i].c_str(), smp->nb_dims, d.nbDims);
					rc = -1;
					break;
				}
				if (!dyn) {
					for (int k = 0; k < d.nbDims; k++) {
						if (d.d[k] != smp->dims[k]) {
							trtd_tensor et{};
							dimsout(d, &et);
							seterr(err, n, "input %s: the sample's shape %s is not the engine's %s", names[i].c_str(),
							       dimstr(smp->dims, smp->nb_dims).c_str(), dimstr(et.dims, et.nb_dims).c_str());
							rc = -1;
						}
					}
					if (rc != 0) break;
				}
			}
			if (!dyn) continue;
			const trtd_shape_hint *h = findhint(hints, nhints, names[i].c_str());
			if (smp != nullptr) {
				d.nbDims = smp->nb_dims;
				for (int k = 0; k < smp->nb_dims; k++) d.d[k] = static_cast<decltype(d.d[0] + 0)>(smp->dims[k]);
			} else if (h == nullptr) {
				seterr(err, n, "input %s is dynamic and has no shape to validate with", names[i].c_str());
				rc = -1;
				break;
			} else {
				d.nbDims = h->nb_dims;
				for (int k = 0; k < h->nb_dims; k++) d.d[k] = static_cast<decltype(d.d[0] + 0)>(h->dims[k]);
			}
#if TRTD_AT_LEAST(8, 5)
			bool ok = ctx->setInputShape(names[i].c_str(), d);
#else
			bool ok = ctx->setBindingDimensions(i, d);
#endif
			if (!ok) {
				seterr(err, n, "input %s: shape refused by the engine", names[i].c_str());
				rc = -1;
			}
		}
		bufs.ptrs.assign(nio, nullptr);
		for (int i = 0; i < nio && rc == 0; i++) {
			trtd_tensor t{};
#if TRTD_AT_LEAST(8, 5)
			dimsout(ctx->getTensorShape(names[i].c_str()), &t);
#else
			dimsout(ctx->getBindingDimensions(i), &t);
#endif
			copystr(t.name, sizeof(t.name), names[i].c_str());
			copystr(t.dtype, sizeof(t.dtype), dtypename(types[i]));
			for (int k = 0; k < t.nb_dims; k++) {
				if (t.dims[k] < 0) {
					seterr(err, n, "%s %s has a data-dependent shape; validation cannot size it", isin[i] ? "input" : "output", names[i].c_str());
					rc = -1;
				}
			}
			if (rc != 0) break;
			size_t bytes = static_cast<size_t>(volume(t.dims, t.nb_dims)) * dtypesize(types[i]);
			if (bytes == 0) bytes = 1;
			int ce = cu.Malloc(&bufs.ptrs[i], bytes);
			if (ce != 0) {
				seterr(err, n, "cudaMalloc(%zu) for %s: %s: %s", bytes, names[i].c_str(), cuname(ce), custr(ce));
				rc = -1;
				break;
			}
			if (isin[i] && nsamples > 0) {
				const trtd_host_tensor *smp = findsample(samples, nsamples, names[i].c_str());
				size_t want = static_cast<size_t>(elements(t.dims, t.nb_dims)) * dtypesize(types[i]);
				if (strcmp(smp->dtype, t.dtype) != 0 || smp->bytes != want) {
					seterr(err, n, "input %s: the sample is %s of %llu bytes, the engine wants %s of %zu bytes", names[i].c_str(), smp->dtype,
					       static_cast<unsigned long long>(smp->bytes), t.dtype, want);
					rc = -1;
					break;
				}
				if (want > 0 && (ce = cu.Memcpy(bufs.ptrs[i], smp->data, want, kMemcpyHostToDevice)) != 0) {
					seterr(err, n, "cudaMemcpy of input %s: %s: %s", names[i].c_str(), cuname(ce), custr(ce));
					rc = -1;
					break;
				}
			} else if (isin[i]) {
				std::vector<unsigned char> host(bytes, 0);
				fillrandom(host, types[i], rng);
				cu.Memcpy(bufs.ptrs[i], host.data(), bytes, kMemcpyHostToDevice);
			} else if (out->nb_outputs < TRTD_MAX_OUTPUTS) {
				outidx.push_back(i);
				out->outputs[out->nb_outputs++] = t;
			} else if (nsamples > 0) {
				seterr(err, n, "the engine has more than %d outputs; the accuracy gate reads %d", TRTD_MAX_OUTPUTS, TRTD_MAX_OUTPUTS);
				rc = -1;
				break;
			}
#if TRTD_AT_LEAST(8, 5)
			if (!(isin[i] && isshape[i])) ctx->setTensorAddress(names[i].c_str(), bufs.ptrs[i]);
#endif
		}
		if (rc == 0 && cu.StreamCreate(&stream) != 0) {
			seterr(err, n, "cudaStreamCreate failed");
			rc = -1;
		}
		for (int r = 0; rc == 0 && r < warmup + runs; r++) {
			auto t0 = std::chrono::steady_clock::now();
#if TRTD_AT_LEAST(8, 5)
			bool ok = ctx->enqueueV3(static_cast<cudaStream_t>(stream)) && cu.StreamSynchronize(stream) == 0;
#else
			bool ok = ctx->executeV2(bufs.ptrs.data());
#endif
			auto t1 = std::chrono::steady_clock::now();
			if (!ok) {
				seterr(err, n, "inference run %d failed (see the TensorRT log)", r + 1);
				rc = -1;
				break;
			}
			if (r == warmup) cu.MemGetInfo(&free1, &total);
			if (r >= warmup) times[r - warmup] = std::chrono::duration<double, std::milli>(t1 - t0).count();
		}
		// The outputs of the last run, for the accuracy gate.
		for (int k = 0; rc == 0 && nsamples > 0 && k < out->nb_outputs; k++) {
			const trtd_tensor &t = out->outputs[k];
			size_t bytes = static_cast<size_t>(elements(t.dims, t.nb_dims)) * dtypesize(types[outidx[k]]);
			out->output_data[k] = malloc(bytes > 0 ? bytes : 1);
			if (out->output_data[k] == nullptr) {
				seterr(err, n, "out of host memory for output %s (%zu bytes)", t.name, bytes);
				rc = -1;
				break;
			}
			out->output_bytes[k] = bytes;
			int ce = bytes > 0 ? cu.Memcpy(out->output_data[k], bufs.ptrs[outidx[k]], bytes, kMemcpyDeviceToHost) : 0;
			if (ce != 0) {
				seterr(err, n, "cudaMemcpy of output %s: %s: %s", t.name, cuname(ce), custr(ce));
				rc = -1;
			}
		}
		if (stream != nullptr) cu.StreamDestroy(stream);
	}
	if (free0 > free1 && free1 != 0) out->device_mem_used = free0 - free1;
	delete ctx;
	delete e;
	delete rt;
	return rc;
	TRTD_CATCH(err, n, -1)
}

#endif // TRTD_TENSORRT
