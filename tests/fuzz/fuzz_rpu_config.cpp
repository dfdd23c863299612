// Fuzz target: an RPU config JSON file (every family, device and noise
// model), read as `--rpu-config FILE` does, then validated.
#include "fuzz_input.h"
#include "layers/config/presets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aimc::fuzz::input_file(data, size, ".json");
  aimc::fuzz::expect_aimc_errors_only([&] { (void)aimc::resolve_rpu_config(path); });
  return 0;
}
