// nvinfer.cc: the libnvinfer.so.N of the TensorRT test double. Compiled
// against one release's public headers (NvInfer.h + NvInferImpl.h): every
// public class TensorRT hands out is a thin wrapper whose mImpl points at an
// apiv::V* object; here one object is both, so the vtables are the ones the
// compiler lays out from NVIDIA's headers for that release. Every interface
// method the worker does not use aborts naming itself (genabort.py).
//
// Test-only, never shipped. See README.md for the script and the sources of
// every value and log line.
#include <NvInfer.h>
#include <NvInferImpl.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "double.h"

using namespace nvinfer1;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include "abort_nvinfer.h"
namespace trtdouble {
using namespace nvinfer1;
using namespace nvinfer1::apiv::trtdouble_gen;
} // namespace trtdouble
#pragma GCC diagnostic pop

#define AT_LEAST(ma, mi) (NV_TENSORRT_MAJOR > (ma) || (NV_TENSORRT_MAJOR == (ma) && NV_TENSORRT_MINOR >= (mi)))

namespace trtdouble {

[[noreturn]] void die(char const *what) noexcept {
	fprintf(stderr, "trtdouble: %s: not implemented by the TensorRT test double (the worker called it)\n", what);
	fflush(stderr);
	abort();
}

// The CUDA double's entry points, found in the process (the worker loads
// libcudart with RTLD_GLOBAL before TensorRT, as every TensorRT user must).
struct Cuda {
	int (*Malloc)(void **, size_t) = nullptr;
	int (*Free)(void *) = nullptr;
	int (*MemGetInfo)(size_t *, size_t *) = nullptr;
	Cuda() {
		Malloc = reinterpret_cast<int (*)(void **, size_t)>(dlsym(RTLD_DEFAULT, "cudaMalloc"));
		Free = reinterpret_cast<int (*)(void *)>(dlsym(RTLD_DEFAULT, "cudaFree"));
		MemGetInfo = reinterpret_cast<int (*)(size_t *, size_t *)>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
		if (!Malloc || !Free || !MemGetInfo) die("libcudart not loaded before libnvinfer (cudaMalloc not found)");
	}
};
static Cuda &cuda() {
	static Cuda c;
	return c;
}

static void logf(ILogger *l, ILogger::Severity s, char const *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf(ILogger *l, ILogger::Severity s, char const *fmt, ...) {
	if (l == nullptr) return;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	l->log(s, buf);
}

static long rssMiB() {
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE) >> 20;
}
// The resident memory of the process and of the double's own libraries
// (every mapping of a file named libnvinfer*, libnvonnxparser*,
// libnvinfer_plugin* or libcudart*), from /proc/self/smaps, in KiB: what the
// worker holds of its own when the build starts is the difference.
static void rssSplit(long *total, long *libs) {
	*total = *libs = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (f == nullptr) return;
	char line[4096];
	bool ours = false;
	while (fgets(line, sizeof(line), f)) {
		// A mapping's header starts with its address (lowercase hex); its
		// fields ("Rss:", "VmFlags:") with an uppercase letter.
		char path[3072] = "";
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
			sscanf(line, "%*s %*s %*s %*s %*s %3071s", path);
			char const *base = strrchr(path, '/');
			base = base ? base + 1 : path;
			ours = strncmp(base, "libnvinfer", 10) == 0 || strncmp(base, "libnvonnxparser", 15) == 0 || strncmp(base, "libcudart", 9) == 0;
			continue;
		}
		long kb = 0;
		if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
			*total += kb;
			if (ours) *libs += kb;
		}
	}
	fclose(f);
}

static long gpuUsedMiB() {
	size_t fr = 0, tot = 0;
	cuda().MemGetInfo(&fr, &tot);
	return static_cast<long>((tot - fr) >> 20);
}

// Ownership: every object TensorRT creates from another must be destroyed
// first (NVIDIA/TensorRT release/8.2 samples/common/sampleEngines.h:48-51:
// "the parser is destroyed before the network is destroyed"; the runtime
// outlives its engines, the engine its contexts, the builder its networks
// and configs). A child tells its creator when it dies; a creator that died
// first makes that a heap-use-after-free that AddressSanitizer reports.
[[noreturn]] static void broken(char const *rule) noexcept {
	fprintf(stderr, "trtdouble: TensorRT ownership rule broken: %s\n", rule);
	fflush(stderr);
	abort();
}

struct Creator {
	int children = 0;
	virtual ~Creator() = default;
};
struct Child {
	Creator *creator;
	explicit Child(Creator *c) : creator(c) { creator->children++; }
	~Child() { creator->children--; }
};

/* ---- host memory ----------------------------------------------------- */

class HostMemory : public IHostMemory, public AbortVHostMemory {
  public:
	explicit HostMemory(std::string b) : bytes(std::move(b)) { mImpl = this; }
	void *data() const noexcept override { return const_cast<char *>(bytes.data()); }
	std::size_t size() const noexcept override { return bytes.size(); }
	DataType type() const noexcept override { return DataType::kINT8; }
	std::string bytes;
};

/* ---- network --------------------------------------------------------- */

using D = decltype(Dims{}.d[0] + 0);

class Tensor : public ITensor, public AbortVTensor {
  public:
	Tensor(std::string n, DataType t, Dims d, bool in) : name(std::move(n)), dtype(t), dims(d), input(in) { mImpl = this; }
	~Tensor() noexcept override = default;
	char const *getName() const noexcept override { return name.c_str(); }
	void setName(char const *n) noexcept override { name = n; }
	Dims getDimensions() const noexcept override { return dims; }
	DataType getType() const noexcept override { return dtype; }
	bool isNetworkInput() const noexcept override { return input; }
	bool isNetworkOutput() const noexcept override { return output; }
	// The double's networks are elementwise: every tensor carries data,
	// none is a shape tensor.
	bool isShapeTensor() const noexcept override { return false; }
	bool isExecutionTensor() const noexcept override { return true; }
	std::string name;
	DataType dtype;
	Dims dims;
	bool input, output = false;
};

struct Node {
	std::string op, name, out;
	std::vector<std::string> in;
};
struct WeightRef {
	std::string name;
	float const *values; // owned by the parser until the build ends
	int64_t count;
	std::vector<int64_t> dims;
};

