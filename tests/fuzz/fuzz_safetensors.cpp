// Fuzz target: the safetensors reader (header length, JSON header, dtypes,
// shapes, offsets, metadata).
#include "engine/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aimc::fuzz::input_file(data, size);
  aimc::fuzz::expect_aimc_errors_only([&] { (void)aimc::read_safetensors(path); });
  return 0;
}
