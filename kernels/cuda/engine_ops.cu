// The engine's primitive ops on CUDA (engine/dispatch.h lists which):
// elementwise maps with broadcasting, sums over dims, softmax / log-softmax
// and cross-entropy, on float32 device buffers. The per-element math is
// kernels/engine/elementwise_law.h, shared with the CPU ops; sums add in
// double, one thread per output in the CPU's term order where it is fixed,
// so results match the CPU's to within the double rounding of the sum.
// Built with --fmad=false (kernels/meson.build) so products and sums round
// as on the host.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/engine/elementwise_law.h"

namespace aimc::cuda {
namespace {

using engine_law::Binary;
using engine_law::ReduceIndex;
using engine_law::StridedIndex;
using engine_law::Unary;

template <Unary K>
__global__ void unary_kernel(double p, const float* x, float* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    y[i] = engine_law::unary<K>(x[i], p);
}

template <Binary K>
__global__ void binary_kernel(double p, const float* a, const float* b, StridedIndex index, float* y,
                              std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    std::int64_t oa = 0, ob = 0;
    engine_law::strided_offsets(index, static_cast<std::int64_t>(i), oa, ob);
    y[i] = engine_law::binary<K>(a[oa], b[ob], p);
  }
}

// dst[oa] = src[ob] for the output element i (a strided scatter copy).
__global__ void strided_assign_kernel(const float* src, StridedIndex index, float* dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    std::int64_t oa = 0, ob = 0;
    engine_law::strided_offsets(index, static_cast<std::int64_t>(i), oa, ob);
    dst[oa] = src[ob];
  }
}

// y[o] = Σ over the reduced dims of x in double, one thread per output,
// terms in row-major order of the reduced dims (see ReduceIndex::four_way).
__global__ void sum_kernel(const float* x, ReduceIndex r, float* y, std::size_t outputs, std::int64_t terms) {
  for (std::size_t o = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; o < outputs;
       o += std::size_t(gridDim.x) * blockDim.x) {
    std::int64_t rem = static_cast<std::int64_t>(o), base = 0;
    for (int d = r.kept_rank - 1; d >= 0; --d) {
      base += (rem % r.kept_size[d]) * r.kept_stride[d];
      rem /= r.kept_size[d];
    }
    double acc[4] = {0, 0, 0, 0};
    const std::int64_t four = r.four_way ? terms / 4 * 4 : 0;  // terms in whole groups of four
    for (std::int64_t t = 0; t < terms; ++t) {
      std::int64_t trem = t, off = base;
      for (int d = r.reduced_rank - 1; d >= 0; --d) {
        off += (trem % r.reduced_size[d]) * r.reduced_stride[d];
        trem /= r.reduced_size[d];
      }
      acc[t < four ? t % 4 : 0] += double(x[off]);
    }
    y[o] = static_cast<float>((acc[0] + acc[1]) + (acc[2] + acc[3]));
  }
}

// One thread per line [outer, size, inner] along the softmax dim: the CPU's
// steps (float max, double sum of float exponentials).
__global__ void softmax_kernel(bool log_kind, const float* x, std::int64_t outer, std::int64_t size,
                               std::int64_t inner, float* y) {
  const std::int64_t lines = outer * inner;
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < lines;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t base = (k / inner) * size * inner + k % inner;
    const float* xs = x + base;
    float* ys = y + base;
    float m = -INFINITY;
    for (std::int64_t c = 0; c < size; ++c) m = m < xs[c * inner] ? xs[c * inner] : m;  // std::max
    if (m == -INFINITY) m = 0;  // all -inf: avoid inf - inf
    double s = 0;
    for (std::int64_t c = 0; c < size; ++c) {
      const float e = engine_law::law_exp(xs[c * inner] - m);
      if (!log_kind) ys[c * inner] = e;
      s += e;
    }
    if (!log_kind) {
      const float inv = static_cast<float>(1.0 / s);
      for (std::int64_t c = 0; c < size; ++c) ys[c * inner] *= inv;
    } else {
      const float shift = m + static_cast<float>(::log(s));
      for (std::int64_t c = 0; c < size; ++c) ys[c * inner] = xs[c * inner] - shift;
    }
  }
}