class Network : public INetworkDefinition, public AbortVNetworkDefinition, public Creator {
  public:
	Network(Creator *builder, uint32_t flags) : child(builder), flags(flags) { mImpl = this; }
	~Network() noexcept override {
		if (children != 0) broken("INetworkDefinition destroyed before the ONNX parser created on it");
		for (Tensor *t : tensors) delete t;
	}
#if NV_TENSORRT_MAJOR >= 10
	ITensor *addInput(char const *name, DataType type, Dims const &dims) noexcept override {
#else
	ITensor *addInput(char const *name, DataType type, Dims dims) noexcept override {
#endif
		Tensor *t = new Tensor(name, type, dims, true);
		tensors.push_back(t);
		inputs.push_back(t);
		return t;
	}
	void markOutput(ITensor &t) noexcept override {
		Tensor *x = static_cast<Tensor *>(&t);
		x->output = true;
		outputs.push_back(x);
	}
	int32_t getNbInputs() const noexcept override { return static_cast<int32_t>(inputs.size()); }
	ITensor *getInput(int32_t i) const noexcept override { return i >= 0 && i < getNbInputs() ? inputs[i] : nullptr; }
	int32_t getNbOutputs() const noexcept override { return static_cast<int32_t>(outputs.size()); }
	ITensor *getOutput(int32_t i) const noexcept override { return i >= 0 && i < getNbOutputs() ? outputs[i] : nullptr; }
	int32_t getNbLayers() const noexcept override { return static_cast<int32_t>(nodes.size()); }
	// The parser's outputs are tensors of nodes; the double creates them here.
	Tensor *tensor(std::string const &name) {
		for (Tensor *t : tensors)
			if (t->name == name) return t;
		return nullptr;
	}
	Child child;
	uint32_t flags;
	std::vector<Tensor *> tensors, inputs, outputs;
	std::vector<Node> nodes;
	std::vector<WeightRef> weights;
};

} // namespace trtdouble

using namespace trtdouble;

extern "C" int trtdouble_network_add_node(void *network, char const *op, char const *name, int nb, char const *const *in, char const *out) {
	Network *n = static_cast<Network *>(static_cast<INetworkDefinition *>(network));
	Node nd{op, name, out, {}};
	for (int i = 0; i < nb; i++) nd.in.push_back(in[i]);
	// The node's output has the first operand's type; shapes are computed
	// when the engine runs.
	Tensor *first = nb > 0 ? n->tensor(in[0]) : nullptr;
	Dims d{};
	d.nbDims = 0;
	if (first != nullptr) d = first->dims;
	if (n->tensor(out) == nullptr) n->tensors.push_back(new Tensor(out, first ? first->dtype : DataType::kFLOAT, d, false));
	n->nodes.push_back(nd);
	return 0;
}

extern "C" int trtdouble_network_add_weights(void *network, char const *name, float const *v, int64_t count, int nb, int64_t const *dims) {
	Network *n = static_cast<Network *>(static_cast<INetworkDefinition *>(network));
	n->weights.push_back(WeightRef{name, v, count, std::vector<int64_t>(dims, dims + nb)});
	return 0;
}

extern "C" void trtdouble_network_parser_born(void *network) { static_cast<Network *>(static_cast<INetworkDefinition *>(network))->children++; }
// A network destroyed before its parser makes this a heap-use-after-free.
extern "C" void trtdouble_network_parser_died(void *network) { static_cast<Network *>(static_cast<INetworkDefinition *>(network))->children--; }
extern "C" void *trtdouble_network_tensor(void *network, char const *name) {
	return static_cast<ITensor *>(static_cast<Network *>(static_cast<INetworkDefinition *>(network))->tensor(name));
}

