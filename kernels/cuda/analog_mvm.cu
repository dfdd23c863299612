// Batched analog MVM on CUDA, the twin of kernels/cpu/analog_mvm.cpp (see
// kernels/cpu/analog_mvm.h for the model and the random layout). The same
// per-element code (kernels/analog/periphery.h) runs in fused kernels: noise
// management one block per row (maxima as block reductions), the DAC one
// thread per input, the crossbar products on cuBLAS, the crossbar effects one
// thread per output, and the ADC path one block per row (the bound test and
// the SHIFT maximum are block reductions). Every draw is a Philox value
// at its position in the layout, so the noise equals the CPU's. The host
// keeps the bound-management loop: after each pass it reads the rows' pass
// flags and re-runs only the failed rows.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/analog/periphery.h"
#include "kernels/cuda/buffer.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/random_normal.h"

namespace aimc::cuda {
namespace {

using analog::MvmLayout;
using analog::Periphery;

constexpr unsigned kThreads = 256;  // threads per block (a power of two: the reductions)

__device__ float uniform_at(const MvmLayout& l, std::uint64_t block, std::int64_t j) {
  return rng::uniform_open(rng::philox(l.seed, l.stream, block + static_cast<std::uint64_t>(j / 4)).v[j % 4]);
}
__device__ float normal_at(const MvmLayout& l, std::uint64_t block, std::int64_t j) {
  return rng::normal_at(l.seed, l.stream, block, static_cast<std::uint64_t>(j));
}

// DAC of the m rows in play: v[k] = dac(x[ids[k]]·scale[k]); with the pos/neg
// split, v[k] keeps the negative part and v[m + k] the positive part.
__global__ void dac_kernel(Periphery p, MvmLayout l, int pass, const float* x, std::int64_t in_len,
                           const std::int64_t* ids, const float* scale, std::int64_t m, float* v) {
  const bool quantise = p.res_in > 0.f, noise = p.inp_noise > 0.f;
  AIMC_GRID_STRIDE(e, m * in_len) {
    const std::int64_t k = e / in_len, j = e % in_len, i = ids[k];
    const float u = p.inp_sto ? uniform_at(l, l.inp_round(pass, i), j) : 0.f;
    const float z = noise ? normal_at(l, l.inp_noise(pass, i), j) : 0.f;
    const float value = analog::dac_value(x[i * in_len + j], scale[k], p.res_in, p.inp_bound, p.inp_noise,
                                          p.inp_asym, u, z, quantise, p.inp_sto, noise, p.has_inp_asym);
    if (p.pos_neg) {
      v[(m + k) * in_len + j] = value > 0.f ? value : 0.f;
      v[k * in_len + j] = value < 0.f ? value : 0.f;
    } else {
      v[e] = value;
    }
  }
}

// t[e] = |v[e]| (kind 0), v[e]·ramp(j) (kind 1), v[e]² (kind 2) over rows × len.
__global__ void map_inputs_kernel(const float* v, std::int64_t count, std::int64_t len, int kind, float* t) {
  AIMC_GRID_STRIDE(e, count) {
    const float x = v[e];
    t[e] = kind == 0 ? ::fabsf(x) : kind == 1 ? x * analog::ir_drop_ramp(e % len, len) : x * x;
  }
}

__global__ void abs_kernel(const float* w, std::int64_t count, float* a) {
  AIMC_GRID_STRIDE(e, count) a[e] = ::fabsf(w[e]);
}

// out[e] = a[e]·b[e] (kind 0: the negative pass's weights W·a) or |a[e]·b[e]|
// (kind 1: their magnitudes).
__global__ void mul_kernel(const float* a, const float* b, std::int64_t count, int kind, float* out) {
  AIMC_GRID_STRIDE(e, count) {
    const float x = a[e] * b[e];
    out[e] = kind == 0 ? x : ::fabsf(x);
  }
}

// ref[k] = ref_scale·Σ_j v_kj (the reference column's current of the voltage
// offsets), one thread per row, summed in input order as the CPU.
__global__ void row_ref_kernel(const float* v, std::int64_t rows, std::int64_t in_len, float ref_scale, float* ref) {
  AIMC_GRID_STRIDE(k, rows) {
    const float* vk = v + k * in_len;
    float sum = 0.f;
    if (ref_scale != 0.f)
      for (std::int64_t j = 0; j < in_len; ++j) sum += vk[j];
    ref[k] = ref_scale * sum;
  }
}

// sd[k] = w_noise·‖v_k‖₂ (ADDITIVE_CONSTANT weight noise), one thread per row,
// summed in input order as the CPU.
__global__ void row_norm_kernel(const float* v, std::int64_t rows, std::int64_t in_len, float w_noise, float* sd) {
  AIMC_GRID_STRIDE(k, rows) {
    const float* vk = v + k * in_len;
    float sq = 0.f;
    for (std::int64_t j = 0; j < in_len; ++j) sq += vk[j] * vk[j];
    sd[k] = w_noise * ::sqrtf(sq);
  }
}

// IR drop, voltage offsets and weight noise on y[rows, out_len]; row k is
// batch row ids[k % m] in phase k / m. current / ramped / pcm_sum / sd / ref
// may be null when unused.
__global__ void crossbar_effects_kernel(Periphery p, MvmLayout l, int pass, const std::int64_t* ids, std::int64_t m,
                                        std::int64_t rows, std::int64_t out_len, float a_scale, const float* current,
                                        const float* ramped, const float* pcm_sum, const float* sd, const float* ref,
                                        float* y) {
  AIMC_GRID_STRIDE(e, rows * out_len) {
    const std::int64_t k = e / out_len, i = e % out_len;
    float value = y[e];
    if (current) value -= p.ir_drop * analog::ir_drop_factor(a_scale * current[e]) * ramped[e];
    if (ref) value = analog::voltage_offset_value(value, p.v_offset ? p.v_offset[i] : 0.f, ref[k], p.r_series);
    if (p.wn != WeightNoiseType::None) {
      const float z = normal_at(l, l.out(pass, ids[k % m], static_cast<int>(k / m), 0), i);
      value += (pcm_sum ? p.w_noise * ::sqrtf(pcm_sum[e]) : sd[k]) * z;
    }
    y[e] = value;
  }
}

// The largest value over the block (every thread gets it). red: kThreads floats.
__device__ float block_max(float value, float* red) {
  red[threadIdx.x] = value;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) red[threadIdx.x] = analog::max_value(red[threadIdx.x], red[threadIdx.x + s]);
    __syncthreads();
  }
  const float result = red[0];
  __syncthreads();
  return result;
}