__global__ void softmax_backward_kernel(bool log_kind, const float* g, const float* y, std::int64_t outer,
                                        std::int64_t size, std::int64_t inner, float* gx) {
  const std::int64_t lines = outer * inner;
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < lines;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t base = (k / inner) * size * inner + k % inner;
    const float* gs = g + base;
    const float* ys = y + base;
    float* out = gx + base;
    double s = 0;
    if (!log_kind) {
      for (std::int64_t c = 0; c < size; ++c) s += double(gs[c * inner]) * double(ys[c * inner]);
      const float dot = static_cast<float>(s);
      for (std::int64_t c = 0; c < size; ++c) out[c * inner] = ys[c * inner] * (gs[c * inner] - dot);
    } else {
      for (std::int64_t c = 0; c < size; ++c) s += double(gs[c * inner]);
      const float total = static_cast<float>(s);
      for (std::int64_t c = 0; c < size; ++c)
        out[c * inner] = gs[c * inner] - engine_law::law_exp(ys[c * inner]) * total;
    }
  }
}

// Per row i of logits [n, c]: lse[i] = log Σ exp (in double, max-shifted)
// and row_loss[i] = lse[i] - x[i, label].
__global__ void cross_entropy_rows_kernel(const float* x, const std::int32_t* labels, std::int64_t n,
                                          std::int64_t c, double* lse, double* row_loss) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float* row = x + i * c;
    double m = -INFINITY;
    for (std::int64_t k = 0; k < c; ++k) m = m < double(row[k]) ? double(row[k]) : m;
    if (m == -INFINITY) m = 0;
    double s = 0;
    for (std::int64_t k = 0; k < c; ++k) s += ::exp(double(row[k]) - m);
    lse[i] = m + ::log(s);
    row_loss[i] = lse[i] - double(row[labels[i]]);
  }
}

// loss[0] = mean of row_loss by one thread (n is a batch), in the order of
// the CPU's deterministic_sum for one chunk (engine/ops_reduce.cpp): four
// running sums over i mod 4, then (s0 + s1) + (s2 + s3).
__global__ void mean_kernel(const double* v, std::int64_t n, float* loss) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc[4] = {0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) acc[k] += v[i + k];
  for (; i < n; ++i) acc[0] += v[i];
  const double total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  loss[0] = static_cast<float>(total / static_cast<double>(n));
}

// loss[0] = mean of (p[i] - t[i])² in double by one thread, in the order of
// mean_kernel (one chunk of the CPU's deterministic_sum).
__global__ void squared_error_mean_kernel(const float* p, const float* t, std::int64_t n, float* loss) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc[4] = {0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) {
      const double d = double(p[i + k]) - double(t[i + k]);
      acc[k] += d * d;
    }
  for (; i < n; ++i) {
    const double d = double(p[i]) - double(t[i]);
    acc[0] += d * d;
  }
  const double total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  loss[0] = static_cast<float>(total / static_cast<double>(n));
}

// gx[i, k] = (g/n) softmax(x)[i, k] - (g/n) [k == label], g = g[0] on the device.
__global__ void cross_entropy_backward_kernel(const float* x, const std::int32_t* labels, const double* lse,
                                              const float* g, std::int64_t n, std::int64_t c, float* gx) {
  const double scale = double(g[0]) / static_cast<double>(n);
  const std::size_t total = static_cast<std::size_t>(n * c);
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t i = static_cast<std::int64_t>(e) / c, k = static_cast<std::int64_t>(e) % c;
    float v = static_cast<float>(scale * ::exp(double(x[e]) - lse[i]));
    if (k == labels[i]) v -= static_cast<float>(scale);
    gx[e] = v;
  }
}