namespace trtdouble {

/* ---- optimization profile, timing cache -------------------------------- */

class Profile : public IOptimizationProfile, public AbortVOptimizationProfile {
  public:
	Profile() { mImpl = this; }
#if NV_TENSORRT_MAJOR >= 10
	bool setDimensions(char const *name, OptProfileSelector sel, Dims const &d) noexcept override {
#else
	bool setDimensions(char const *name, OptProfileSelector sel, Dims d) noexcept override {
#endif
		for (int i = 0; i < d.nbDims; i++)
			if (d.d[i] < 0) return false;
		dims[name][static_cast<int>(sel)] = d;
		return true;
	}
	Dims getDimensions(char const *name, OptProfileSelector sel) const noexcept override {
		auto it = dims.find(name);
		if (it == dims.end()) {
			Dims d{};
			d.nbDims = -1;
			return d;
		}
		return it->second[static_cast<int>(sel)];
	}
	bool isValid() const noexcept override { return !dims.empty(); }
	std::map<std::string, Dims[3]> dims;
};

static char const kCacheMagic[] = "trtdouble-timing-cache\n";

class TimingCache : public ITimingCache, public AbortVTimingCache {
  public:
	TimingCache(Creator *config) : child(config) { mImpl = this; }
	IHostMemory *serialize() const noexcept override {
		std::string s = kCacheMagic;
		for (auto const &k : keys) s += k + "\n";
		return new HostMemory(s);
	}
	bool reset() noexcept override {
		keys.clear();
		return true;
	}
	Child child;
	std::vector<std::string> keys;
	bool has(std::string const &k) const { return std::find(keys.begin(), keys.end(), k) != keys.end(); }
};

/* ---- builder config --------------------------------------------------- */

class Config : public IBuilderConfig, public AbortVBuilderConfig, public Creator {
  public:
	Config(Creator *builder) : child(builder) { mImpl = this; }
	~Config() noexcept override {
		if (children != 0) broken("IBuilderConfig destroyed before the timing cache it created");
	}
	void setFlag(BuilderFlag f) noexcept override { flags |= 1U << static_cast<uint32_t>(f); }
	void clearFlag(BuilderFlag f) noexcept override { flags &= ~(1U << static_cast<uint32_t>(f)); }
	bool getFlag(BuilderFlag f) const noexcept override { return flags & (1U << static_cast<uint32_t>(f)); }
#if !AT_LEAST(8, 4)
	void setMaxWorkspaceSize(std::size_t s) noexcept override { workspace = s; }
	std::size_t getMaxWorkspaceSize() const noexcept override { return workspace; }
#else
	void setMemoryPoolLimit(MemoryPoolType p, std::size_t s) noexcept override {
		if (p == MemoryPoolType::kWORKSPACE) workspace = s;
	}
	std::size_t getMemoryPoolLimit(MemoryPoolType p) const noexcept override { return p == MemoryPoolType::kWORKSPACE ? workspace : 0; }
#endif
	bool setTacticSources(TacticSources t) noexcept override {
		tactics = t;
		return true;
	}
	TacticSources getTacticSources() const noexcept override { return tactics; }
#if AT_LEAST(8, 6)
	void setBuilderOptimizationLevel(int32_t l) noexcept override { level = l; }
	int32_t getBuilderOptimizationLevel() const noexcept override { return level; }
#if NV_TENSORRT_MAJOR >= 11
	bool setMaxAuxStreams(int32_t n) noexcept override {
		aux = n;
		return true;
	}
#else
	void setMaxAuxStreams(int32_t n) noexcept override { aux = n; }
#endif
	int32_t getMaxAuxStreams() const noexcept override { return aux; }
#endif
	void setDefaultDeviceType(DeviceType d) noexcept override { device = d; }
	DeviceType getDefaultDeviceType() const noexcept override { return device; }
	void setDLACore(int32_t c) noexcept override { dla = c; }
	int32_t addOptimizationProfile(IOptimizationProfile const *p) noexcept override {
		if (p == nullptr || !p->isValid()) return -1;
		profiles.push_back(static_cast<Profile const *>(p));
		return static_cast<int32_t>(profiles.size()) - 1;
	}
	int32_t getNbOptimizationProfiles() const noexcept override { return static_cast<int32_t>(profiles.size()); }
#if NV_TENSORRT_MAJOR >= 10
	void setProgressMonitor(IProgressMonitor *m) noexcept override { monitor = m; }
	IProgressMonitor *getProgressMonitor() const noexcept override { return monitor; }
	IProgressMonitor *monitor = nullptr;
#endif
#if NV_TENSORRT_MAJOR < 11
	void setInt8Calibrator(IInt8Calibrator *c) noexcept override { calibrator = c; }
	IInt8Calibrator *getInt8Calibrator() const noexcept override { return calibrator; }
	IInt8Calibrator *calibrator = nullptr;
	bool setCalibrationProfile(IOptimizationProfile const *p) noexcept override {
		if (p == nullptr || !p->isValid()) return false;
		calibProfile = p;
		return true;
	}
	IOptimizationProfile const *getCalibrationProfile() noexcept override { return calibProfile; }
	IOptimizationProfile const *calibProfile = nullptr;
#endif
	ITimingCache *createTimingCache(void const *blob, std::size_t size) const noexcept override {
		TimingCache *c = new TimingCache(const_cast<Config *>(this));
		if (size == 0) return c;
		std::string s(static_cast<char const *>(blob), size);
		if (s.compare(0, strlen(kCacheMagic), kCacheMagic) != 0) {
			delete c;
			return nullptr;
		}
		std::stringstream ss(s.substr(strlen(kCacheMagic)));
		std::string line;
		while (std::getline(ss, line))
			if (!line.empty()) c->keys.push_back(line);
		return c;
	}
	bool setTimingCache(ITimingCache const &c, bool) noexcept override {
		cache = const_cast<TimingCache *>(static_cast<TimingCache const *>(&c));
		return true;
	}
	ITimingCache const *getTimingCache() const noexcept override { return cache; }

	Child child;
	uint32_t flags = 0;
	// Defaults: 8.2 setMaxWorkspaceSize "default value is 0" is not true of
	// the pool API; the double uses the device size for both (8.4+:
	// "Defaults to max device memory", NvInfer.h of 8.6/10.0 at
	// setMemoryPoolLimit).
	std::size_t workspace = 0;
	bool workspaceSet = false;
	TacticSources tactics = 0;
	int32_t level = 3, aux = -1, dla = -1;
	DeviceType device = DeviceType::kGPU;
	std::vector<Profile const *> profiles;
	TimingCache *cache = nullptr;
};

/* ---- engine blob ------------------------------------------------------ */

// A deterministic text blob: the I/O tensors, the nodes, the weights'
// values (copied from the parser's memory at build time) and the profile.
struct EngineDesc {
	struct IO {
		std::string name;
		int dtype;
		std::vector<int64_t> dims, mn, mx;
		bool input;
	};
	std::vector<IO> io;
	std::vector<Node> nodes;
	std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> weights;
	std::string version;
	uint64_t deviceMem = 0;

