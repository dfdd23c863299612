// The one seam between libaimc and its CUDA code. The kernels (kernels/cuda/
// *.cu, declared in cuda_api.h) live in their own shared library,
// libaimc_cuda.so, so that a CPU-only program linked against a CUDA build never
// needs the CUDA runtime. libaimc loads that library with dlopen the first time
// a GPU is asked for, and its one exported function, aimc_cuda_register, fills
// a table of pointers to the entry points (the list below, written once).
// libaimc calls the kernels only through backend().
#pragma once

#include <cstddef>

#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {

// Every entry point of cuda_api.h that libaimc calls: X(name) per function.
#define AIMC_CUDA_ENTRY_POINTS(X)                                                                             \
  X(available) X(device_count) X(device_malloc) X(device_free) X(release_cached_memory) X(copy_host_to_device) \
  X(copy_device_to_host) X(copy_device_to_device) X(synchronize) X(fill) X(axpy) X(scale) X(row_abs_max)      \
  X(gemm) X(analog_mvm_forward) X(analog_mvm_backward) X(draw_analog_line_values) X(draw_weight_read_asymmetry) \
  X(input_range_clip) X(input_range_backward) X(input_range_data_stats) X(lightning_forward) X(fill_normal)   \
  X(lightning_dac) X(lightning_modify_weights) X(lightning_tile_outputs) X(pcm_program)                        \
  X(pcm_drift) X(pair_to_conductances) X(pair_to_weights) X(table_to_conductances) X(single_to_conductances)  \
  X(single_to_weights) X(column_abs_sums) X(drift_compensate) X(table_drift_exponent) X(reram_program)        \
  X(reram_drift)                                                                                              \
  X(weight_modifier) X(weight_clip) X(weight_remap) X(pulsed_update) X(pulsed_post_update)                    \
  X(sgd_step) X(adam_step)                                                                                    \
  X(engine_unary) X(engine_binary) X(engine_sum) X(engine_softmax) X(engine_softmax_backward)                 \
  X(engine_cross_entropy) X(engine_cross_entropy_backward) X(engine_bernoulli)                                \
  X(engine_plane_mean) X(max_pool_forward) X(max_pool_backward) X(avg_pool_forward) X(avg_pool_backward)      \
  X(im2col) X(col2im) X(engine_squared_error_mean)                                                           \
  X(engine_strided_assign) X(batch_norm_stats) X(batch_norm_apply) X(batch_norm_backward) X(use_device)       \
  X(current_device) X(device_name)

struct Backend {
#define AIMC_CUDA_BACKEND_MEMBER(name) decltype(&cuda::name) name = nullptr;
  AIMC_CUDA_ENTRY_POINTS(AIMC_CUDA_BACKEND_MEMBER)
#undef AIMC_CUDA_BACKEND_MEMBER
};

// The library's registration function: fills *table when table_bytes ==
// sizeof(Backend) (the same aimc build) and returns true.
using RegisterFunction = bool (*)(Backend* table, std::size_t table_bytes);

// The file name libaimc looks for, and the environment variable that names
// another path for it.
inline constexpr const char* kBackendLibrary = "libaimc_cuda.so";
inline constexpr const char* kBackendLibraryVariable = "AIMC_CUDA_LIBRARY";

// The entry points, loading the library on first use: $AIMC_CUDA_LIBRARY
// when set, else libaimc_cuda.so next to the object holding libaimc's code
// (libaimc.so or a program linked with libaimc.a), then through the loader's
// search path, then in the install libdir. Throws DeviceError naming the
// library and why it did not load (or that this build has no CUDA).
const Backend& backend();

// True when the backend loads and reports a usable GPU; never throws.
bool gpu_available();

// Uses this registration function instead of loading the library: for a
// program that links the kernels in (tests/cuda_emulation). Call it before
// anything asks for the GPU.
void use_backend(RegisterFunction register_function);

}  // namespace aimc::cuda

// Defined by libaimc_cuda.so (kernels/cuda/register.cpp): the name dlsym finds.
extern "C" bool aimc_cuda_register(aimc::cuda::Backend* table, std::size_t table_bytes);
