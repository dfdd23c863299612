// CUDA twins of the hardware-aware-training weight transforms
// (layers/tiles/weight_transforms.h): weight modifier, clipper and remapper on
// float32 [rows, cols] row-major device buffers, in normalised weight units.
// The per-element math is kernels/analog/weight_transform_law.h, the code the
// CPU runs, and the random numbers follow the CPU's Philox layout, so results
// equal the CPU's to one float rounding (nvcc and the host compiler may fuse
// multiply-adds differently; the device clip sums are written unfused, but
// GCC may fuse the host's on some -march).
// Checked against the CPU by tests/test_cuda_transforms.cpp. Grid-stride loops.
#include <cstdint>
#include <vector>

#include "kernels/analog/weight_transform_law.h"
#include "kernels/cuda/buffer.cuh"

namespace aimc::cuda {
namespace {

constexpr unsigned kThreads = 256;  // threads per block (a multiple of the warp size)

template <class T>
std::vector<T> to_host(const T* d, std::size_t count) {
  std::vector<T> h(count);
  if (count) copy_device_to_host(h.data(), d, count * sizeof(T));
  return h;
}

// The modifier's scale a per row, in place over the row maxima m (one block):
// assumed_wmax, the row's own (per channel) or the tile's maximum, 1 for 0.
__global__ void modifier_scale_kernel(ModifierLaw law, float* m, std::int64_t rows) {
  __shared__ float partial[kThreads];
  if (!law.rel_to_actual_wmax) {
    for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) m[r] = law.assumed_wmax;
    return;
  }
  if (modifier_is_per_channel(law.kind)) {
    for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) m[r] = modifier_scale(m[r]);
    return;
  }
  float g = 0.0f;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) g = law_max(g, m[r]);
  partial[threadIdx.x] = g;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] = law_max(partial[threadIdx.x], partial[threadIdx.x + half]);
    __syncthreads();
  }
  const float a = modifier_scale(partial[0]);
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) m[r] = a;
}

// out[i] = modify_element(...) for the columns < cols_used, w[i] for the rest.
// amax is null when the type's own step does not run.
__global__ void modifier_kernel(ModifierLaw law, ModifierSections s, const float* w, std::int64_t cols,
                                std::int64_t cols_used, std::size_t n, const float* amax, float* out,
                                std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = static_cast<std::int64_t>(i) / cols;
    const std::int64_t col = static_cast<std::int64_t>(i) - row * cols;
    const float x = w[i];
    if (col >= cols_used) {
      out[i] = x;
      continue;
    }
    const float a = amax ? amax[row] : 1.0f;
    const float a0 = amax ? amax[0] : 1.0f;
    out[i] = modify_element(law, s, seed, stream, counter, i, x, a, a0);
  }
}

// Per row in column order, in double (one thread per row): the row sum.
__global__ void row_sum_kernel(const float* w, std::int64_t rows, std::int64_t cols, double* sums) {
  for (std::int64_t r = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x)
    sums[r] = row_sum_double(w + r * cols, cols);
}

// Per row: Σ (w − mean)², in double, column order (one thread per row).
__global__ void row_squared_deviation_kernel(const float* w, std::int64_t rows, std::int64_t cols, double mean,
                                             double* ss) {
  for (std::int64_t r = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x)
    ss[r] = row_squared_deviation(w + r * cols, cols, mean);
}

// LAYER_GAUSSIAN_PER_CHANNEL: clip[r] = sigma·std(row) (unbiased), capped.
__global__ void row_gaussian_clip_kernel(const float* w, std::int64_t rows, std::int64_t cols, float sigma, float cap,
                                         float* clip) {
  for (std::int64_t r = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x) {
    const float* v = w + r * cols;
    const double mean = row_sum_double(v, cols) / static_cast<double>(cols);
    clip[r] = gaussian_clip_value(row_squared_deviation(v, cols, mean), cols, sigma, cap);
  }
}

// w = clamp(w, −c, c) where c > 0; c = clip[row] when clip is given, else c_all.
__global__ void clip_kernel(float* w, std::int64_t cols, std::size_t n, const float* clip, float c_all) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float c = clip ? clip[static_cast<std::int64_t>(i) / cols] : c_all;
    if (c > 0.0f) w[i] = clip_symmetric(w[i], c);
  }
}

// w[r, :] = w[r, :]·mul[r]/div[r] (rows with both factors 1 unchanged).
__global__ void remap_kernel(float* w, std::int64_t cols, std::size_t n, const float* mul, const float* div) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = static_cast<std::int64_t>(i) / cols;
    const float mr = mul[r], dr = div[r];
    if (mr == 1.0f && dr == 1.0f) continue;
    w[i] = remap_weight(w[i], mr, dr);
  }
}

}  // namespace