	static void dimsout(std::ostream &o, std::vector<int64_t> const &d) {
		o << d.size();
		for (int64_t v : d) o << ' ' << v;
	}
	static std::vector<int64_t> dimsin(std::istream &i) {
		size_t n = 0;
		i >> n;
		std::vector<int64_t> d(n > 16 ? 0 : n);
		for (auto &v : d) i >> v;
		return d;
	}
	std::string serialize() const {
		std::ostringstream o;
		o.precision(9);
		o << "trtdouble-engine " << version << "\n";
		o << "devicemem " << deviceMem << "\n";
		for (auto const &t : io) {
			o << (t.input ? "input " : "output ") << t.name << ' ' << t.dtype << ' ';
			dimsout(o, t.dims);
			o << ' ';
			dimsout(o, t.mn);
			o << ' ';
			dimsout(o, t.mx);
			o << "\n";
		}
		for (auto const &n : nodes) {
			o << "node " << n.op << ' ' << n.out << ' ' << n.in.size();
			for (auto const &i : n.in) o << ' ' << i;
			o << "\n";
		}
		for (auto const &w : weights) {
			o << "weights " << w.first << ' ';
			dimsout(o, w.second.first);
			o << ' ' << w.second.second.size();
			for (float f : w.second.second) o << ' ' << f;
			o << "\n";
		}
		return o.str();
	}
	bool parse(std::string const &s) {
		std::istringstream in(s);
		std::string line;
		if (!std::getline(in, line) || line.rfind("trtdouble-engine ", 0) != 0) return false;
		version = line.substr(17);
		while (std::getline(in, line)) {
			std::istringstream l(line);
			std::string kind;
			l >> kind;
			if (kind == "devicemem") {
				l >> deviceMem;
			} else if (kind == "input" || kind == "output") {
				IO t;
				t.input = kind == "input";
				l >> t.name >> t.dtype;
				t.dims = dimsin(l);
				t.mn = dimsin(l);
				t.mx = dimsin(l);
				io.push_back(t);
			} else if (kind == "node") {
				Node n;
				size_t k = 0;
				l >> n.op >> n.out >> k;
				for (size_t i = 0; i < k && i < 64; i++) {
					std::string x;
					l >> x;
					n.in.push_back(x);
				}
				nodes.push_back(n);
			} else if (kind == "weights") {
				std::string name;
				l >> name;
				auto d = dimsin(l);
				size_t k = 0;
				l >> k;
				std::vector<float> v(k);
				for (auto &f : v) l >> f;
				weights[name] = {d, v};
			} else {
				return false;
			}
		}
		return !in.bad();
	}
};

static int onnxType(DataType t) {
	switch (t) {
	case DataType::kFLOAT: return kOnnxFloat;
	case DataType::kHALF: return kOnnxFloat16;
	case DataType::kINT8: return kOnnxInt8;
	case DataType::kINT32: return kOnnxInt32;
	case DataType::kBOOL: return kOnnxBool;
#if NV_TENSORRT_MAJOR >= 10
	case DataType::kINT64: return kOnnxInt64;
#endif
	default: return 0;
	}
}
static DataType trtType(int t) {
	switch (t) {
	case kOnnxFloat16: return DataType::kHALF;
	case kOnnxInt8: return DataType::kINT8;
	case kOnnxInt32: return DataType::kINT32;
	case kOnnxBool: return DataType::kBOOL;
#if NV_TENSORRT_MAJOR >= 10
	case kOnnxInt64: return DataType::kINT64;
#endif
	default: return DataType::kFLOAT;
	}
}

/* ---- builder ---------------------------------------------------------- */

// Out-of-memory lines, as real TensorRT prints them when the builder cannot
// get its workspace (from trtd's classifier corpus, converter/classify):
//   8.x: https://github.com/enazoe/yolo-tensorrt/issues/169 (warning) and
//        https://github.com/NVIDIA/TensorRT/issues/840 (safeRuntime allocate: 2)
//   10.x/11.x: https://github.com/NVIDIA/TensorRT/issues/4254
static void logOOM(ILogger *l, size_t bytes) {
#if NV_TENSORRT_MAJOR < 10
	logf(l, ILogger::Severity::kWARNING,
	     "Requested amount of GPU memory (%zu bytes) could not be allocated. There may not be enough free memory for allocation to succeed.", bytes);
	logf(l, ILogger::Severity::kERROR, "../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)");
#else
	logf(l, ILogger::Severity::kERROR, "[defaultAllocator.cpp::allocate::19] Error code 1: cuda Runtime (out of memory)");
	logf(l, ILogger::Severity::kERROR, "[virtualMemoryBuffer.cpp::resizePhysical::140] Error code 2: out of Memory (Requested size was %zu bytes.)", bytes);
#endif
}

// Memory warnings that appear in builds that succeed (issue list in
// docs/TENSORRT.md: VoltaML#15, BEVDet#132, torch2trt#706).
static void logTacticWarnings(ILogger *l, size_t bytes) {
	logf(l, ILogger::Severity::kWARNING,
	     "Requested amount of GPU memory (%zu bytes) could not be allocated. There may not be enough free memory for allocation to succeed.", bytes);
	logf(l, ILogger::Severity::kWARNING, "Skipping tactic 1 due to insuficient memory on requested size of %zu detected for tactic 0.", bytes);
	logf(l, ILogger::Severity::kWARNING, "Tactic Device request: 1800MB Available: 1536MB. Device memory is insufficient to use tactic.");
}

class Builder : public IBuilder, public AbortVBuilder, public Creator {
  public:
	explicit Builder(ILogger *l) : logger(l) { mImpl = this; }
	~Builder() noexcept override {
		if (children != 0) broken("IBuilder destroyed before a network or config it created");
		for (Profile *p : profiles) delete p; // profiles belong to the builder
	}
#if NV_TENSORRT_MAJOR < 11
	bool platformHasFastFp16() const noexcept override { return true; }
	// Jetson Nano (Maxwell, sm_53) has no fast int8; fast_int8=1 makes a board that has.
	bool platformHasFastInt8() const noexcept override { return Script::get().num("fast_int8", 0) != 0; }
#endif
	int32_t getNbDLACores() const noexcept override { return 0; }
	IBuilderConfig *createBuilderConfig() noexcept override { return new Config(this); }
	INetworkDefinition *createNetworkV2(NetworkDefinitionCreationFlags f) noexcept override { return new Network(this, f); }
	IOptimizationProfile *createOptimizationProfile() noexcept override {
		profiles.push_back(new Profile());
		return profiles.back();
	}
	ILogger *getLogger() const noexcept override { return logger; }
	IHostMemory *buildSerializedNetwork(INetworkDefinition &net, IBuilderConfig &cfg) noexcept override;

	ILogger *logger;
	std::vector<Profile *> profiles;