// alpha[i] = α of row i for the rows ids[0..count) (all rows when ids is
// null), one block per row: the maxima are block reductions (exact in any
// order); the signed sums of ABS_MAX_NP_SUM run on one thread in input order,
// as the CPU.
__global__ void noise_management_kernel(Periphery p, NoiseManagementType type, const float* x, std::int64_t in_len,
                                        const std::int64_t* ids, std::int64_t count, float* alpha) {
  __shared__ float red[kThreads];
  const float inf = std::numeric_limits<float>::infinity();
  for (std::int64_t k = blockIdx.x; k < count; k += gridDim.x) {
    const std::int64_t i = ids ? ids[k] : k;
    const float* row = x + i * in_len;
    float abs_max = 0.f, max = -inf;
    for (std::int64_t j = threadIdx.x; j < in_len; j += blockDim.x) {
      abs_max = analog::max_value(abs_max, ::fabsf(row[j]));
      max = analog::max_value(max, row[j]);
    }
    analog::RowStats s;
    s.abs_max = block_max(abs_max, red);
    s.max = block_max(max, red);
    if (threadIdx.x == 0) {
      if (type == NoiseManagementType::AbsMaxNPSum) analog::signed_sums(row, in_len, s.psum, s.nsum);
      alpha[i] = analog::noise_management_from_stats(type, p, s, 1.f);
    }
  }
}

