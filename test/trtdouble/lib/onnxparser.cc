// onnxparser.cc: the libnvonnxparser.so.N of the TensorRT test double.
// Reads the ONNX protobuf itself (a small wire-format reader), adds the
// graph's inputs and marks its outputs through the INetworkDefinition the
// worker passes, and hands the elementwise nodes it knows (Identity, Add,
// Relu) and the initializers' values to the network double. It owns the
// weights until it is destroyed, as onnx-tensorrt's parser does (NVIDIA/
// TensorRT release/8.2 samples/common/sampleEngines.h:59: the parser "holds
// the weights for the network"). Any other op fails the way onnx-tensorrt
// fails an op without an importer or plugin, naming the node.
//
// Test-only, never shipped. See README.md.
#include <NvInfer.h>
#include <NvOnnxParser.h>

#include <deque>
#include <fstream>
#include <iterator>
#include <memory>

#include "double.h"

using namespace nvinfer1;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include "abort_parser.h"
namespace trtdouble {
using nvonnxparser::IParserError;
using PErr = nvonnxparser::ErrorCode;
using namespace nvonnxparser::trtdouble_gen;
} // namespace trtdouble
#pragma GCC diagnostic pop

namespace trtdouble {

[[noreturn]] void die(char const *what) noexcept {
	fprintf(stderr, "trtdouble: %s: not implemented by the TensorRT test double (the worker called it)\n", what);
	fflush(stderr);
	abort();
}

/* ---- protobuf wire format ----------------------------------------------- */

struct PB {
	uint8_t const *p, *end;
	bool ok = true;
	uint64_t varint() {
		uint64_t v = 0;
		for (int s = 0; s < 64; s += 7) {
			if (p >= end) {
				ok = false;
				return 0;
			}
			uint8_t b = *p++;
			v |= static_cast<uint64_t>(b & 0x7f) << s;
			if (!(b & 0x80)) return v;
		}
		ok = false;
		return 0;
	}
	// next field: number and wire type; false at the end.
	bool next(int *field, int *wt) {
		if (p >= end || !ok) return false;
		uint64_t k = varint();
		*field = static_cast<int>(k >> 3);
		*wt = static_cast<int>(k & 7);
		return ok;
	}
	PB bytes() {
		uint64_t n = varint();
		if (!ok || n > static_cast<uint64_t>(end - p)) {
			ok = false;
			return PB{end, end};
		}
		PB s{p, p + n};
		p += n;
		return s;
	}
	std::string str() {
		PB s = bytes();
		return std::string(reinterpret_cast<char const *>(s.p), s.end - s.p);
	}
	void skip(int wt) {
		switch (wt) {
		case 0: varint(); break;
		case 1: p += 8; break;
		case 2: bytes(); break;
		case 5: p += 4; break;
		default: ok = false;
		}
		if (p > end) ok = false;
	}
};

struct OnnxTensorInfo {
	std::string name;
	int elem = 0;
	std::vector<int64_t> dims; // -1 for symbolic dims
};
struct OnnxNode {
	std::string op, name;
	std::vector<std::string> in, out;
};
struct OnnxInit {
	std::string name;
	int type = 0;
	std::vector<int64_t> dims;
	std::vector<float> values;
};
struct OnnxGraph {
	std::vector<OnnxNode> nodes;
	std::vector<OnnxInit> inits;
	std::vector<OnnxTensorInfo> inputs, outputs;
};

// ValueInfoProto: 1 name, 2 type (TypeProto: 1 tensor_type: 1 elem_type,
// 2 shape: 1 dim: 1 dim_value, 2 dim_param). onnx/onnx.proto.
static OnnxTensorInfo valueInfo(PB pb) {
	OnnxTensorInfo t;
	int f, wt;
	while (pb.next(&f, &wt)) {
		if (f == 1 && wt == 2) t.name = pb.str();
		else if (f == 2 && wt == 2) {
			PB type = pb.bytes();
			while (type.next(&f, &wt)) {
				if (f != 1 || wt != 2) {
					type.skip(wt);
					continue;
				}
				PB tt = type.bytes();
				while (tt.next(&f, &wt)) {
					if (f == 1 && wt == 0) t.elem = static_cast<int>(tt.varint());
					else if (f == 2 && wt == 2) {
						PB shape = tt.bytes();
						while (shape.next(&f, &wt)) {
							if (f != 1 || wt != 2) {
								shape.skip(wt);
								continue;
							}
							PB dim = shape.bytes();
							int64_t v = -1;
							while (dim.next(&f, &wt)) {
								if (f == 1 && wt == 0) v = static_cast<int64_t>(dim.varint());
								else dim.skip(wt);
							}
							t.dims.push_back(v);
						}
					} else tt.skip(wt);
				}
			}
		} else pb.skip(wt);
	}
	return t;
}

// TensorProto: 1 dims, 2 data_type, 4 float_data, 8 name, 9 raw_data.
static OnnxInit initializer(PB pb) {
	OnnxInit t;
	int f, wt;
	std::string raw;
	while (pb.next(&f, &wt)) {
		if (f == 1 && wt == 0) t.dims.push_back(static_cast<int64_t>(pb.varint()));
		else if (f == 1 && wt == 2) {
			PB d = pb.bytes();
			while (d.p < d.end && d.ok) t.dims.push_back(static_cast<int64_t>(d.varint()));
		} else if (f == 2 && wt == 0) t.type = static_cast<int>(pb.varint());
		else if (f == 4 && wt == 2) {
			PB d = pb.bytes();
			for (; d.p + 4 <= d.end; d.p += 4) {
				float x;
				memcpy(&x, d.p, 4);
				t.values.push_back(x);
			}
		} else if (f == 8 && wt == 2) t.name = pb.str();
		else if (f == 9 && wt == 2) raw = pb.str();
		else pb.skip(wt);
	}
	if (!raw.empty() && t.type == kOnnxFloat) {
		t.values.resize(raw.size() / 4);
		memcpy(t.values.data(), raw.data(), t.values.size() * 4);
	}
	return t;
}

static bool parseModel(std::string const &buf, OnnxGraph *g) {
	PB m{reinterpret_cast<uint8_t const *>(buf.data()), reinterpret_cast<uint8_t const *>(buf.data()) + buf.size()};
	int f, wt;
	bool graph = false;
	while (m.next(&f, &wt)) {
		if (f != 7 || wt != 2) {
			m.skip(wt);
			continue;
		}
		graph = true;
		PB gr = m.bytes();
		while (gr.next(&f, &wt)) {
			if (f == 1 && wt == 2) {
				PB n = gr.bytes();
				OnnxNode node;
				while (n.next(&f, &wt)) {
					if (f == 1 && wt == 2) node.in.push_back(n.str());
					else if (f == 2 && wt == 2) node.out.push_back(n.str());
					else if (f == 3 && wt == 2) node.name = n.str();
					else if (f == 4 && wt == 2) node.op = n.str();
					else n.skip(wt);
				}
				g->nodes.push_back(node);
			} else if (f == 5 && wt == 2) g->inits.push_back(initializer(gr.bytes()));
			else if (f == 11 && wt == 2) g->inputs.push_back(valueInfo(gr.bytes()));
			else if (f == 12 && wt == 2) g->outputs.push_back(valueInfo(gr.bytes()));
			else gr.skip(wt);
		}
		if (!gr.ok) return false;
	}
	return m.ok && graph;
}

/* ---- the parser ----------------------------------------------------------- */

class ParserError : public AbortIParserError {
  public:
	PErr code() const override { return c; }
	char const *desc() const override { return d.c_str(); }
	char const *file() const override { return fl.c_str(); }
	int line() const override { return ln; }
	char const *func() const override { return fn.c_str(); }
	int node() const override { return nd; }
#if NV_TENSORRT_MAJOR >= 10
	char const *nodeName() const override { return nname.c_str(); }
	char const *nodeOperator() const override { return nop.c_str(); }
	char const *const *localFunctionStack() const override { return nullptr; }
	int32_t localFunctionStackSize() const override { return 0; }
#endif
	PErr c;
	std::string d, fl, fn, nname, nop;
	int ln = 0, nd = -1;
};

static DataType trtType(int t) {
	switch (t) {
	case kOnnxFloat16: return DataType::kHALF;
	case kOnnxInt8: return DataType::kINT8;
	case kOnnxInt32: return DataType::kINT32;
	case kOnnxBool: return DataType::kBOOL;
#if NV_TENSORRT_MAJOR >= 10
	case kOnnxInt64: return DataType::kINT64;
#else
	case kOnnxInt64: return DataType::kINT32; // 8.x imports INT64 as INT32 ("Your ONNX model has been generated with INT64 weights")
#endif
	default: return DataType::kFLOAT;
	}
}

// The network's ownership hook: the parser is created on a network and
// must be destroyed first (release/8.2 samples/common/sampleEngines.h:48-51).
extern "C" void trtdouble_network_parser_born(void *network);
extern "C" void trtdouble_network_parser_died(void *network);

class Parser : public AbortIParser {
  public:
	Parser(INetworkDefinition *n, ILogger *l) : net(n), logger(l) { trtdouble_network_parser_born(net); }
	~Parser() noexcept override { trtdouble_network_parser_died(net); }
#if NV_TENSORRT_MAJOR < 10
	void destroy() override { delete this; }
	bool parseFromFile(char const *path, int verbosity) override { return fromFile(path, verbosity); }
	bool parse(void const *data, size_t size, char const *) override { return fromBytes(std::string(static_cast<char const *>(data), size)); }
	bool supportsOperator(char const *op) const override { return known(op); }
	int getNbErrors() const override { return static_cast<int>(errors.size()); }
	IParserError const *getError(int i) const override { return i >= 0 && i < getNbErrors() ? &errors[i] : nullptr; }
	void clearErrors() override { errors.clear(); }
#else
	bool parseFromFile(char const *path, int verbosity) noexcept override { return fromFile(path, verbosity); }
	bool parse(void const *data, size_t size, char const *) noexcept override { return fromBytes(std::string(static_cast<char const *>(data), size)); }
	bool supportsOperator(char const *op) const noexcept override { return known(op); }
	int getNbErrors() const noexcept override { return static_cast<int>(errors.size()); }
	IParserError const *getError(int i) const noexcept override { return i >= 0 && i < getNbErrors() ? &errors[i] : nullptr; }
	void clearErrors() noexcept override { errors.clear(); }
#endif

