// misuse.cc: breaks one of TensorRT's ownership rules against the test
// double, to show that the double turns each violation into a sanitizer
// report (TestOwnershipViolations runs it). Test-only.
//
// usage: trtdouble-misuse MODE   (MODE: ok, parser-after-network,
//        weights-after-parser, engine-after-runtime, leak-host-memory,
//        builder-before-network)
#include <NvInfer.h>
#include <NvOnnxParser.h>

#include <stdio.h>
#include <string.h>

#include <string>

using namespace nvinfer1;

class Logger : public ILogger {
	void log(Severity s, AsciiChar const *msg) noexcept override {
		if (s <= Severity::kWARNING) fprintf(stderr, "[TRT] %s\n", msg);
	}
};

// ONNX protobuf by hand: y = x + w, x and w float[1], w an initializer.
static std::string varint(uint64_t v) {
	std::string s;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		s += static_cast<char>(b | (v ? 0x80 : 0));
	} while (v);
	return s;
}
static std::string field(int n, std::string const &bytes) { return varint(static_cast<uint64_t>(n) << 3 | 2) + varint(bytes.size()) + bytes; }
static std::string fieldv(int n, uint64_t v) { return varint(static_cast<uint64_t>(n) << 3) + varint(v); }
static std::string valueInfo(char const *name) {
	std::string dim = field(1, fieldv(1, 1));
	std::string tensor = fieldv(1, 1) + field(2, dim);
	return field(1, name) + field(2, field(1, tensor));
}
static std::string model() {
	std::string node = field(1, "x") + field(1, "w") + field(2, "y") + field(3, "add") + field(4, "Add");
	float one = 1.f;
	std::string init = fieldv(1, 1) + fieldv(2, 1) + field(8, "w") + field(9, std::string(reinterpret_cast<char *>(&one), 4));
	std::string graph = field(1, node) + field(2, "g") + field(5, init) + field(11, valueInfo("x")) + field(12, valueInfo("y"));
	return fieldv(1, 7) + field(7, graph);
}

extern "C" void *createInferBuilder_INTERNAL(void *, int32_t) noexcept;
extern "C" void *createInferRuntime_INTERNAL(void *, int32_t) noexcept;

int main(int argc, char **argv) {
	std::string mode = argc > 1 ? argv[1] : "ok";
	Logger logger;
	IBuilder *b = static_cast<IBuilder *>(createInferBuilder_INTERNAL(&logger, NV_TENSORRT_VERSION));
	IBuilderConfig *c = b->createBuilderConfig();
	INetworkDefinition *n = b->createNetworkV2(0);
	auto *p = nvonnxparser::createParser(*n, logger);
	std::string m = model();
	if (!p->parse(m.data(), m.size())) {
		fprintf(stderr, "parse failed\n");
		return 2;
	}
	if (mode == "parser-after-network") {
		delete n; // the network goes first: the parser's destructor touches it
		delete p;
		return 0;
	}
	if (mode == "weights-after-parser") delete p; // the build reads the weights the parser held
	if (mode == "builder-before-network") {
		delete b;
		return 0;
	}
	IHostMemory *plan = b->buildSerializedNetwork(*n, *c);
	if (plan == nullptr) return 3;
	if (mode != "weights-after-parser") delete p;
	delete n;
	delete c;
	delete b;
	IRuntime *rt = static_cast<IRuntime *>(createInferRuntime_INTERNAL(&logger, NV_TENSORRT_VERSION));
	ICudaEngine *e = rt->deserializeCudaEngine(plan->data(), plan->size());
	if (mode != "leak-host-memory") delete plan;
	if (e == nullptr) return 4;
	if (mode == "engine-after-runtime") {
		delete rt;
		delete e;
		return 0;
	}
	delete e;
	delete rt;
	printf("ok\n");
	return 0;
}