std::uint64_t weight_modifier(const ModifierLaw& law, const float* w, std::size_t rows, std::size_t cols, float* out,
                              std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const std::int64_t r = static_cast<std::int64_t>(rows), c = static_cast<std::int64_t>(cols);
  const ModifierSections s = modifier_sections(law, r, c);
  const std::size_t n = rows * cols;
  if (n == 0) return s.used;
  const std::int64_t cols_used = law.copy_last_column ? c - 1 : c;
  Buffer<float> amax(s.main_step ? rows : 0);
  if (s.main_step) {
    if (law.rel_to_actual_wmax) row_abs_max(w, r, c, cols_used, amax.get());
    AIMC_LAUNCH(modifier_scale_kernel, 1, kThreads)(law, amax.get(), r);
    check(cudaGetLastError(), "modifier_scale kernel launch");
  }
  const float* scales = s.main_step ? amax.get() : nullptr;
  AIMC_LAUNCH(modifier_kernel, grid_for(n, kThreads), kThreads)(law, s, w, c, cols_used, n, scales, out, seed, stream,
                                                                counter);
  check(cudaGetLastError(), "weight_modifier kernel launch");
  return s.used;
}

void weight_clip(ClipKind kind, float sigma, float fixed_value, float* w, std::size_t rows, std::size_t cols) {
  const std::int64_t r = static_cast<std::int64_t>(rows), c = static_cast<std::int64_t>(cols);
  const std::size_t n = rows * cols;
  if (kind == ClipKind::None || n == 0) return;
  const unsigned row_grid = grid_for(rows, kThreads);
  float c_all = -1.0f;
  Buffer<float> clip(kind == ClipKind::LayerGaussianPerChannel ? rows : 0);
  switch (kind) {
    case ClipKind::FixedValue:
      c_all = fixed_value;
      break;
    case ClipKind::AverageChannelMax: {
      Buffer<float> m(rows);
      row_abs_max(w, r, c, c, m.get());
      const std::vector<float> hm = to_host(m.get(), rows);
      c_all = average_channel_max_clip(hm.data(), r, fixed_value);
      break;
    }
    case ClipKind::LayerGaussian: {
      Buffer<double> part(rows);
      AIMC_LAUNCH(row_sum_kernel, row_grid, kThreads)(w, r, c, part.get());
      check(cudaGetLastError(), "row_sum kernel launch");
      const std::vector<double> sums = to_host(part.get(), rows);
      const double mean = sum_in_row_order(sums.data(), r) / static_cast<double>(n);
      AIMC_LAUNCH(row_squared_deviation_kernel, row_grid, kThreads)(w, r, c, mean, part.get());
      check(cudaGetLastError(), "row_squared_deviation kernel launch");
      const std::vector<double> ss = to_host(part.get(), rows);
      c_all = gaussian_clip_value(sum_in_row_order(ss.data(), r), static_cast<std::int64_t>(n), sigma, fixed_value);
      break;
    }
    case ClipKind::LayerGaussianPerChannel:
      AIMC_LAUNCH(row_gaussian_clip_kernel, row_grid, kThreads)(w, r, c, sigma, fixed_value, clip.get());
      check(cudaGetLastError(), "row_gaussian_clip kernel launch");
      break;
    case ClipKind::None:
      return;
  }
  const float* row_clip = kind == ClipKind::LayerGaussianPerChannel ? clip.get() : nullptr;
  AIMC_LAUNCH(clip_kernel, grid_for(n, kThreads), kThreads)(w, c, n, row_clip, c_all);
  check(cudaGetLastError(), "weight_clip kernel launch");
}

void weight_remap(const RemapLaw& law, float* w, std::size_t rows, std::size_t cols, float* scales) {
  const std::int64_t r = static_cast<std::int64_t>(rows), c = static_cast<std::int64_t>(cols);
  if (law.kind == RemapKind::None || rows == 0) return;
  const std::size_t n = rows * cols;
  Buffer<float> m(rows);
  row_abs_max(w, r, c, c, m.get());
  const std::vector<float> hm = to_host(m.get(), rows);
  std::vector<float> s = to_host(static_cast<const float*>(scales), rows);
  std::vector<float> mul(rows, 1.0f), div(rows, 1.0f);
  remap_row_factors(law, hm.data(), r, s.data(), mul.data(), div.data());
  copy_host_to_device(scales, s.data(), rows * sizeof(float));
  if (n == 0) return;
  Buffer<float> d_mul(rows), d_div(rows);
  d_mul.upload(mul.data(), rows);
  d_div.upload(div.data(), rows);
  AIMC_LAUNCH(remap_kernel, grid_for(n, kThreads), kThreads)(w, c, n, d_mul.get(), d_div.get());
  check(cudaGetLastError(), "weight_remap kernel launch");
}

}  // namespace aimc::cuda