  private:
	static bool known(std::string const &op) { return op == "Identity" || op == "Add" || op == "Relu"; }
	void log(ILogger::Severity s, std::string const &m) {
		if (logger) logger->log(s, m.c_str());
	}
	bool fromFile(char const *path, int) {
		std::ifstream in(path, std::ios::binary);
		if (!in) {
			// 8.2-GA ModelImporter.cpp:776 / 10.0-GA: LOG_ERROR("Failed to open file: " << onnxModelFile)
			log(ILogger::Severity::kERROR, std::string("Failed to open file: ") + path);
			return false;
		}
		std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
		return fromBytes(buf);
	}
	void fail(PErr c, std::string const &desc, int node, OnnxGraph const &g) {
		ParserError e;
		e.c = c;
		e.d = desc;
		e.nd = node;
#if NV_TENSORRT_MAJOR < 10
		e.fl = "builtin_op_importers.cpp"; // 8.2-GA builtin_op_importers.cpp:4788 (FallbackPluginImporter)
		e.ln = 4788;
#else
		e.fl = "onnxOpImporters.cpp"; // 10.0-GA onnxOpImporters.cpp:6369 (FallbackPluginImporter)
		e.ln = 6369;
#endif
		e.fn = "importFallbackPluginImporter";
		if (node >= 0) {
			e.nname = g.nodes[node].name;
			e.nop = g.nodes[node].op;
		}
		errors.push_back(e);
	}
	bool fromBytes(std::string const &buf) {
		OnnxGraph g;
		if (!parseModel(buf, &g)) {
			ParserError e;
			e.c = PErr::kMODEL_DESERIALIZE_FAILED;
			e.d = "Failed to parse the ONNX model.";
			e.fl = "ModelImporter.cpp";
			e.fn = "parse";
			errors.push_back(e);
			log(ILogger::Severity::kERROR, "ERROR: ModelImporter.cpp In function parse:\n[3] Failed to parse the ONNX model.");
			return false;
		}
		std::string reject = Script::get().str("reject_node");
		for (size_t i = 0; i < g.nodes.size(); i++) {
			OnnxNode const &n = g.nodes[i];
			if (known(n.op) && (reject.empty() || n.name != reject) && !n.out.empty()) continue;
			fail(PErr::kUNSUPPORTED_NODE, "Assertion failed: creator && \"Plugin not found, are the plugin name, version, and namespace correct?\"", static_cast<int>(i), g);
			// The log lines of parseFromFile (8.2-GA ModelImporter.cpp:792-798, 10.0-GA :826-835).
			log(ILogger::Severity::kINFO, "No importer registered for op: " + n.op + ". Attempting to import as plugin.");
			log(ILogger::Severity::kERROR, "While parsing node number " + std::to_string(i) + " [" + n.op + " -> \"" + (n.out.empty() ? "" : n.out[0]) + "\"]:");
			ParserError const &e = errors.back();
			log(ILogger::Severity::kERROR, "ERROR: " + e.fl + ":" + std::to_string(e.ln) + " In function " + e.fn + ":\n[" +
			                                   std::to_string(static_cast<int>(e.c)) + "] " + e.d);
			return false;
		}
		// Initializers are weights, not inputs (older IR versions list them in both).
		for (auto &w : g.inits) {
			weights.emplace_back(std::move(w.values));
			std::vector<float> const &v = weights.back();
			trtdouble_network_add_weights(net, w.name.c_str(), v.data(), static_cast<int64_t>(v.size()), static_cast<int>(w.dims.size()), w.dims.data());
		}
		for (auto const &in : g.inputs) {
			bool isinit = false;
			for (auto const &w : g.inits) isinit = isinit || w.name == in.name;
			if (isinit) continue;
			Dims d{};
			d.nbDims = static_cast<int32_t>(in.dims.size());
			for (int k = 0; k < d.nbDims; k++) d.d[k] = static_cast<decltype(d.d[0] + 0)>(in.dims[k]);
			net->addInput(in.name.c_str(), trtType(in.elem), d);
		}
		for (auto const &n : g.nodes) {
			std::vector<char const *> ins;
			for (auto const &s : n.in) ins.push_back(s.c_str());
			trtdouble_network_add_node(net, n.op.c_str(), n.name.c_str(), static_cast<int>(ins.size()), ins.data(), n.out[0].c_str());
		}
		for (auto const &o : g.outputs) {
			ITensor *t = nullptr;
			for (int i = 0; i < net->getNbInputs() && !t; i++)
				if (strcmp(net->getInput(i)->getName(), o.name.c_str()) == 0) t = net->getInput(i);
			if (t == nullptr) t = outputTensor(o.name);
			if (t == nullptr) {
				ParserError e;
				e.c = PErr::kINVALID_GRAPH;
				e.d = "output " + o.name + " is not produced by any node";
				errors.push_back(e);
				return false;
			}
			net->markOutput(*t);
		}
		return true;
	}
	ITensor *outputTensor(std::string const &name);

