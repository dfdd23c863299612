// im2col / col2im on CUDA, the twins of kernels/cpu/im2col.cpp (layout in
// kernels/cpu/im2col.h): im2col gathers one patch entry per thread; col2im
// gathers, per image element, the patch entries that the CPU's scatter adds
// into it, in the CPU's order (kernel offsets ascending), so both give the
// same bits without atomics.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {

// The geometry as a 3-D one with leading unit dims.
struct Conv3 {
  std::int64_t in[3], out[3], k[3], s[3], p[3], dil[3];
  std::int64_t channels, in_plane, positions, kvol;
};

Conv3 expand(const cpu::Im2colGeometry& g) {
  Conv3 e{};
  e.channels = g.channels;
  e.in_plane = e.positions = e.kvol = 1;
  const int shift = 3 - g.spatial_dims;
  for (int d = 0; d < 3; ++d) {
    const int s = d - shift;
    const bool used = s >= 0;
    e.in[d] = used ? g.input[s] : 1;
    e.out[d] = used ? g.output[s] : 1;
    e.k[d] = used ? g.kernel[s] : 1;
    e.s[d] = used ? g.stride[s] : 1;
    e.p[d] = used ? g.padding[s] : 0;
    e.dil[d] = used ? g.dilation[s] : 1;
    e.in_plane *= e.in[d];
    e.positions *= e.out[d];
    e.kvol *= e.k[d];
  }
  return e;
}

// cols[n·L + l, c·K + kk] = image[n, c, o·s - p + k·dil] (0 outside).
__global__ void im2col_kernel(Conv3 e, std::int64_t batch, const float* image, float* cols) {
  const std::int64_t width = e.channels * e.kvol;
  const std::size_t total = static_cast<std::size_t>(batch * e.positions * width);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = static_cast<std::int64_t>(idx) / width, col = static_cast<std::int64_t>(idx) % width;
    const std::int64_t n = row / e.positions, l = row % e.positions;
    const std::int64_t c = col / e.kvol, kk = col % e.kvol;
    const std::int64_t o[3] = {l / (e.out[1] * e.out[2]), (l / e.out[2]) % e.out[1], l % e.out[2]};
    const std::int64_t k[3] = {kk / (e.k[1] * e.k[2]), (kk / e.k[2]) % e.k[1], kk % e.k[2]};
    bool inside = true;
    std::int64_t flat = 0;
    for (int d = 0; d < 3; ++d) {
      const std::int64_t i = o[d] * e.s[d] - e.p[d] + k[d] * e.dil[d];
      inside = inside && i >= 0 && i < e.in[d];
      flat = flat * e.in[d] + i;
    }
    cols[idx] = inside ? image[(n * e.channels + c) * e.in_plane + flat] : 0.f;
  }
}

// image[n, c, i] = Σ cols[n·L + l, c·K + kk] over the (kk, l) with
// l·s - p + k·dil = i, kernel offsets kk ascending (the CPU's order).
__global__ void col2im_kernel(Conv3 e, std::int64_t batch, const float* cols, float* image) {
  const std::int64_t width = e.channels * e.kvol;
  const std::size_t total = static_cast<std::size_t>(batch * e.channels * e.in_plane);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t plane = static_cast<std::int64_t>(idx) / e.in_plane, at = static_cast<std::int64_t>(idx) % e.in_plane;
    const std::int64_t n = plane / e.channels, c = plane % e.channels;
    const std::int64_t i[3] = {at / (e.in[1] * e.in[2]), (at / e.in[2]) % e.in[1], at % e.in[2]};
    float sum = 0.f;
    for (std::int64_t kk = 0; kk < e.kvol; ++kk) {
      const std::int64_t k[3] = {kk / (e.k[1] * e.k[2]), (kk / e.k[2]) % e.k[1], kk % e.k[2]};
      bool hit = true;
      std::int64_t l = 0;
      for (int d = 0; d < 3; ++d) {
        const std::int64_t t = i[d] + e.p[d] - k[d] * e.dil[d];  // o·s
        const std::int64_t o = t >= 0 ? t / e.s[d] : -1;
        hit = hit && t >= 0 && t % e.s[d] == 0 && o < e.out[d];
        l = l * e.out[d] + (o >= 0 ? o : 0);
      }
      if (hit) sum += cols[(n * e.positions + l) * width + c * e.kvol + kk];
    }
    image[idx] = sum;
  }
}

}  // namespace

void im2col(const cpu::Im2colGeometry& g, std::int64_t batch, const float* image, float* cols) {
  const Conv3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(batch * e.positions * e.channels * e.kvol);
  if (n == 0) return;
  AIMC_LAUNCH(im2col_kernel, grid_for(n), 256)(e, batch, image, cols);
  check(cudaGetLastError(), "im2col kernel launch");
}

void col2im(const cpu::Im2colGeometry& g, std::int64_t batch, const float* cols, float* image) {
  const Conv3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(batch * e.channels * e.in_plane);
  if (n == 0) return;
  AIMC_LAUNCH(col2im_kernel, grid_for(n), 256)(e, batch, cols, image);
  check(cudaGetLastError(), "col2im kernel launch");
}

}  // namespace aimc::cuda