  private:
	bool calibrate(Network &n, Config &c);
	bool steps(Config &c, char const *phase, std::vector<std::string> const &keys, double ms, bool *canceled);
};

[[maybe_unused]] static size_t dtypeBytes(DataType t) {
	switch (t) {
	case DataType::kHALF: return 2;
	case DataType::kINT8:
	case DataType::kBOOL: return 1;
#if NV_TENSORRT_MAJOR >= 10
	case DataType::kINT64: return 8;
#endif
	default: return 4;
	}
}

#if NV_TENSORRT_MAJOR < 11
// int8 calibration (IInt8Calibrator in NvInfer.h): the batch size, then
// getBatch until it returns false, each input bound to a device buffer;
// then writeCalibrationCache. A cache from readCalibrationCache skips the
// batches.
bool Builder::calibrate(Network &n, Config &c) {
	IInt8Calibrator *cal = c.calibrator;
	size_t len = 0;
	void const *cached = cal->readCalibrationCache(len);
	if (cached != nullptr && len > 0) {
		logf(logger, ILogger::Severity::kINFO, "[trtdouble] int8 calibration: using a %zu-byte calibration cache", len);
		return true;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	int32_t batch = cal->getBatchSize();
#pragma GCC diagnostic pop
	std::vector<void *> bufs;
	std::vector<char const *> names;
	for (Tensor *t : n.inputs) {
		size_t v = 1;
		for (int i = 0; i < t->dims.nbDims; i++) v *= t->dims.d[i] > 0 ? static_cast<size_t>(t->dims.d[i]) : 1;
		void *p = nullptr;
		if (cuda().Malloc(&p, v * dtypeBytes(t->dtype)) != 0) {
			for (void *b : bufs) cuda().Free(b);
			logOOM(logger, v * dtypeBytes(t->dtype));
			return false;
		}
		bufs.push_back(p);
		names.push_back(t->name.c_str());
	}
	int batches = 0;
	while (cal->getBatch(bufs.data(), names.data(), static_cast<int32_t>(bufs.size()))) batches++;
	for (void *b : bufs) cuda().Free(b);
	if (batches == 0) {
		// TensorRT's message when calibration produced no ranges
		// (https://github.com/NVIDIA/TensorRT/issues/1827).
		logf(logger, ILogger::Severity::kERROR, "Calibration failure occurred with no scaling factors detected. This could be due to no int8 calibrator or insufficient custom scales for network layers. Please see int8 sample to setup calibration correctly.");
		return false;
	}
	// The calibration table's format: "TRT-<version>-EntropyCalibration2"
	// then "tensor: <float scale as hex>" lines (NVIDIA/TensorRT release/8.2
	// samples/sampleINT8/README.md:128-135), logged as TensorRT logs it (:295).
	std::string table = "TRT-" + std::to_string(NV_TENSORRT_VERSION) + "-EntropyCalibration2\n";
	for (Tensor *t : n.tensors) table += t->name + ": 3c010a14\n";
	logf(logger, ILogger::Severity::kINFO, "Writing Calibration Cache for calibrator: TRT-%ld-EntropyCalibration2", static_cast<long>(NV_TENSORRT_VERSION));
	cal->writeCalibrationCache(table.data(), table.size());
	logf(logger, ILogger::Severity::kINFO, "[trtdouble] int8 calibration: %d batches of %d", batches, batch);
	return true;
}
#endif

// One build phase: nb steps of ms/nb each, through the progress monitor on
// 10.x and later (IProgressMonitor, NvInfer.h of 10.0: stepComplete
// "return ... false to stop the build"). A step whose key is in the timing
// cache costs nothing.
bool Builder::steps(Config &c, char const *phase, std::vector<std::string> const &keys, double ms, bool *canceled) {
	int nb = static_cast<int>(keys.size());
#if NV_TENSORRT_MAJOR >= 10
	IProgressMonitor *m = c.monitor;
	if (m) m->phaseStart(phase, nullptr, nb);
#endif
	for (int i = 0; i < nb; i++) {
		bool hit = c.cache != nullptr && c.cache->has(keys[i]);
		if (!hit) {
			std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(ms * 1000 / (nb ? nb : 1))));
			if (c.cache) c.cache->keys.push_back(keys[i]);
		}
#if NV_TENSORRT_MAJOR >= 10
		if (m && !m->stepComplete(phase, i)) {
			m->phaseFinish(phase);
			*canceled = true;
			return false;
		}
#endif
	}
#if NV_TENSORRT_MAJOR >= 10
	if (m) m->phaseFinish(phase);
#endif
	(void)canceled;
	return true;
}

IHostMemory *Builder::buildSerializedNetwork(INetworkDefinition &in, IBuilderConfig &ic) noexcept {
	Network &n = static_cast<Network &>(in);
	Config &c = static_cast<Config &>(ic);
	Script const &sc = Script::get();
	long rssTotal = 0, rssLibs = 0;
	rssSplit(&rssTotal, &rssLibs);
	logf(logger, ILogger::Severity::kINFO, "[trtdouble] RSS at buildSerializedNetwork: process %ld KiB, test double's libraries %ld KiB", rssTotal, rssLibs);
	logf(logger, ILogger::Severity::kINFO, "[MemUsageSnapshot] Builder begin: CPU %ld MiB, GPU %ld MiB", rssMiB(), gpuUsedMiB());
	for (Tensor *t : n.inputs) {
		bool dyn = false;
		for (int i = 0; i < t->dims.nbDims; i++) dyn = dyn || t->dims.d[i] < 0;
		if (dyn && c.profiles.empty()) {
			// https://github.com/onnx/onnx-tensorrt/issues/518
			logf(logger, ILogger::Severity::kERROR, "Network has dynamic or shape inputs, but no optimization profile has been defined.");
			return nullptr;
		}
	}
	// The workspace: the builder's tactics want the whole pool; without one
	// set the pool is the device's memory (8.4+ setMemoryPoolLimit default;
	// 8.0-8.3 setMaxWorkspaceSize, where trtd always sets it).
	size_t fr = 0, tot = 0;
	cuda().MemGetInfo(&fr, &tot);
	size_t ws = c.workspace ? c.workspace : tot;
	void *wsp = nullptr;
	if (cuda().Malloc(&wsp, ws) != 0) {
		logOOM(logger, ws);
		return nullptr;
	}
	struct Free {
		void *p;
		~Free() {
			if (p) cuda().Free(p);
		}
	} wsfree{wsp};
	if (sc.str("warn") == "tactic") logTacticWarnings(logger, ws * 2);
	if (sc.str("bug") == "use-after-free") {
		// A deliberate bug, to show the harness sees sanitizer reports.
		int *p = new int(1);
		delete p;
		volatile int x = *p;
		(void)x;
	}
	if (sc.str("fail") == "notactic") {
		// No tactic for a node, with no failed allocation (an op the GPU
		// cannot run: NVIDIA/TensorRT#3677, ArgMax on a Nano). The line's
		// format is the one trtd's classifier corpus quotes from
		// NVIDIA-AI-IOT/torch2trt#661 (TensorRT 8.0).
		std::string node = n.nodes.empty() ? "(Unnamed Layer* 0)" : n.nodes[0].op + "_" + n.nodes[0].out;
		logf(logger, ILogger::Severity::kERROR, "../builder/tacticOptimizer.cpp (1715) - TRTInternal Error in computeCosts: 0 (Could not find any implementation for node %s.)", node.c_str());
		return nullptr;
	}

	bool int8 = false;
#if NV_TENSORRT_MAJOR < 11
	int8 = c.getFlag(BuilderFlag::kINT8);
	if (int8) {
		bool qdq = false;
		for (auto const &nd : n.nodes) qdq = qdq || nd.op == "QuantizeLinear";
		if (!qdq && c.calibrator == nullptr) {
			logf(logger, ILogger::Severity::kERROR, "Calibration failure occurred with no scaling factors detected. This could be due to no int8 calibrator or insufficient custom scales for network layers. Please see int8 sample to setup calibration correctly.");
			return nullptr;
		}
		if (c.calibrator != nullptr && !calibrate(n, c)) return nullptr;
	}
#endif
	(void)int8;

	// One step per (node, tactic): enough tactics that a step lasts at most
	// 50 ms, so a cancel is seen within one step as TensorRT sees it.
	double ms = sc.num("build_ms", 0);
	size_t tactics = std::max<size_t>(4, static_cast<size_t>(ms / 50 / (n.nodes.empty() ? 1 : n.nodes.size())));
	std::vector<std::string> keys;
	for (auto const &nd : n.nodes) {
		std::string k = nd.op + ":" + nd.out;
		for (auto const &i : nd.in) k += ":" + i;
		for (size_t t = 0; t < tactics; t++) keys.push_back(k + "#" + std::to_string(t));
	}
	bool canceled = false;
	if (!steps(c, "Building engine", keys, ms, &canceled)) {
		logf(logger, ILogger::Severity::kERROR, "[trtdouble] the build was canceled by the progress monitor");
		return nullptr;
	}

	EngineDesc e;
	e.version = std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." + std::to_string(NV_TENSORRT_PATCH);
	for (int pass = 0; pass < 2; pass++) {
		for (Tensor *t : pass == 0 ? n.inputs : n.outputs) {
			EngineDesc::IO io;
			io.name = t->name;
			io.dtype = onnxType(t->dtype);
			io.input = pass == 0;
			for (int i = 0; i < t->dims.nbDims; i++) io.dims.push_back(t->dims.d[i]);
			for (Profile const *p : c.profiles) {
				auto it = p->dims.find(t->name);
				if (it == p->dims.end()) continue;
				for (int i = 0; i < it->second[0].nbDims; i++) io.mn.push_back(it->second[0].d[i]);
				for (int i = 0; i < it->second[2].nbDims; i++) io.mx.push_back(it->second[2].d[i]);
			}
			e.io.push_back(io);
		}
	}
	e.nodes = n.nodes;
	// The weights are read from the parser's memory now: a parser destroyed
	// before the build makes this a use-after-free.
	for (auto const &w : n.weights) e.weights[w.name] = {w.dims, std::vector<float>(w.values, w.values + w.count)};
	// Activation memory: each tensor's bytes at the largest profile shape.
	for (auto const &io : e.io) {
		uint64_t v = 1;
		auto const &d = io.mx.empty() ? io.dims : io.mx;
		for (int64_t x : d) v *= x > 0 ? x : 1;
		e.deviceMem += v * 4;
	}
	logf(logger, ILogger::Severity::kINFO, "[MemUsageChange] TensorRT-managed allocation in building engine: CPU +0, GPU +%llu, now: CPU 0, GPU %llu (MiB)",
	     static_cast<unsigned long long>(e.deviceMem >> 20), static_cast<unsigned long long>(e.deviceMem >> 20));
	return new HostMemory(e.serialize());
}

/* ---- runtime, engine, execution context --------------------------------- */

class Engine;

class Context : public IExecutionContext, public AbortVExecutionContext {
  public:
	Context(Engine *e);
	~Context() noexcept override;
#if AT_LEAST(8, 5)
	bool setInputShape(char const *name, Dims const &d) noexcept override;
	Dims getTensorShape(char const *name) const noexcept override;
	bool setTensorAddress(char const *name, void *p) noexcept override;
	bool enqueueV3(cudaStream_t) noexcept override { return run(); }
#else
	bool setBindingDimensions(int32_t i, Dims d) noexcept override;
	Dims getBindingDimensions(int32_t i) const noexcept override;
	bool executeV2(void *const *bindings) noexcept override;
#endif
	bool run() noexcept;
	Engine *engine;
	Child child;
	void *scratch = nullptr;
	std::map<std::string, std::vector<int64_t>> shapes;
	std::map<std::string, void *> addr;
};

class Engine : public ICudaEngine, public AbortVCudaEngine, public Creator {
  public:
	Engine(Creator *rt, ILogger *l, EngineDesc d) : child(rt), logger(l), desc(std::move(d)) { mImpl = this; }
	~Engine() noexcept override {
		if (children != 0) broken("ICudaEngine destroyed before its execution context");
	}
	int32_t getNbLayers() const noexcept override { return static_cast<int32_t>(desc.nodes.size()); }
	int32_t getNbOptimizationProfiles() const noexcept override { return 1; }
	IHostMemory *serialize() const noexcept override { return new HostMemory(desc.serialize()); }
	Dims dims(EngineDesc::IO const &t) const {
		Dims d{};
		d.nbDims = static_cast<int32_t>(t.dims.size());
		for (int i = 0; i < d.nbDims; i++) d.d[i] = static_cast<D>(t.dims[i]);
		return d;
	}
	EngineDesc::IO const *find(char const *name) const {
		for (auto const &t : desc.io)
			if (t.name == name) return &t;
		return nullptr;
	}
#if AT_LEAST(8, 5)
	int32_t getNbIOTensors() const noexcept override { return static_cast<int32_t>(desc.io.size()); }
	char const *getIOTensorName(int32_t i) const noexcept override { return i >= 0 && i < getNbIOTensors() ? desc.io[i].name.c_str() : nullptr; }
	TensorIOMode getTensorIOMode(char const *n) const noexcept override {
		auto t = find(n);
		return t == nullptr ? TensorIOMode::kNONE : t->input ? TensorIOMode::kINPUT : TensorIOMode::kOUTPUT;
	}
	DataType getTensorDataType(char const *n) const noexcept override {
		auto t = find(n);
		return t ? trtType(t->dtype) : DataType::kFLOAT;
	}
	bool isShapeInferenceIO(char const *) const noexcept override { return false; }
	Dims getTensorShape(char const *n) const noexcept override {
		auto t = find(n);
		if (t) return dims(*t);
		Dims d{};
		d.nbDims = -1;
		return d;
	}
#else
	int32_t getNbBindings() const noexcept override { return static_cast<int32_t>(desc.io.size()); }
	char const *getBindingName(int32_t i) const noexcept override { return i >= 0 && i < getNbBindings() ? desc.io[i].name.c_str() : nullptr; }
	bool bindingIsInput(int32_t i) const noexcept override { return desc.io.at(i).input; }
	DataType getBindingDataType(int32_t i) const noexcept override { return trtType(desc.io.at(i).dtype); }
	Dims getBindingDimensions(int32_t i) const noexcept override { return dims(desc.io.at(i)); }
	bool isShapeBinding(int32_t) const noexcept override { return false; }
#endif
#if NV_TENSORRT_MAJOR >= 11
	int64_t getDeviceMemorySizeV2() const noexcept override { return static_cast<int64_t>(desc.deviceMem); }
#else
	size_t getDeviceMemorySize() const noexcept override { return desc.deviceMem; }
#endif
#if NV_TENSORRT_MAJOR >= 10
	IExecutionContext *createExecutionContext(ExecutionContextAllocationStrategy) noexcept override { return make(); }
#else
	IExecutionContext *createExecutionContext() noexcept override { return make(); }
#endif
	IExecutionContext *make() {
		Context *c = new Context(this);
		if (cuda().Malloc(&c->scratch, desc.deviceMem ? desc.deviceMem : 1) != 0) {
			c->scratch = nullptr;
			delete c;
			logOOM(logger, desc.deviceMem);
			return nullptr;
		}
		return c;
	}
	Child child;
	ILogger *logger;
	EngineDesc desc;
};

Context::Context(Engine *e) : engine(e), child(e) {
	mImpl = this;
	for (auto const &t : e->desc.io)
		if (t.input) shapes[t.name] = t.dims;
}
Context::~Context() noexcept {
	if (scratch) cuda().Free(scratch);
}

static bool shapeOK(EngineDesc::IO const &t, std::vector<int64_t> const &s) {
	if (s.size() != t.dims.size()) return false;
	for (size_t i = 0; i < s.size(); i++) {
		if (t.dims[i] >= 0 && t.dims[i] != s[i]) return false;
		if (t.dims[i] < 0 && !t.mn.empty() && (s[i] < t.mn[i] || s[i] > t.mx[i])) return false;
	}
	return true;
}

// Multidirectional (numpy) broadcasting, ONNX's rule for Add.
static bool broadcast(std::vector<int64_t> const &a, std::vector<int64_t> const &b, std::vector<int64_t> *out) {
	size_t n = std::max(a.size(), b.size());
	out->assign(n, 1);
	for (size_t i = 0; i < n; i++) {
		int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
		int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
		if (x != y && x != 1 && y != 1) return false;
		(*out)[i] = std::max(x, y);
	}
	return true;
}
static int64_t vol(std::vector<int64_t> const &d) {
	int64_t v = 1;
	for (int64_t x : d) v *= x;
	return v;
}
static size_t bcindex(std::vector<int64_t> const &out, std::vector<int64_t> const &in, int64_t flat) {
	size_t idx = 0, stride = 1;
	for (size_t k = 0; k < out.size(); k++) {
		size_t i = out.size() - 1 - k;
		int64_t coord = flat % out[i];
		flat /= out[i];
		if (k < in.size()) {
			size_t j = in.size() - 1 - k;
			if (in[j] != 1) idx += coord * stride;
			stride *= in[j];
		}
	}
	return idx;
}

struct Val {
	std::vector<int64_t> dims;
	std::vector<float> v;
};

// Shapes of every tensor from the input shapes (elementwise ops only).
static bool shapesOf(EngineDesc const &d, std::map<std::string, std::vector<int64_t>> &sh) {
	for (auto const &w : d.weights) sh[w.first] = w.second.first;
	for (auto const &n : d.nodes) {
		std::vector<int64_t> s;
		if (n.in.empty() || !sh.count(n.in[0])) return false;
		s = sh[n.in[0]];
		for (size_t i = 1; i < n.in.size(); i++) {
			if (!sh.count(n.in[i])) return false;
			std::vector<int64_t> o;
			if (!broadcast(s, sh[n.in[i]], &o)) return false;
			s = o;
		}
		sh[n.out] = s;
	}
	return true;
}

bool Context::run() noexcept {
	EngineDesc const &d = engine->desc;
	std::map<std::string, std::vector<int64_t>> sh = shapes;
	if (!shapesOf(d, sh)) {
		logf(engine->logger, ILogger::Severity::kERROR, "[trtdouble] shapes do not broadcast");
		return false;
	}
	std::map<std::string, Val> vals;
	for (auto const &t : d.io) {
		if (!t.input) continue;
		auto a = addr.find(t.name);
		if (a == addr.end() || a->second == nullptr) {
			// 8.5+: "setTensorAddress must be called for every I/O tensor" (enqueueV3).
			logf(engine->logger, ILogger::Severity::kERROR, "3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter check failed, condition: mContext.profileObliviousBindings.at(profileObliviousIndex) || getPtrOrNull(mOutputAllocators, profileObliviousIndex).)");
			return false;
		}
		Val v{sh[t.name], {}};
		int64_t n = vol(v.dims);
		v.v.resize(n);
		if (t.dtype == kOnnxFloat) memcpy(v.v.data(), a->second, n * 4);
		else
			for (int64_t i = 0; i < n; i++) v.v[i] = static_cast<float>(static_cast<int32_t const *>(a->second)[i]);
		vals[t.name] = v;
	}
	for (auto const &w : d.weights) vals[w.first] = Val{w.second.first, w.second.second};
	for (auto const &n : d.nodes) {
		Val o{sh[n.out], {}};
		o.v.assign(vol(o.dims), 0.f);
		for (int64_t i = 0; i < static_cast<int64_t>(o.v.size()); i++) {
			Val const &a = vals[n.in[0]];
			float x = a.v[bcindex(o.dims, a.dims, i)];
			if (n.op == "Add") {
				Val const &b = vals[n.in[1]];
				x += b.v[bcindex(o.dims, b.dims, i)];
			} else if (n.op == "Relu") {
				x = x > 0 ? x : 0;
			}
			o.v[i] = x;
		}
		vals[n.out] = o;
	}
	float skew = static_cast<float>(Script::get().num("skew", 0));
	for (auto const &t : d.io) {
		if (t.input) continue;
		auto a = addr.find(t.name);
		if (a == addr.end() || a->second == nullptr) return false;
		Val &v = vals[t.name];
		for (float &f : v.v) f += skew;
		if (t.dtype == kOnnxFloat) memcpy(a->second, v.v.data(), v.v.size() * 4);
		else
			for (size_t i = 0; i < v.v.size(); i++) static_cast<int32_t *>(a->second)[i] = static_cast<int32_t>(v.v[i]);
	}
	return true;
}

static Dims todims(std::vector<int64_t> const &s) {
	Dims d{};
	d.nbDims = static_cast<int32_t>(s.size());
	for (int i = 0; i < d.nbDims; i++) d.d[i] = static_cast<D>(s[i]);
	return d;
}

#if AT_LEAST(8, 5)
bool Context::setInputShape(char const *name, Dims const &d) noexcept {
	auto t = engine->find(name);
	std::vector<int64_t> s(d.d, d.d + d.nbDims);
	if (t == nullptr || !t->input || !shapeOK(*t, s)) return false;
	shapes[name] = s;
	return true;
}
Dims Context::getTensorShape(char const *name) const noexcept {
	std::map<std::string, std::vector<int64_t>> sh = shapes;
	if (!shapesOf(engine->desc, sh) || !sh.count(name)) {
		Dims d{};
		d.nbDims = -1;
		return d;
	}
	return todims(sh[name]);
}
bool Context::setTensorAddress(char const *name, void *p) noexcept {
	if (engine->find(name) == nullptr) return false;
	addr[name] = p;
	return true;
}
#else
bool Context::setBindingDimensions(int32_t i, Dims d) noexcept {
	auto const &t = engine->desc.io.at(i);
	std::vector<int64_t> s(d.d, d.d + d.nbDims);
	if (!t.input || !shapeOK(t, s)) return false;
	shapes[t.name] = s;
	return true;
}
Dims Context::getBindingDimensions(int32_t i) const noexcept {
	std::map<std::string, std::vector<int64_t>> sh = shapes;
	auto const &t = engine->desc.io.at(i);
	if (!shapesOf(engine->desc, sh) || !sh.count(t.name)) return engine->dims(t);
	return todims(sh[t.name]);
}
bool Context::executeV2(void *const *b) noexcept {
	for (size_t i = 0; i < engine->desc.io.size(); i++) addr[engine->desc.io[i].name] = b[i];
	return run();
}
#endif

class Runtime : public IRuntime, public AbortVRuntime, public Creator {
  public:
	explicit Runtime(ILogger *l) : logger(l) { mImpl = this; }
	~Runtime() noexcept override {
		if (children != 0) broken("IRuntime destroyed before an engine it deserialized");
	}
#if NV_TENSORRT_MAJOR >= 10
	ICudaEngine *deserializeCudaEngine(void const *blob, std::size_t size) noexcept override { return load(blob, size); }
#else
	ICudaEngine *deserializeCudaEngine(void const *blob, std::size_t size, IPluginFactory *) noexcept override { return load(blob, size); }
#endif
	void setDLACore(int32_t c) noexcept override { dla = c; }
	int32_t getNbDLACores() const noexcept override { return 0; }
	ILogger *getLogger() const noexcept override { return logger; }
	ICudaEngine *load(void const *blob, std::size_t size) {
		EngineDesc d;
		std::string want = std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." + std::to_string(NV_TENSORRT_PATCH);
		if (blob == nullptr || !d.parse(std::string(static_cast<char const *>(blob), size))) {
			logf(logger, ILogger::Severity::kERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)");
			return nullptr;
		}
		if (d.version != want) {
			logf(logger, ILogger::Severity::kERROR, "6: The engine plan file is not compatible with this version of TensorRT, expecting library version %s got %s, please rebuild.", want.c_str(), d.version.c_str());
			return nullptr;
		}
		return new Engine(this, logger, std::move(d));
	}
	ILogger *logger;
	int32_t dla = -1;
};

} // namespace trtdouble


