// Fuzz target: a checkpoint file to a model (the metadata naming the model,
// its RPU config, analog seed and optimizer; the tensors loaded into it).
#include "convert/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aimc::fuzz::input_file(data, size);
  aimc::fuzz::expect_aimc_errors_only([&] { (void)aimc::load_checkpoint(path); });
  return 0;
}
