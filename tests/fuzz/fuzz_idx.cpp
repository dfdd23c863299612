// Fuzz target: the IDX dataset readers, raw and gzip (the first input byte
// picks images or labels; the rest is the file).
#include "fuzz_input.h"
#include "tools/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool labels = data[0] & 1;
  const bool gzip = size > 2 && data[1] == 0x1f && data[2] == 0x8b;
  const std::string path = aimc::fuzz::input_file(data + 1, size - 1, gzip ? ".gz" : "");
  aimc::fuzz::expect_aimc_errors_only([&] {
    if (labels) (void)aimc::data::read_idx_labels(path, 10);
    else (void)aimc::data::read_idx_images(path);
  });
  return 0;
}