// out[i] = 1 when uniform_open(word i mod 4 of Philox block `block` + i/4) <
// p, else 0: Generator::bernoulli's draws (engine/generator.cpp).
__global__ void bernoulli_kernel(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, float p,
                                 std::size_t n, float* out) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const rng::Block r = rng::philox(seed, stream, block + i / 4);
    out[i] = rng::uniform_open(r.v[i % 4]) < p ? 1.f : 0.f;
  }
}

// y[p] = (Σ_i x[p·area + i]) / area, one thread per plane, summed in float in
// order (global_avg_pool's CPU loop, engine/ops_pool.cpp).
__global__ void plane_mean_kernel(const float* x, std::int64_t planes, std::int64_t area, float* y) {
  for (std::int64_t p = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; p < planes;
       p += std::int64_t(gridDim.x) * blockDim.x) {
    float total = 0;
    for (std::int64_t i = 0; i < area; ++i) total += x[p * area + i];
    y[p] = total / static_cast<float>(area);
  }
}

}  // namespace

void engine_plane_mean(const float* x, std::int64_t planes, std::int64_t area, float* y) {
  if (planes <= 0) return;
  AIMC_LAUNCH(plane_mean_kernel, grid_for(static_cast<std::size_t>(planes)), 256)(x, planes, area, y);
  check(cudaGetLastError(), "engine_plane_mean kernel launch");
}

void engine_bernoulli(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, float p, std::size_t n,
                      float* out) {
  if (n == 0) return;
  AIMC_LAUNCH(bernoulli_kernel, grid_for(n), 256)(seed, stream, block, p, n, out);
  check(cudaGetLastError(), "engine_bernoulli kernel launch");
}

void engine_unary(engine_law::Unary kind, double p, const float* x, float* y, std::size_t n) {
  if (n == 0) return;
  const unsigned grid = grid_for(n);
  switch (kind) {
#define AIMC_UNARY_CASE(name)                                                         \
  case Unary::name:                                                                   \
    AIMC_LAUNCH(unary_kernel<Unary::name>, grid, 256)(p, x, y, n);                    \
    break;
    AIMC_UNARY_CASE(copy) AIMC_UNARY_CASE(neg) AIMC_UNARY_CASE(exp) AIMC_UNARY_CASE(log) AIMC_UNARY_CASE(sqrt)
    AIMC_UNARY_CASE(square) AIMC_UNARY_CASE(abs) AIMC_UNARY_CASE(add_scalar) AIMC_UNARY_CASE(mul_scalar)
    AIMC_UNARY_CASE(pow_scalar) AIMC_UNARY_CASE(relu) AIMC_UNARY_CASE(leaky_relu) AIMC_UNARY_CASE(sigmoid)
    AIMC_UNARY_CASE(tanh) AIMC_UNARY_CASE(erf) AIMC_UNARY_CASE(gelu)
#undef AIMC_UNARY_CASE
  }
  check(cudaGetLastError(), "engine_unary kernel launch");
}

void engine_binary(engine_law::Binary kind, double p, const float* a, const float* b,
                   const engine_law::StridedIndex& index, float* y) {
  std::size_t n = 1;
  for (int d = 0; d < index.rank; ++d) n *= static_cast<std::size_t>(index.size[d]);
  if (n == 0) return;
  const unsigned grid = grid_for(n);
  switch (kind) {
#define AIMC_BINARY_CASE(name)                                                        \
  case Binary::name:                                                                  \
    AIMC_LAUNCH(binary_kernel<Binary::name>, grid, 256)(p, a, b, index, y, n);        \
    break;
    AIMC_BINARY_CASE(first) AIMC_BINARY_CASE(add) AIMC_BINARY_CASE(sub) AIMC_BINARY_CASE(mul) AIMC_BINARY_CASE(div)
    AIMC_BINARY_CASE(neg_mul) AIMC_BINARY_CASE(sqrt_grad) AIMC_BINARY_CASE(square_grad) AIMC_BINARY_CASE(abs_grad)
    AIMC_BINARY_CASE(pow_grad) AIMC_BINARY_CASE(relu_grad) AIMC_BINARY_CASE(leaky_relu_grad)
    AIMC_BINARY_CASE(sigmoid_grad) AIMC_BINARY_CASE(tanh_grad) AIMC_BINARY_CASE(erf_grad)
    AIMC_BINARY_CASE(gelu_grad) AIMC_BINARY_CASE(mse_grad) AIMC_BINARY_CASE(dropout_mask)
#undef AIMC_BINARY_CASE
  }
  check(cudaGetLastError(), "engine_binary kernel launch");
}