// Output path of one row (phase 0/1) in place, by the whole block: as
// cpu adc_row. Returns (to every thread) whether the bound test passed.
__device__ bool adc_row_block(const Periphery& p, const MvmLayout& l, int pass, std::int64_t i, int phase,
                              float* row, std::int64_t out_len, bool shift, float* red) {
  const bool quantise = p.res_out > 0.f;
  const float inf = std::numeric_limits<float>::infinity();
  const float neg_test = p.test_neg ? -p.out_bound : -inf;
  const std::uint64_t noise_block = l.out(pass, i, phase, 1), round_block = l.out(pass, i, phase, 2);
  int failed = 0;
  float local_max = -inf;
  for (std::int64_t j = threadIdx.x; j < out_len; j += blockDim.x) {
    const float nl = p.has_nl ? (p.nl ? p.nl[j] : p.nl_const) : 0.f;
    const float sigma = p.has_noise ? (p.sigma ? p.sigma[j] : p.out_noise) : 0.f;
    const float z = p.has_noise ? normal_at(l, noise_block, j) : 0.f;
    float value =
        analog::adc_analog(row[j], nl, p.nl_gain, p.out_asym, sigma, z, p.has_nl, p.has_out_asym, p.has_noise);
    if (!shift) {
      const float u = p.out_sto ? uniform_at(l, round_block, j) : 0.f;
      value = analog::adc_quantise(value, p.res_out, u, quantise, p.out_sto);
      failed |= static_cast<int>(analog::adc_reached(value, p.out_bound, neg_test));
      value = analog::clamp_value(value, -p.out_bound, p.out_bound);
    } else {
      local_max = j == threadIdx.x ? value : analog::max_value(local_max, value);
    }
    row[j] = value;
  }
  if (!shift) return __syncthreads_or(failed) == 0;
  // SHIFT: move the row's largest output to the positive bound, then the ADC.
  const float top = block_max(threadIdx.x < out_len ? local_max : -inf, red);
  const float offset = p.out_bound < inf ? p.out_bound - top : 0.f;
  for (std::int64_t j = threadIdx.x; j < out_len; j += blockDim.x) {
    const float u = p.out_sto ? uniform_at(l, round_block, j) : 0.f;
    const float value = analog::adc_quantise(row[j] + offset, p.res_out, u, quantise, p.out_sto);
    row[j] = analog::clamp_value(value, -p.out_bound, p.out_bound);
  }
  __syncthreads();
  return true;
}

// ADC path, bound test and digital scaling of the m rows in play, one block
// per row. out holds the crossbar results ([m] rows, then the positive pass's
// [m] rows with the pos/neg split); y[ids[k]] is written when the row passed
// or this is the last pass; passed[k] records the test.
__global__ void adc_kernel(Periphery p, MvmLayout l, int pass, const std::int64_t* ids, std::int64_t m,
                           std::int64_t out_len, bool stop, const float* scale, float* out, float* y,
                           std::uint8_t* passed) {
  const bool pos_neg = p.pos_neg, digital_sum = p.digital_sum, shift = p.shift;
  __shared__ float red[kThreads];
  for (std::int64_t k = blockIdx.x; k < m; k += gridDim.x) {
    const std::int64_t i = ids[k];
    float* row = out + k * out_len;
    float* pos = pos_neg ? out + (m + k) * out_len : nullptr;  // the positive pass's row
    bool ok;
    if (!pos_neg) {
      ok = adc_row_block(p, l, pass, i, 0, row, out_len, shift, red);
    } else if (digital_sum) {
      ok = adc_row_block(p, l, pass, i, 0, row, out_len, shift, red);
      ok = adc_row_block(p, l, pass, i, 1, pos, out_len, shift, red) && ok;
      for (std::int64_t j = threadIdx.x; j < out_len; j += blockDim.x) row[j] = pos[j] + row[j];
    } else {
      for (std::int64_t j = threadIdx.x; j < out_len; j += blockDim.x) row[j] = pos[j] + row[j];
      __syncthreads();
      ok = adc_row_block(p, l, pass, i, 0, row, out_len, shift, red);
    }
    if (ok || stop) {
      const float gain = p.final_gain / scale[k];
      for (std::int64_t j = threadIdx.x; j < out_len; j += blockDim.x) y[i * out_len + j] = row[j] * gain;
    }
    if (threadIdx.x == 0) passed[k] = ok ? 1 : 0;
    __syncthreads();
  }
}

