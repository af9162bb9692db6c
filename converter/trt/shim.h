/* shim.h: the flat C interface between Go (cgo.go) and TensorRT's C++ API.
 *
 * Handles are opaque; parameters are plain structs; enumerations are passed
 * by name ("kFP16", "kWORKSPACE"), never as integers. Every library is
 * loaded with dlopen, so this links only against libdl. Functions return 0
 * on success and -1 on failure with a message in err (errlen bytes). */
#ifndef TRTD_SHIM_H
#define TRTD_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
/* No C++ exception leaves the shim: every function is noexcept (an exception
 * that escaped would terminate, never unwind into Go), and each body catches
 * what it can throw and returns it as an error (TRTD_TRY/TRTD_CATCH). */
#define TRTD_NOEXCEPT noexcept
extern "C" {
#else
#define TRTD_NOEXCEPT
#endif

/* ---- CUDA runtime (libcudart, dlopen) --------------------------------- */

typedef struct {
	int runtime_version; /* cudaRuntimeGetVersion, e.g. 12040 */
	int driver_version;  /* cudaDriverGetVersion */
	int device_count;
	int cc_major, cc_minor;
	int integrated; /* shares memory with the CPU (Jetson) */
	char name[256];
	uint64_t total, free; /* cudaMemGetInfo, bytes */
	char path[1024];      /* the libcudart that was loaded */
	int cuda_error;       /* the cudaError_t of the call that failed, 0 if none */
} trtd_cuda_info;

/* Loads the first loadable libcudart of candidates (sonames or paths).
 * tried receives "name: dlerror" lines for the report. */
int trtd_cuda_load(const char *const *candidates, int n, char *tried, size_t triedlen, char *err, size_t errlen) TRTD_NOEXCEPT;
int trtd_cuda_info_get(int device, trtd_cuda_info *out, char *err, size_t errlen) TRTD_NOEXCEPT;
/* cudaMalloc(bytes) then cudaFree. Returns the cudaError_t (0 = success);
 * name/msg receive cudaGetErrorName/cudaGetErrorString. */
int trtd_cuda_malloc_test(uint64_t bytes, char *name, size_t namelen, char *msg, size_t msglen) TRTD_NOEXCEPT;

/* ---- TensorRT ----------------------------------------------------------- */

/* 1 when compiled against TensorRT headers (build tag tensorrt). */
int trtd_has_tensorrt(void) TRTD_NOEXCEPT;
/* The headers' NV_TENSORRT_MAJOR/MINOR/PATCH; 0s without headers. */
void trtd_compiled_version(int *major, int *minor, int *patch) TRTD_NOEXCEPT;

typedef struct {
	int lib_version;    /* getInferLibVersion() */
	int parser_version; /* getNvOnnxParserVersion() */
	int plugins_ok;     /* initLibNvInferPlugins() returned true */
	char nvinfer[1024], parser[1024], plugin[1024]; /* resolved paths */
} trtd_trt_libs;

/* dlopen()s the three libraries (sonames or paths) and resolves the entry
 * points. Call once. */
int trtd_trt_load(const char *nvinfer, const char *parser, const char *plugin, trtd_trt_libs *out, char *err, size_t errlen) TRTD_NOEXCEPT;

typedef struct trtd_session trtd_session;

/* A logger (min_severity by name: "error", "warning", "info", "verbose"),
 * plugins initialised, and a builder. */
trtd_session *trtd_session_new(const char *min_severity, char *err, size_t errlen) TRTD_NOEXCEPT;
void trtd_session_free(trtd_session *s) TRTD_NOEXCEPT;

/* Events queued by the logger and (10.x) the progress monitor. Returns 0
 * when the queue is empty, 1 when *ev was filled. kind: "log",
 * "phase_start", "step", "phase_end". */
typedef struct {
	char kind[16];
	char severity[16];
	char text[2048];
	int step, steps;
	int dropped; /* events dropped before this one (queue full) */
} trtd_event;
int trtd_next_event(trtd_session *s, trtd_event *ev) TRTD_NOEXCEPT;

/* Asks a running build to stop (10.x: the progress monitor returns false). */
void trtd_cancel(trtd_session *s) TRTD_NOEXCEPT;
/* 1 when this TensorRT can cancel a build (10.x progress monitor). */
int trtd_can_cancel(void) TRTD_NOEXCEPT;

typedef struct {
	int fast_fp16, fast_int8, dla_cores;
} trtd_platform;
void trtd_platform_get(trtd_session *s, trtd_platform *p) TRTD_NOEXCEPT;

/* createNetworkV2 with flags by name ("kEXPLICIT_BATCH" or ""), then the
 * ONNX parser on it. */
int trtd_network_new(trtd_session *s, const char *flags, char *err, size_t errlen) TRTD_NOEXCEPT;
/* parseFromFile(path); on failure, trtd_parser_error() describes each error. */
int trtd_parse(trtd_session *s, const char *path, char *err, size_t errlen) TRTD_NOEXCEPT;

typedef struct {
	char code[48];
	char desc[1024];
	char file[256];
	int line;
	char func[128];
	int node;
	char node_name[256]; /* 8.6+ */
	char node_op[128];   /* 8.6+ */
} trtd_parser_error;
int trtd_parser_nb_errors(trtd_session *s) TRTD_NOEXCEPT;
void trtd_parser_error_get(trtd_session *s, int i, trtd_parser_error *out) TRTD_NOEXCEPT;

#define TRTD_MAX_DIMS 8
typedef struct {
	char name[256];
	char dtype[16];
	int nb_dims;
	int64_t dims[TRTD_MAX_DIMS];
	int is_shape; /* a shape tensor (ITensor::isShapeTensor): its values, not its dims, are profiled */
} trtd_tensor;
int trtd_nb_inputs(trtd_session *s) TRTD_NOEXCEPT;
void trtd_input_get(trtd_session *s, int i, trtd_tensor *out) TRTD_NOEXCEPT;

/* One IBuilderConfig call by name, e.g. ("setFlag", "kFP16", 0),
 * ("setMemoryPoolLimit", "kWORKSPACE", 1<<28),
 * ("setTacticSources", "kCUBLAS|kCUDNN", 0). Unknown names and calls that
 * the compiled TensorRT does not have are errors. */
int trtd_config_call(trtd_session *s, const char *fn, const char *arg, int64_t value, char *err, size_t errlen) TRTD_NOEXCEPT;
/* setDimensions on the session's single optimization profile (created on
 * first use, added to the config by trtd_build). For a shape-tensor input
 * min/opt/max are its values (nb_dims of them): setShapeValues (8.x, 10.x)
 * or setShapeValuesV2 (11.x). */
int trtd_profile_set(trtd_session *s, const char *input, int nb_dims, const int64_t *min, const int64_t *opt,
                     const int64_t *max, char *err, size_t errlen) TRTD_NOEXCEPT;
/* Attaches the progress monitor (10.x). */
int trtd_progress_attach(trtd_session *s, char *err, size_t errlen) TRTD_NOEXCEPT;
/* createTimingCache(blob) + setTimingCache. An empty blob starts a new cache. */
int trtd_timing_cache_set(trtd_session *s, const void *blob, size_t size, char *err, size_t errlen) TRTD_NOEXCEPT;

typedef struct trtd_blob trtd_blob;
const void *trtd_blob_data(trtd_blob *b) TRTD_NOEXCEPT;
size_t trtd_blob_size(trtd_blob *b) TRTD_NOEXCEPT;
void trtd_blob_free(trtd_blob *b) TRTD_NOEXCEPT;

/* buildSerializedNetwork. *out is the serialized engine. */
int trtd_build(trtd_session *s, trtd_blob **out, char *err, size_t errlen) TRTD_NOEXCEPT;
/* The timing cache after a build, serialized. */
int trtd_timing_cache_get(trtd_session *s, trtd_blob **out, char *err, size_t errlen) TRTD_NOEXCEPT;
/* Frees parser, network, config and builder; the logger stays. */
void trtd_release_builder(trtd_session *s) TRTD_NOEXCEPT;

typedef struct {
	char name[256];
	int nb_dims;
	int64_t dims[TRTD_MAX_DIMS];
} trtd_shape_hint;

/* A sample input for the accuracy gate: the host bytes of one engine input,
 * packed little-endian in the type named by dtype (trtd_tensor's names),
 * which must be the engine's type for that input. data stays the caller's. */
typedef struct {
	char name[256];
	char dtype[16];
	int nb_dims;
	int64_t dims[TRTD_MAX_DIMS];
	const void *data;
	uint64_t bytes;
} trtd_host_tensor;

#define TRTD_MAX_OUTPUTS 16
typedef struct {
	int nb_outputs;
	trtd_tensor outputs[TRTD_MAX_OUTPUTS];
	/* With samples: each output's bytes after the last run, malloc()ed by
	 * the shim (free each with trtd_host_free, also after a failure). */
	void *output_data[TRTD_MAX_OUTPUTS];
	uint64_t output_bytes[TRTD_MAX_OUTPUTS];
	uint64_t device_mem_used; /* free memory before deserializing minus free memory with buffers allocated */
	uint64_t engine_device_mem; /* ICudaEngine::getDeviceMemorySize */
} trtd_validation;

/* int8 calibration: an IInt8EntropyCalibrator2 (the calibrator trtexec
 * uses, so its cache is one trtexec --calib= reads) fed nb_batches batches
 * of nb_inputs host tensors each, batch-major (batches[b*nb_inputs + i]),
 * copied by the shim. cache (cache_size bytes, may be empty) is a
 * calibration cache to reuse instead of calibrating. setInt8Calibrator on
 * the config; not on 11.x, which has no calibrator. */
int trtd_calibrator_set(trtd_session *s, const trtd_host_tensor *batches, int nb_inputs, int nb_batches, const void *cache,
                        size_t cache_size, char *err, size_t errlen) TRTD_NOEXCEPT;
/* The calibration cache TensorRT wrote through writeCalibrationCache. */
int trtd_calibration_cache_get(trtd_session *s, trtd_blob **out, char *err, size_t errlen) TRTD_NOEXCEPT;

/* Throws inside the shim's exception guard (1: std::bad_alloc, 2:
 * std::runtime_error, 3: an int) and returns what the guard made of it. */
int trtd_guard_selftest(int kind, char *err, size_t errlen) TRTD_NOEXCEPT;

/* Deserializes the engine (the build's own blob: the only host copy) in a
 * fresh runtime, on DLA core dla_core when >= 0 (IRuntime::setDLACore
 * before deserializing), and runs it: warmup runs, then
 * runs timed runs; times_ms receives each timed run. Without samples
 * (nb_samples 0) the inputs are random and dynamic inputs take the hint
 * shapes. With samples, every engine input is fed the sample of its name
 * (dynamic inputs take the sample's shape, static ones must have it) and
 * the outputs are copied back to the host after the last run. */
int trtd_validate(trtd_session *s, trtd_blob *engine, int dla_core, const trtd_shape_hint *hints, int nb_hints,
                  const trtd_host_tensor *samples, int nb_samples, int warmup, int runs, double *times_ms,
                  trtd_validation *out, char *err, size_t errlen) TRTD_NOEXCEPT;
void trtd_host_free(void *p) TRTD_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#endif
