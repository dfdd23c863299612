// im2col / col2im on the CPU: raw-pointer kernels for 1 to 3 spatial dims.
//
// Layout (the convolution ops and the analog conv layers rely on it):
//   image  [N, C, *input]                                   row-major
//   cols   [N * L, C * K]   L = prod(output), K = prod(kernel)
// Row r = n * L + l is output position l (row-major over the output dims) of
// sample n; its columns are ordered (c, k0, k1, k2). Output position o reads
// input index o*stride - padding + k*dilation per dim; outside the input the
// column entry is 0 (zero padding). Sizes and offsets are in elements.
//
// Both kernels run in parallel with cpu::parallel_for; chunks depend only on
// the problem size and every output element is written by one chunk in a
// fixed order, so results are bitwise identical for any thread count.
#pragma once

#include <cstdint>

namespace aimc::cpu {

// Geometry of one convolution; entries [0, spatial_dims) are used.
struct Im2colGeometry {
  int spatial_dims = 0;           // 1, 2 or 3
  std::int64_t channels = 0;      // C
  std::int64_t input[3] = {1, 1, 1};
  std::int64_t output[3] = {1, 1, 1};
  std::int64_t kernel[3] = {1, 1, 1};
  std::int64_t stride[3] = {1, 1, 1};
  std::int64_t padding[3] = {0, 0, 0};
  std::int64_t dilation[3] = {1, 1, 1};
};

// cols[N*L, C*K] <- patches of image[N, C, *input]. Every entry is written.
void im2col(const Im2colGeometry& g, std::int64_t batch, const float* image, float* cols);
void im2col(const Im2colGeometry& g, std::int64_t batch, const double* image, double* cols);

// image[N, C, *input] <- scatter-add of cols[N*L, C*K]. image is overwritten
// (no accumulation into its previous contents). Parallel over samples (a
// chunk reads its samples' rows in order and writes their C planes); the
// additions into one element happen in a fixed order.
void col2im(const Im2colGeometry& g, std::int64_t batch, const float* cols, float* image);
void col2im(const Im2colGeometry& g, std::int64_t batch, const double* cols, double* image);

// The same scatter-add from patches stored transposed, cols_t[C*K, N*L]
// (column (c, k) of cols is row c*K + k of cols_t). This is the layout a
// channel-major GEMM produces (conv backward), and the fastest to scatter.
// Parallel over (n, c) planes.
void col2im_transposed(const Im2colGeometry& g, std::int64_t batch, const float* cols_t, float* image);
void col2im_transposed(const Im2colGeometry& g, std::int64_t batch, const double* cols_t, double* image);

}  // namespace aimc::cpu