__global__ void zero_rows_kernel(const std::int64_t* ids, std::int64_t count, std::int64_t len, float* y) {
  AIMC_GRID_STRIDE(e, count * len) y[ids[e / len] * len + e % len] = 0.f;
}

// kind 0: |base·(1 + spread·ξ)|, 1: a voltage offset (its second normal
// from block + step), 2: 1 + spread·ξ (read asymmetry).
__global__ void line_values_kernel(MvmLayout l, std::uint64_t block, std::int64_t lines, float base, float spread,
                                   int kind, std::uint64_t step, float* values) {
  AIMC_GRID_STRIDE(i, lines) {
    const float z = normal_at(l, block, i);
    values[i] = kind == 0   ? analog::line_value(base, spread, z)
                : kind == 1 ? analog::voltage_offset_line(spread, z, normal_at(l, block + step, i))
                            : analog::read_asymmetry_factor(spread, z);
  }
}

unsigned row_blocks(std::int64_t rows) {
  return static_cast<unsigned>(std::min<std::int64_t>(std::max<std::int64_t>(rows, 1), 1 << 20));
}

// The crossbar with its device weights.
using Crossbar = analog::Crossbar<&cuda::gemm>;

// α for every row on the host (all 1 without noise management); as the CPU's
// noise_management(), with the AVERAGE_ABS_MAX scan over the rows on the host.
std::vector<float> noise_management(const Periphery& p, const float* x, std::int64_t n, std::int64_t in_len,
                                    float* nm_running, Buffer<float>& alpha_dev) {
  std::vector<float> alpha(static_cast<std::size_t>(n), 1.f);
  if (p.nm == NoiseManagementType::None) return alpha;
  const bool average = p.nm == NoiseManagementType::AverageAbsMax;
  if (average && !nm_running)
    throw ValueError("analog MVM: AVERAGE_ABS_MAX noise management needs the running value (nm_running)");
  Periphery q = p;
  if (average) q.nm_thres = 0.f;  // the running mean uses the plain max|x|
  const NoiseManagementType type = average ? NoiseManagementType::AbsMax : p.nm;
  AIMC_LAUNCH(noise_management_kernel, row_blocks(n), kThreads)(q, type, x, in_len, nullptr, n, alpha_dev.get());
  launched("analog MVM noise-management kernel");
  alpha_dev.download(alpha.data(), alpha.size());
  if (average) analog::average_abs_max_scan(alpha.data(), n, nm_running);
  return alpha;
}