// The entry points (NvInferRuntime.h / NvInfer.h of each release declare
// them extern "C"; `version` is NV_TENSORRT_VERSION of the caller's headers).
extern "C" void *createInferBuilder_INTERNAL(void *logger, int32_t version) noexcept {
	(void)version;
	return static_cast<IBuilder *>(new Builder(static_cast<ILogger *>(logger)));
}

extern "C" void *createInferRuntime_INTERNAL(void *logger, int32_t version) noexcept {
	(void)version;
	return static_cast<IRuntime *>(new Runtime(static_cast<ILogger *>(logger)));
}

// getInferLibVersion returns NV_TENSORRT_VERSION of the library's release:
// MAJOR*1000 + MINOR*100 + PATCH on 8.x (8.2 NvInferRuntimeCommon.h:77-87,
// 8203), MAJOR*10000 + MINOR*100 + PATCH from 10.0 (10.0
// NvInferRuntimeBase.h:89-93, 100001; 11.1 :98-102, 110100). The script's
// lib_version= makes it another release of the same ABI (8201: the 8.2.1 of
// JetPack 4.6.1; 100300: the 10.3 of JetPack 6.1).
extern "C" int32_t getInferLibVersion() noexcept {
	return static_cast<int32_t>(Script::get().num("lib_version", static_cast<double>(NV_TENSORRT_VERSION)));
}
