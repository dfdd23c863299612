// Max and average pooling on the CPU: raw-pointer kernels for 1 to 3 spatial
// dims over `planes` = N * C independent planes of shape `input`.
//
// Output position o covers input indices o*stride - padding + [0, kernel) per
// dim. Padding counts as -inf for max pooling and as 0 for average pooling,
// whose divisor is always prod(kernel) (PyTorch's count_include_pad=true).
// Work is split over planes with cpu::parallel_for (chunks depend only on the
// problem size; each plane is written by one chunk), so results do not depend
// on the thread count.
#pragma once

#include <cstdint>

namespace aimc::cpu {

// Entries [0, spatial_dims) are used. Every window must hold at least one
// input element (padding <= kernel / 2 guarantees it).
struct PoolGeometry {
  int spatial_dims = 0;  // 1, 2 or 3
  std::int64_t input[3] = {1, 1, 1};
  std::int64_t output[3] = {1, 1, 1};
  std::int64_t kernel[3] = {1, 1, 1};
  std::int64_t stride[3] = {1, 1, 1};
  std::int64_t padding[3] = {0, 0, 0};
};

// A 1-D or 2-D problem as a 3-D one with leading unit dims, as the CPU and
// CUDA kernels (kernels/cuda/pool.cu) both walk it.
struct Pool3 {
  std::int64_t in[3], out[3], k[3], s[3], p[3];
  std::int64_t in_plane = 1, out_plane = 1, kernel_volume = 1;
};

inline Pool3 expand(const PoolGeometry& g) {
  Pool3 e{};
  const int shift = 3 - g.spatial_dims;
  for (int d = 0; d < 3; ++d) {
    const int s = d - shift;
    const bool used = s >= 0;
    e.in[d] = used ? g.input[s] : 1;
    e.out[d] = used ? g.output[s] : 1;
    e.k[d] = used ? g.kernel[s] : 1;
    e.s[d] = used ? g.stride[s] : 1;
    e.p[d] = used ? g.padding[s] : 0;
    e.in_plane *= e.in[d];
    e.out_plane *= e.out[d];
    e.kernel_volume *= e.k[d];
  }
  return e;
}

// y[planes, *output] = window maxima; argmax holds, per output element, the
// flat index within its input plane of the first maximum (NaN propagates).
void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y,
                      std::int64_t* argmax);
void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y,
                      std::int64_t* argmax);
// grad_x[planes, *input] (overwritten) = scatter-add of grad_y at argmax.
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y,
                       const std::int64_t* argmax, float* grad_x);
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y,
                       const std::int64_t* argmax, double* grad_x);

// y = window sums / prod(kernel).
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y);
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y);
// grad_x (overwritten) = each grad_y / prod(kernel) spread over its window.
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x);
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y, double* grad_x);

}  // namespace aimc::cpu