cpu::AnalogMvmStats run_analog(const Periphery& p, const Crossbar& cb, const float* x, std::int64_t n, float* y,
                               const cpu::AnalogRandom& random, float* nm_running, int passes_max) {
  const std::int64_t in_len = cb.in_len(), out_len = cb.out_len();
  const MvmLayout layout = analog::make_mvm_layout(random.seed, random.stream, random.offset, n, in_len, out_len);
  cpu::AnalogMvmStats stats;
  stats.blocks = static_cast<std::uint64_t>(passes_max) * static_cast<std::uint64_t>(n) * layout.slot;
  if (n == 0) return stats;

  Buffer<float> alpha_dev(static_cast<std::size_t>(n));
  const bool nm_on = p.nm != NoiseManagementType::None;
  std::vector<float> alpha = noise_management(p, x, n, in_len, nm_running, alpha_dev);
  alpha_dev.upload(alpha.data(), alpha.size());  // every entry defined (worst case reads them back)
  std::vector<std::int64_t> active, zero;
  active.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    if (nm_on && !(alpha[i] > 0.f) && p.inp_noise <= 0.f) zero.push_back(i);
    else active.push_back(i);
  }
  Buffer<std::int64_t> ids(static_cast<std::size_t>(n));
  if (!zero.empty()) {
    ids.upload(zero.data(), zero.size());
    const auto count = static_cast<std::int64_t>(zero.size());
    AIMC_LAUNCH(zero_rows_kernel, blocks_for(count * out_len), kThreads)(ids.get(), count, out_len, y);
    launched("analog MVM zero-rows kernel");
  }

  const bool ir = p.ir_drop > 0.f, pcm = p.wn == WeightNoiseType::PCMRead;
  const bool additive = p.wn == WeightNoiseType::AdditiveConstant, voffset = p.has_voffset;
  const bool asym = p.pos_neg && p.w_asym != nullptr;  // the negative pass reads W·a
  const std::int64_t rows_max = p.pos_neg ? 2 * n : n;
  const std::size_t in_elems = static_cast<std::size_t>(rows_max * in_len);
  const std::size_t out_elems = static_cast<std::size_t>(rows_max * out_len);
  Buffer<float> v(in_elems), out(out_elems), scale_dev(static_cast<std::size_t>(n));
  Buffer<std::uint8_t> passed_dev(static_cast<std::size_t>(n));
  const std::size_t w_elems = static_cast<std::size_t>(cb.out_size * cb.in_size);
  Buffer<float> abs_w(ir || pcm ? w_elems : 0), w_neg(asym ? w_elems : 0), abs_w_neg(asym && (ir || pcm) ? w_elems : 0);
  Buffer<float> ref(voffset ? static_cast<std::size_t>(rows_max) : 0);
  Buffer<float> tmp(ir || pcm ? in_elems : 0), current(ir ? out_elems : 0), ramped(ir ? out_elems : 0);
  Buffer<float> pcm_sum(pcm ? out_elems : 0), sd(additive ? static_cast<std::size_t>(rows_max) : 0);
  if (ir || pcm) {
    const std::int64_t weights = cb.out_size * cb.in_size;
    AIMC_LAUNCH(abs_kernel, blocks_for(weights), kThreads)(cb.w, weights, abs_w.get());
    launched("analog MVM abs kernel");
  }
  if (asym) {
    const std::int64_t weights = cb.out_size * cb.in_size;
    AIMC_LAUNCH(mul_kernel, blocks_for(weights), kThreads)(cb.w, p.w_asym, weights, 0, w_neg.get());
    if (ir || pcm) AIMC_LAUNCH(mul_kernel, blocks_for(weights), kThreads)(cb.w, p.w_asym, weights, 1, abs_w_neg.get());
    launched("analog MVM read-asymmetry kernel");
  }
  const float* neg = asym ? w_neg.get() : cb.w;
  const float* abs_neg = asym ? abs_w_neg.get() : abs_w.get();
  std::vector<float> scale;
  std::vector<std::uint8_t> passed;
  bool use_alpha = nm_on;
  float r = 1.f;
  for (int pass = 0; !active.empty(); ++pass) {
    const auto m = static_cast<std::int64_t>(active.size());
    ids.upload(active.data(), active.size());
    if (p.worst_case && pass == 1) {
      r = 1.f;
      use_alpha = true;
      AIMC_LAUNCH(noise_management_kernel, row_blocks(m), kThreads)(p, NoiseManagementType::AbsMaxNPSum, x, in_len,
                                                                    ids.get(), m, alpha_dev.get());
      launched("analog MVM noise-management kernel");
      alpha_dev.download(alpha.data(), alpha.size());
    }
    const std::int64_t rows = p.pos_neg ? 2 * m : m;
    scale.assign(static_cast<std::size_t>(m), 1.f);
    for (std::int64_t k = 0; k < m; ++k) scale[k] = analog::dac_scale(p, alpha[active[k]], use_alpha, r);
    scale_dev.upload(scale.data(), scale.size());

    AIMC_LAUNCH(dac_kernel, blocks_for(m * in_len), kThreads)(p, layout, pass, x, in_len, ids.get(), scale_dev.get(),
                                                              m, v.get());
    launched("analog MVM DAC kernel");
    cb.product_phases(neg, cb.w, v.get(), rows, m, out.get());
    if (ir || p.wn != WeightNoiseType::None || voffset) {
      if (ir) {
        AIMC_LAUNCH(map_inputs_kernel, blocks_for(rows * in_len), kThreads)(v.get(), rows * in_len, in_len, 0,
                                                                            tmp.get());
        cb.product_phases(abs_neg, abs_w.get(), tmp.get(), rows, m, current.get());
        AIMC_LAUNCH(map_inputs_kernel, blocks_for(rows * in_len), kThreads)(v.get(), rows * in_len, in_len, 1,
                                                                            tmp.get());
        cb.product_phases(neg, cb.w, tmp.get(), rows, m, ramped.get());
      }
      if (pcm) {
        AIMC_LAUNCH(map_inputs_kernel, blocks_for(rows * in_len), kThreads)(v.get(), rows * in_len, in_len, 2,
                                                                            tmp.get());
        cb.product_phases(abs_neg, abs_w.get(), tmp.get(), rows, m, pcm_sum.get());
      }
      if (additive) {
        AIMC_LAUNCH(row_norm_kernel, blocks_for(rows), kThreads)(v.get(), rows, in_len, p.w_noise, sd.get());
      }
      if (voffset) {
        AIMC_LAUNCH(row_ref_kernel, blocks_for(rows), kThreads)(v.get(), rows, in_len, p.ref_scale, ref.get());
      }
      launched("analog MVM crossbar input kernels");
      const float a_scale = static_cast<float>(in_len) / p.ir_g_ratio;
      AIMC_LAUNCH(crossbar_effects_kernel, blocks_for(rows * out_len), kThreads)(
          p, layout, pass, ids.get(), m, rows, out_len, a_scale, ir ? current.get() : nullptr,
          ir ? ramped.get() : nullptr, pcm ? pcm_sum.get() : nullptr, additive ? sd.get() : nullptr,
          voffset ? ref.get() : nullptr, out.get());
      launched("analog MVM crossbar-effects kernel");
    }

    const bool stop = analog::bm_last_pass(p, pass, passes_max, r);
    AIMC_LAUNCH(adc_kernel, row_blocks(m), kThreads)(p, layout, pass, ids.get(), m, out_len, stop, scale_dev.get(),
                                                     out.get(), y, passed_dev.get());
    launched("analog MVM ADC kernel");
    stats.passes = pass + 1;
    if (stop) break;
    passed.resize(static_cast<std::size_t>(m));
    passed_dev.download(passed.data(), passed.size());
    std::vector<std::int64_t> next;
    for (std::int64_t k = 0; k < m; ++k)
      if (!passed[k]) next.push_back(active[k]);
    active.swap(next);
    r *= 2.f;
  }
  synchronize();
  return stats;
}

