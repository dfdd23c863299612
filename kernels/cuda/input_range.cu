// CUDA twins of the input-range kernels (layers/tiles/input_range.cpp): the
// clip, its gradients, and the data statistics of the initialisation. The
// element formulas are kernels/analog/input_range_law.h; the double sums run
// one thread per chunk of analog::kInputRangeChunk elements in element order,
// and the host adds the chunks in order, as the CPU does: the same terms in
// the same order (a fused multiply-add in Σ(x − mean)² may still differ in the
// last bit; a tree reduction would be faster but add in another order).
#include <algorithm>
#include <vector>

#include "kernels/analog/input_range_law.h"
#include "kernels/cuda/buffer.cuh"

namespace aimc::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void clip_kernel(const float* x, std::int64_t n, float r, float* v) {
  AIMC_GRID_STRIDE(i, n) v[i] = analog::input_range_value(x[i], r);
}

__global__ void dx_kernel(const float* x, const float* g, std::int64_t n, float r, float* dx) {
  AIMC_GRID_STRIDE(i, n) dx[i] = analog::input_range_dx(x[i], g[i], r);
}

// partial[2c], partial[2c + 1]: chunk c's clip and inside sums.
__global__ void gradient_sums_kernel(const float* x, const float* g, std::int64_t n, float r, double* partial) {
  const std::int64_t chunks = (n + analog::kInputRangeChunk - 1) / analog::kInputRangeChunk;
  AIMC_GRID_STRIDE(c, chunks) {
    double clip = 0.0;
    std::int64_t inside = 0;
    const std::int64_t end = std::min(n, (c + 1) * analog::kInputRangeChunk);
    analog::input_range_chunk_terms(x, g, c * analog::kInputRangeChunk, end, r, clip, inside);
    partial[2 * c] = clip;
    partial[2 * c + 1] = static_cast<double>(inside);
  }
}

// partial[c] = chunk c's Σ x (shift is NaN) or Σ (x − shift)².
__global__ void data_sums_kernel(const float* x, std::int64_t n, bool squares, double shift, double* partial) {
  const std::int64_t chunks = (n + analog::kInputRangeChunk - 1) / analog::kInputRangeChunk;
  AIMC_GRID_STRIDE(c, chunks) {
    double acc = 0.0;
    const std::int64_t end = std::min(n, (c + 1) * analog::kInputRangeChunk);
    for (std::int64_t i = c * analog::kInputRangeChunk; i < end; ++i)
      acc += squares ? (x[i] - shift) * (x[i] - shift) : static_cast<double>(x[i]);
    partial[c] = acc;
  }
}

std::int64_t chunks_of(std::int64_t n) { return (n + analog::kInputRangeChunk - 1) / analog::kInputRangeChunk; }

// The per-chunk partials (stride values per chunk) added in chunk order.
std::vector<double> add_chunks(const Buffer<double>& partial, std::int64_t chunks, int stride) {
  std::vector<double> host(static_cast<std::size_t>(chunks * stride));
  partial.download(host.data(), host.size());
  std::vector<double> total(static_cast<std::size_t>(stride), 0.0);
  for (std::int64_t c = 0; c < chunks; ++c)
    for (int k = 0; k < stride; ++k) total[k] += host[static_cast<std::size_t>(c * stride + k)];
  return total;
}

}  // namespace

void input_range_clip(const float* x, std::int64_t n, float r, float* v) {
  if (n <= 0) return;
  AIMC_LAUNCH(clip_kernel, blocks_for(n), kThreads)(x, n, r, v);
  launched("input_range_clip kernel");
}

void input_range_backward(const float* x, const float* g, std::int64_t n, float r, float* dx, double* clip_sum,
                          double* inside) {
  *clip_sum = 0.0;
  *inside = 0.0;
  if (n <= 0) return;
  AIMC_LAUNCH(dx_kernel, blocks_for(n), kThreads)(x, g, n, r, dx);
  const std::int64_t chunks = chunks_of(n);
  Buffer<double> partial(static_cast<std::size_t>(2 * chunks));
  AIMC_LAUNCH(gradient_sums_kernel, blocks_for(chunks), kThreads)(x, g, n, r, partial.get());
  launched("input_range_backward kernels");
  const std::vector<double> total = add_chunks(partial, chunks, 2);
  *clip_sum = total[0];
  *inside = total[1];
}

void input_range_data_stats(const float* x, std::int64_t n, double* mean, double* squared_deviation) {
  *mean = 0.0;
  *squared_deviation = 0.0;
  if (n <= 0) return;
  const std::int64_t chunks = chunks_of(n);
  Buffer<double> partial(static_cast<std::size_t>(chunks));
  AIMC_LAUNCH(data_sums_kernel, blocks_for(chunks), kThreads)(x, n, false, 0.0, partial.get());
  launched("input_range_data_stats kernel");
  *mean = add_chunks(partial, chunks, 1)[0] / static_cast<double>(n);
  AIMC_LAUNCH(data_sums_kernel, blocks_for(chunks), kThreads)(x, n, true, *mean, partial.get());
  launched("input_range_data_stats kernel");
  *squared_deviation = add_chunks(partial, chunks, 1)[0];
}

}  // namespace aimc::cuda