	INetworkDefinition *net;
	ILogger *logger;
	std::vector<ParserError> errors;
	std::deque<std::vector<float>> weights; // stable addresses: the network points into them
};

} // namespace trtdouble

extern "C" void *trtdouble_network_tensor(void *network, char const *name);

nvinfer1::ITensor *trtdouble::Parser::outputTensor(std::string const &name) {
	return static_cast<ITensor *>(trtdouble_network_tensor(net, name.c_str()));
}

#if NV_TENSORRT_MAJOR >= 10
#define PARSER_NOEXCEPT noexcept
#else
#define PARSER_NOEXCEPT
#endif
// onnx-tensorrt 8.2-GA NvOnnxParser.cpp:8-13 (and every later release):
// a new ModelImporter on the network and logger; `version` is ignored.
extern "C" void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) PARSER_NOEXCEPT {
	(void)version;
	return static_cast<nvonnxparser::IParser *>(new trtdouble::Parser(static_cast<INetworkDefinition *>(network), static_cast<ILogger *>(logger)));
}

// onnx-tensorrt 8.2-GA NvOnnxParser.cpp:15-18, 10.0-GA NvOnnxParser.cpp:24-27:
// return NV_ONNX_PARSER_VERSION, 0.1.0 = 100 in every release
// (NvOnnxParser.h: NV_ONNX_PARSER_MAJOR 0, MINOR 1, PATCH 0).
extern "C" int getNvOnnxParserVersion() PARSER_NOEXCEPT { return NV_ONNX_PARSER_VERSION; }
