// Fuzz target: the ONNX importer (protobuf parsing, initializers, attributes,
// the graph's order, constant folding, shape checks), then the exporter on
// what it imported. Built only with ONNX support.
#include "convert/onnx_io.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  aimc::fuzz::expect_aimc_errors_only([&] {
    aimc::OnnxModel m = aimc::import_onnx_bytes(bytes);
    (void)aimc::export_onnx_bytes(*m.graph, m.input_shape);
  });
  return 0;
}