// Forward (W·x) or backward (Wᵀ·d) on device pointers, as cpu::analog_mvm_*.
cpu::AnalogMvmStats mvm(const char* what, bool backward, const IOParameters& io, const float* w,
                        std::int64_t out_size, std::int64_t in_size, const float* x, std::int64_t n, float* y,
                        const cpu::AnalogLineValues& lines, const cpu::AnalogRandom& random, float* nm_running) {
  analog::check_mvm_sizes(what, out_size, in_size, n, w, x, y);
  const Crossbar cb{{out_size, in_size, backward}, w};
  if (io.is_perfect) {
    if (n > 0) cuda::gemm(cb.gemm(n), io.out_scale, x, w, 0.f, y);
    return cpu::AnalogMvmStats{0, n > 0 ? 1 : 0};
  }
  const Periphery p = analog::resolve_periphery(io, lines, backward);
  return run_analog(p, cb, x, n, y, random, nm_running, backward ? 1 : cpu::analog_mvm_max_passes(io));
}

}  // namespace

cpu::AnalogMvmStats analog_mvm_forward(const IOParameters& io, const float* w, std::int64_t out_size,
                                       std::int64_t in_size, const float* x, std::int64_t n, float* y,
                                       const cpu::AnalogLineValues& lines, const cpu::AnalogRandom& random,
                                       float* nm_running) {
  return mvm("cuda::analog_mvm_forward", false, io, w, out_size, in_size, x, n, y, lines, random, nm_running);
}