void engine_strided_assign(const float* src, const engine_law::StridedIndex& index, float* dst) {
  std::size_t n = 1;
  for (int d = 0; d < index.rank; ++d) n *= static_cast<std::size_t>(index.size[d]);
  if (n == 0) return;
  AIMC_LAUNCH(strided_assign_kernel, grid_for(n), 256)(src, index, dst, n);
  check(cudaGetLastError(), "engine_strided_assign kernel launch");
}

void engine_sum(const float* x, const engine_law::ReduceIndex& index, float* y) {
  std::size_t outputs = 1;
  std::int64_t terms = 1;
  for (int d = 0; d < index.kept_rank; ++d) outputs *= static_cast<std::size_t>(index.kept_size[d]);
  for (int d = 0; d < index.reduced_rank; ++d) terms *= index.reduced_size[d];
  if (outputs == 0) return;
  AIMC_LAUNCH(sum_kernel, grid_for(outputs), 256)(x, index, y, outputs, terms);
  check(cudaGetLastError(), "engine_sum kernel launch");
}

void engine_softmax(bool log_kind, const float* x, std::int64_t outer, std::int64_t size, std::int64_t inner,
                    float* y) {
  const std::size_t lines = static_cast<std::size_t>(outer * inner);
  if (lines == 0 || size == 0) return;
  AIMC_LAUNCH(softmax_kernel, grid_for(lines), 256)(log_kind, x, outer, size, inner, y);
  check(cudaGetLastError(), "engine_softmax kernel launch");
}

void engine_softmax_backward(bool log_kind, const float* g, const float* y, std::int64_t outer, std::int64_t size,
                             std::int64_t inner, float* gx) {
  const std::size_t lines = static_cast<std::size_t>(outer * inner);
  if (lines == 0 || size == 0) return;
  AIMC_LAUNCH(softmax_backward_kernel, grid_for(lines), 256)(log_kind, g, y, outer, size, inner, gx);
  check(cudaGetLastError(), "engine_softmax_backward kernel launch");
}

void engine_cross_entropy(const float* logits, const std::int32_t* labels, std::int64_t n, std::int64_t c,
                          double* lse, double* row_loss, float* loss) {
  if (n > 0) {
    AIMC_LAUNCH(cross_entropy_rows_kernel, grid_for(static_cast<std::size_t>(n)), 256)(logits, labels, n, c, lse,
                                                                                      row_loss);
    check(cudaGetLastError(), "engine_cross_entropy kernel launch");
  }
  AIMC_LAUNCH(mean_kernel, 1, 1)(row_loss, n, loss);
  check(cudaGetLastError(), "engine_cross_entropy mean kernel launch");
}

void engine_squared_error_mean(const float* prediction, const float* target, std::int64_t n, float* loss) {
  AIMC_LAUNCH(squared_error_mean_kernel, 1, 1)(prediction, target, n, loss);
  check(cudaGetLastError(), "engine_squared_error_mean kernel launch");
}

void engine_cross_entropy_backward(const float* logits, const std::int32_t* labels, const double* lse,
                                   const float* g, std::int64_t n, std::int64_t c, float* gx) {
  const std::size_t total = static_cast<std::size_t>(n * c);
  if (total == 0) return;
  AIMC_LAUNCH(cross_entropy_backward_kernel, grid_for(total), 256)(logits, labels, lse, g, n, c, gx);
  check(cudaGetLastError(), "engine_cross_entropy_backward kernel launch");
}

}  // namespace aimc::cuda
