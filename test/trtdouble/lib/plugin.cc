// plugin.cc: the libnvinfer_plugin.so.N of the TensorRT test double. The
// double has no plugins; initLibNvInferPlugins succeeds as the real one does
// when its creators register (NVIDIA/TensorRT release/8.2
// plugin/api/InferPlugin.cpp: initLibNvInferPlugins returns true).
// Test-only, never shipped. See README.md.
#include <NvInfer.h>
#include <NvInferPlugin.h>

extern "C" bool initLibNvInferPlugins(void *logger, char const *libNamespace) {
	if (logger != nullptr) static_cast<nvinfer1::ILogger *>(logger)->log(nvinfer1::ILogger::Severity::kVERBOSE, "[trtdouble] initLibNvInferPlugins: no plugins");
	(void)libNamespace;
	return true;
}