cpu::AnalogMvmStats analog_mvm_backward(const IOParameters& io, const float* w, std::int64_t out_size,
                                        std::int64_t in_size, const float* d, std::int64_t n, float* dx,
                                        const cpu::AnalogLineValues& lines, const cpu::AnalogRandom& random,
                                        float* nm_running) {
  return mvm("cuda::analog_mvm_backward", true, io, w, out_size, in_size, d, n, dx, lines, random, nm_running);
}

std::uint64_t draw_analog_line_values(const IOParameters& io, std::int64_t lines, const cpu::AnalogRandom& random,
                                      float* nonlinearity, float* noise, float* v_offset) {
  if (lines < 0) throw ShapeError("cuda::draw_analog_line_values: lines = " + std::to_string(lines) + " must be >= 0");
  const std::uint64_t blocks = static_cast<std::uint64_t>((lines + 3) / 4);
  const MvmLayout l = analog::make_mvm_layout(random.seed, random.stream, random.offset, 0, 0, 0);
  if (nonlinearity && lines > 0) {
    const float n0 = io.out_nonlinearity / analog::bound_or_one(io.out_bound);
    const float sd = std::max(io.out_nonlinearity_std, 0.f);
    AIMC_LAUNCH(line_values_kernel, blocks_for(lines), kThreads)(l, random.offset, lines, n0, sd, 0, 0, nonlinearity);
    launched("draw_analog_line_values kernel");
  }
  if (noise && lines > 0) {
    AIMC_LAUNCH(line_values_kernel, blocks_for(lines), kThreads)(l, random.offset + blocks, lines, io.out_noise,
                                                         io.out_noise_std, 0, 0, noise);
    launched("draw_analog_line_values kernel");
  }
  if (v_offset && lines > 0) {
    AIMC_LAUNCH(line_values_kernel, blocks_for(lines), kThreads)(l, random.offset + 2 * blocks, lines, 0.f,
                                                                 io.v_offset_std, 1, blocks, v_offset);
    launched("draw_analog_line_values kernel");
  }
  return 4 * blocks;
}

std::uint64_t draw_weight_read_asymmetry(const IOParameters& io, std::int64_t count, const cpu::AnalogRandom& random,
                                         float* factors) {
  if (count < 0)
    throw ShapeError("cuda::draw_weight_read_asymmetry: count = " + std::to_string(count) + " must be >= 0");
  if (count > 0 && !factors) throw ValueError("cuda::draw_weight_read_asymmetry: null data pointer");
  const MvmLayout l = analog::make_mvm_layout(random.seed, random.stream, random.offset, 0, 0, 0);
  if (count > 0) {
    AIMC_LAUNCH(line_values_kernel, blocks_for(count), kThreads)(l, random.offset, count, 0.f,
                                                                 io.w_read_asymmetry_dtod, 2, 0, factors);
    launched("draw_weight_read_asymmetry kernel");
  }
  return static_cast<std::uint64_t>((count + 3) / 4);
}

}  // namespace aimc::cuda
