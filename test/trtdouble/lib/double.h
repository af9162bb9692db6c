// double.h: what the TensorRT test double's libraries share: the per-test
// script, the engine blob, and the hand-over between the parser double and
// the network double. Test-only; see README.md.
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace trtdouble {

// The script of one test: TRTD_DOUBLE="key=value;key=value" and/or
// TRTD_DOUBLE_FILE=path (one key=value a line). Keys (all optional):
//   gpu_mem=BYTES       total device memory of the CUDA double (default 4 GiB, a Nano)
//   cuda=ok|eperm|nodriver  eperm: the device nodes are not accessible (Jetson
//                       without group video); nodriver: no driver
//   build_ms=N          time one build takes (spread over its steps; timing-cache hits are free)
//   warn=tactic         memory warnings in a build that succeeds
//   bug=use-after-free  a heap-use-after-free in the build (the harness must see it)
//   fail=notactic       the build fails: no implementation for a node, no memory evidence
//   skew=F              add F to every output element (a deliberately wrong engine)
//   reject_node=NAME    the parser rejects the node NAME
//   cuda_runtime=N      cudaRuntimeGetVersion (default per library soname)
//   lib_version=N       getInferLibVersion (default NV_TENSORRT_VERSION of the headers)
struct Script {
	std::map<std::string, std::string> kv;
	static Script const &get() {
		static Script s = load();
		return s;
	}
	std::string str(char const *k, char const *def = "") const {
		auto it = kv.find(k);
		return it == kv.end() ? def : it->second;
	}
	double num(char const *k, double def) const {
		auto it = kv.find(k);
		return it == kv.end() ? def : strtod(it->second.c_str(), nullptr);
	}

  private:
	static void add(Script &s, std::string const &item) {
		size_t eq = item.find('=');
		if (eq == std::string::npos) return;
		std::string k = item.substr(0, eq), v = item.substr(eq + 1);
		while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
		while (!k.empty() && (k.front() == ' ' || k.front() == '\t')) k.erase(0, 1);
		if (!k.empty()) s.kv[k] = v;
	}
	static Script load() {
		Script s;
		if (char const *f = getenv("TRTD_DOUBLE_FILE")) {
			std::ifstream in(f);
			std::string line;
			while (std::getline(in, line))
				if (!line.empty() && line[0] != '#') add(s, line);
		}
		if (char const *e = getenv("TRTD_DOUBLE")) {
			std::stringstream ss(e);
			std::string item;
			while (std::getline(ss, item, ';')) add(s, item);
		}
		return s;
	}
};

// Element types the double computes with (ONNX TensorProto.DataType values).
enum { kOnnxFloat = 1, kOnnxUint8 = 2, kOnnxInt8 = 3, kOnnxInt32 = 6, kOnnxInt64 = 7, kOnnxBool = 9, kOnnxFloat16 = 10 };

} // namespace trtdouble

// The hand-over from the parser double to the network double (both ours):
// the parser adds inputs and marks outputs through the public
// INetworkDefinition API, and hands its nodes and weights over here. The
// network keeps only a pointer to each weight array: the parser owns it
// until the build ends, as TensorRT's parser does (NvOnnxParser.h: "the
// parser ... must not be destroyed until after the engine is built").
extern "C" {
// op: "Identity", "Add", "Relu". inputs are tensor or weight names.
int trtdouble_network_add_node(void *network, char const *op, char const *name, int nb_inputs, char const *const *inputs,
                               char const *output);
int trtdouble_network_add_weights(void *network, char const *name, float const *values, int64_t count, int nb_dims,
                                  int64_t const *dims);
}
