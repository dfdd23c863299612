// The one function libaimc_cuda.so exports for libaimc (kernels/cuda/
// backend.h): it fills libaimc's table with this library's entry points.
#include "kernels/cuda/backend.h"

extern "C" __attribute__((visibility("default"))) bool aimc_cuda_register(aimc::cuda::Backend* table,
                                                                          std::size_t table_bytes) {
  // Another aimc build's table has another size or layout: refuse it.
  if (table == nullptr || table_bytes != sizeof(aimc::cuda::Backend)) return false;
#define AIMC_CUDA_REGISTER(name) table->name = &aimc::cuda::name;
  AIMC_CUDA_ENTRY_POINTS(AIMC_CUDA_REGISTER)
#undef AIMC_CUDA_REGISTER
  return true;
}
