// batch_norm on CUDA, the twin of engine/ops_norm.cpp's CPU loops (their
// shared math: kernels/engine/batch_norm_law.h). The per-channel sums run one
// thread per channel over [n, s] in the CPU's term order, in double, so the
// statistics have the CPU's bits; the per-element maps run one thread per
// element. Built with --fmad=false (kernels/meson.build) so products and sums
// round as on the host.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/engine/batch_norm_law.h"

namespace aimc::cuda {
namespace {

__global__ void stats_kernel(const float* x, std::int64_t n, std::int64_t c, std::int64_t s, double* mean,
                             double* var) {
  const double m = static_cast<double>(n * s);
  for (std::int64_t ch = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; ch < c;
       ch += std::int64_t(gridDim.x) * blockDim.x) {
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < s; ++k) total += x[(i * c + ch) * s + k];
    const double mu = total / m;
    double sq = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < s; ++k) {
        const double d = x[(i * c + ch) * s + k] - mu;
        sq += d * d;
      }
    mean[ch] = mu;
    var[ch] = sq / m;
  }
}

__global__ void apply_kernel(const float* x, std::int64_t c, std::int64_t s, const float* scale, const float* shift,
                             float* y, std::size_t total) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t ch = (static_cast<std::int64_t>(e) / s) % c;
    y[e] = x[e] * scale[ch] + shift[ch];
  }
}

__global__ void backward_sums_kernel(const float* x, const float* g, std::int64_t n, std::int64_t c, std::int64_t s,
                                     const double* mean, const double* inv_std, double* sum_dy,
                                     double* sum_dy_xhat) {
  for (std::int64_t ch = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; ch < c;
       ch += std::int64_t(gridDim.x) * blockDim.x) {
    const double mu = mean[ch], is = inv_std[ch];
    double a = 0, b = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < s; ++k) {
        const std::int64_t at = (i * c + ch) * s + k;
        a += g[at];
        b += g[at] * batch_norm_law::normalized(x[at], mu, is);
      }
    sum_dy[ch] = a;
    sum_dy_xhat[ch] = b;
  }
}

__global__ void backward_apply_kernel(const float* x, const float* g, std::int64_t n, std::int64_t c, std::int64_t s,
                                      const double* mean, const double* inv_std, const double* w, bool training,
                                      const double* sum_dy, const double* sum_dy_xhat, float* gx, std::size_t total) {
  const double m = static_cast<double>(n * s);
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t ch = (static_cast<std::int64_t>(e) / s) % c;
    const double is = inv_std[ch], scale = w[ch] * is;
    const double mean_dy = training ? sum_dy[ch] / m : 0.0;
    const double mean_dy_xhat = training ? sum_dy_xhat[ch] / m : 0.0;
    const double xhat = batch_norm_law::normalized(x[e], mean[ch], is);
    gx[e] = static_cast<float>(batch_norm_law::input_grad(g[e], xhat, scale, mean_dy, mean_dy_xhat));
  }
}

}  // namespace

void batch_norm_stats(const float* x, std::int64_t n, std::int64_t c, std::int64_t s, double* mean, double* var) {
  if (c <= 0) return;
  AIMC_LAUNCH(stats_kernel, grid_for(static_cast<std::size_t>(c)), 256)(x, n, c, s, mean, var);
  check(cudaGetLastError(), "batch_norm_stats kernel launch");
}

void batch_norm_apply(const float* x, std::int64_t n, std::int64_t c, std::int64_t s, const float* scale,
                      const float* shift, float* y) {
  const std::size_t total = static_cast<std::size_t>(n * c * s);
  if (total == 0) return;
  AIMC_LAUNCH(apply_kernel, grid_for(total), 256)(x, c, s, scale, shift, y, total);
  check(cudaGetLastError(), "batch_norm_apply kernel launch");
}

void batch_norm_backward(const float* x, const float* g, std::int64_t n, std::int64_t c, std::int64_t s,
                         const double* mean, const double* inv_std, const double* w, bool training, double* sum_dy,
                         double* sum_dy_xhat, float* gx) {
  if (c <= 0) return;
  AIMC_LAUNCH(backward_sums_kernel, grid_for(static_cast<std::size_t>(c)), 256)(x, g, n, c, s, mean, inv_std,
                                                                                sum_dy, sum_dy_xhat);
  check(cudaGetLastError(), "batch_norm_backward sums kernel launch");
  const std::size_t total = static_cast<std::size_t>(n * c * s);
  if (total == 0) return;
  AIMC_LAUNCH(backward_apply_kernel, grid_for(total), 256)(x, g, n, c, s, mean, inv_std, w, training, sum_dy,
                                                           sum_dy_xhat, gx, total);
  check(cudaGetLastError(), "batch_norm_backward kernel launch");
}

}  // namespace aimc::cuda
