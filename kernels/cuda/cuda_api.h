// Host-side entry points of the CUDA kernels, defined in kernels/cuda/*.cu
// and built into libaimc_cuda.so. No CUDA types here, so C++ code can include
// it. libaimc reaches them only through the table of backend.h (loaded when a
// GPU is asked for); the CUDA tests also call them directly.
// Sizes are element counts unless named *_bytes. Failures throw
// std::runtime_error; engine/ turns them into aimc::DeviceError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/analog/conductance_law.h"
#include "kernels/analog/io_parameters.h"
#include "kernels/analog/lightning_law.h"
#include "kernels/analog/pcm_law.h"
#include "kernels/analog/reram_law.h"
#include "kernels/analog/weight_transform_law.h"
#include "kernels/engine/elementwise_law.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/pulsed_update.h"
#include "kernels/optim_law.h"

namespace aimc::cuda {

// True when aimc was built with CUDA and a GPU is present and usable.
bool available();
int device_count();
// GPU `index`'s name as the driver reports it ("NVIDIA H200"), written
// NUL-terminated into out[size] (cut to fit); "" when it cannot be read.
void device_name(int index, char* out, std::size_t size);
// Makes GPU `index` current for the calling host thread: its kernels, copies,
// cuBLAS calls and allocations go to that GPU from then on (GPU 0 until
// called). std::out_of_range naming the index when it is not below
// device_count(). current_device() is the one last made current.
void use_device(int index);
int current_device();

// Device memory. Freed blocks are cached for reuse (up to 1 GiB, in stream
// order on the default stream; kernels/cuda/block_cache.h), so per-call
// scratch buffers cost no cudaMalloc / cudaFree; release_cached_memory()
// hands the cached blocks back to CUDA.
void* device_malloc(std::size_t bytes);
void device_free(void* ptr) noexcept;
void release_cached_memory();
// cudaMalloc calls the caches made so far, all GPUs together (tests: steady
// training allocates nothing new).
std::size_t raw_device_allocations();
void copy_host_to_device(void* dst, const void* src, std::size_t bytes);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes);
void synchronize();

// x[i] = value for i < n.
void fill(float* x, std::size_t n, float value);
// y[i] += alpha * x[i] for i < n.
void axpy(std::size_t n, float alpha, const float* x, float* y);
// x[i] *= alpha for i < n.
void scale(float* x, std::size_t n, float alpha);

// Optimizer steps (kernels/optim_law.h) over n contiguous float32 elements of
// weights w, gradient g and state: b the SGD momentum buffer (unused without
// momentum), m and v Adam's moments.
void sgd_step(const optim::SgdCoefficients<float>& c, std::size_t n, float* w, const float* g, float* b);
void adam_step(const optim::AdamCoefficients<float>& c, std::size_t n, float* w, const float* g, float* m,
               float* v);

// m[r] = max_c |w[r, c]| over the first cols_used of cols columns (0 for an
// empty row).
void row_abs_max(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t cols_used, float* m);

// C = alpha·op(A)·op(B) + beta·C with the row-major conventions of
// cpu::gemm (kernels/cpu/gemm.h), through cuBLAS in FP32 (no TF32).
void gemm(const cpu::GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);

// The analog MVM of one tile (kernels/cuda/analog_mvm.cu): cpu::analog_mvm_*
// on device pointers (w, x/d, y/dx and the per-line values in `lines`), with
// the same model, Philox layout and per-element code (kernels/analog/
// periphery.h). nm_running stays a host pointer. The results equal the CPU's
// up to float rounding in the GEMM and fused multiply-adds, which can move a
// quantised output by one ADC step.
cpu::AnalogMvmStats analog_mvm_forward(const IOParameters& io, const float* w, std::int64_t out_size,
                                       std::int64_t in_size, const float* x, std::int64_t n, float* y,
                                       const cpu::AnalogLineValues& lines, const cpu::AnalogRandom& random,
                                       float* nm_running = nullptr);
cpu::AnalogMvmStats analog_mvm_backward(const IOParameters& io, const float* w, std::int64_t out_size,
                                        std::int64_t in_size, const float* d, std::int64_t n, float* dx,
                                        const cpu::AnalogLineValues& lines, const cpu::AnalogRandom& random,
                                        float* nm_running = nullptr);
// cpu::draw_analog_line_values and cpu::draw_weight_read_asymmetry into
// device buffers (same values).
std::uint64_t draw_analog_line_values(const IOParameters& io, std::int64_t lines, const cpu::AnalogRandom& random,
                                      float* nonlinearity, float* noise, float* v_offset = nullptr);
std::uint64_t draw_weight_read_asymmetry(const IOParameters& io, std::int64_t count, const cpu::AnalogRandom& random,
                                         float* factors);

// Input ranges (kernels/cuda/input_range.cu), as layers/tiles/input_range.cpp:
// v[i] = clip(x[i], ±r)/r; dx[i] = g[i]/r inside the range (0 clipped) with
// the two sums of the range gradient (clipped terms, count inside); and the
// mean and Σ(x − mean)² of the data initialisation. The sums (host doubles)
// add the CPU's terms in the CPU's order (a fused multiply-add may differ).
void input_range_clip(const float* x, std::int64_t n, float r, float* v);
void input_range_backward(const float* x, const float* g, std::int64_t n, float r, float* dx, double* clip_sum,
                          double* inside);
void input_range_data_stats(const float* x, std::int64_t n, double* mean, double* squared_deviation);

// The lightning-style forward of layers/tiles/lightning_forward.h on CUDA
// (kernels/cuda/lightning.cu), forward only: y[M, Σ out_pieces] from x[M,
// Σ in_pieces] over the tile grid (tile t = r·C + c, row-major) with the stored
// weights[t]; the modifier (law.quant_states, law.weight_noise) is applied to a
// copy. input_ranges: one per tile column, or empty when the input range is
// off. Tile t draws Generator::normal's values from (seed, (first_tile_id +
// t)·16 + 3, counter) for the weight noise and (..·16 + 4, counter) for the
// output noise. Returns the most Philox blocks one tile's draws used.
std::uint64_t lightning_forward(const analog::LightningLaw& law, const float* x, std::int64_t m,
                                const std::vector<std::int64_t>& in_pieces, const std::vector<std::int64_t>& out_pieces,
                                const std::vector<const float*>& weights, const std::vector<float>& input_ranges,
                                std::uint64_t seed, std::uint64_t first_tile_id, std::uint64_t counter, float* y);
// The pieces of that forward for the differentiable op (lightning_forward.cpp
// adds the GEMM, the scaling by r and the sums as engine ops), device
// pointers: out[i] = DAC(v[i]) with the step `step`; out = the modified copy of
// one tile's w[rows, cols] (law.quant_states, law.weight_noise, normals from
// (seed, stream, counter)); out = ADC(z + output noise) of one tile's z[m,
// n_out] with keep[e] = 0 where the clip cuts (its gradient), else 1 (keep may
// be null). wrow[rows or n_out]: max|W| of each weight row (row_abs_max).
// The last two return the Philox blocks their draws used.
void lightning_dac(const float* v, std::int64_t n, float step, float* out);
std::uint64_t lightning_modify_weights(const analog::LightningLaw& law, const float* w, std::int64_t rows,
                                       std::int64_t cols, const float* wrow, std::uint64_t seed, std::uint64_t stream,
                                       std::uint64_t counter, float* out);
std::uint64_t lightning_tile_outputs(const analog::LightningLaw& law, const float* z, std::int64_t m,
                                     std::int64_t n_out, const float* wrow, std::uint64_t seed, std::uint64_t stream,
                                     std::uint64_t counter, float* out, float* keep);

// Device-model kernels (kernels/cuda/device_noise.cu), device pointers. They
// compute what the CPU device models compute (shared AIMC_HD law code) and are
// checked by tests/test_cuda.cpp; the layers program their tiles on the host
// until the analog layers run on CUDA.
// z[j] = normal j of (seed, stream) from `block`, the bits of cpu::fill_normal.
void fill_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::size_t count, float* z);
// g_prog[i] = pcm_program(g_target[i], xi_prog[i]), nu[i] = pcm_drift_exponent(g_target[i], xi_nu[i]).
void pcm_program(const PcmLaw& law, const float* g_target, std::size_t n, const float* xi_prog, const float* xi_nu,
                 float* g_prog, float* nu);
// g[i] = pcm_read(t, g_prog[i], nu[i], xi[i]).
void pcm_drift(const PcmLaw& law, const PcmDriftTime& t, const float* g_prog, const float* nu, const float* xi,
               std::size_t n, float* g);

// Pair converters: g[d·n + i] = pair_conductance(s, w[i], d) for every
// device d; w[i] = pair_weight(s, g, n, i).
void pair_to_conductances(const PairLaw& law, double s, const float* w, std::size_t n, float* g);
void pair_to_weights(const PairLaw& law, double s, const float* g, std::size_t n, float* w);
// CustomPair: g[d·n + i] = table_conductance(m, w[i], d), m = max|W| of the tile
// (back to weights with pair_to_weights).
void table_to_conductances(const PairTables& tables, double m, const float* w, std::size_t n, float* g);
// Single device: g[i] = single_conductance(g_min, s, w_min, w[i]) and back.
void single_to_conductances(double g_min, double s, double w_min, const float* w, std::size_t n, float* g);
void single_to_weights(double g_min, double s, double w_min, const float* g, std::size_t n, float* w);
// Drift-compensation readout: sums[j] = Σ_i |y[i·out + j]| (double, rows in order).
void column_abs_sums(const float* y, std::size_t in, std::size_t out, double* sums);
// Drift compensation of a tile's outputs y [rows, cols]: y[i, j] =
// drift_compensated(y[i, j], alpha, alpha_size, j) (kernels/analog/
// drift_compensation_law.h); alpha (device) holds 1 or cols values.
void drift_compensate(float* y, std::size_t rows, std::size_t cols, const float* alpha, std::size_t alpha_size);
// nu[i] = table_drift_exponent(g_target[i], xi[i]) (CustomDriftPCMLikeNoiseModel).
void table_drift_exponent(const DriftTable& table, double drift_scale, const float* g_target, std::size_t n,
                          const float* xi, float* nu);
// ReRAM-CMO: g_prog[i] = reram_program(g_target[i], xi[i]);
// g[i] = reram_read(t, g_prog[i], xi[i], xi[n + i]).
void reram_program(const ReRamCmoLaw& law, const float* g_target, std::size_t n, const float* xi, float* g_prog);
void reram_drift(const ReRamCmoLaw& law, const ReRamCmoDriftTime& t, const float* g_prog, const float* xi,
                 std::size_t n, float* g);

// Weight transforms (kernels/cuda/weight_transforms.cu): the CUDA twins of
// layers/tiles/weight_transforms.h on float32 [rows, cols] row-major device
// buffers, with the per-element math of kernels/analog/weight_transform_law.h.
// out = the modified w (w unchanged; the last column copied when
// law.copy_last_column); the Philox layout of the CPU (blocks from `counter`).
// Returns the Philox blocks used (modifier_sections(law, rows, cols).used).
std::uint64_t weight_modifier(const ModifierLaw& law, const float* w, std::size_t rows, std::size_t cols, float* out,
                              std::uint64_t seed, std::uint64_t stream, std::uint64_t counter);
// Clips w in place (fixed_value caps the non-fixed kinds when > 0).
void weight_clip(ClipKind kind, float sigma, float fixed_value, float* w, std::size_t rows, std::size_t cols);
// Remaps w in place and updates the device scales [rows] (per-row factors on the host).
void weight_remap(const RemapLaw& law, float* w, std::size_t rows, std::size_t cols, float* scales);
// Pulsed training (kernels/cuda/pulsed_update.cu): cpu::pulsed_update and
// cpu::pulsed_post_update on device pointers (x, d, w and the per-element
// device values; the structs themselves on the host), with the same random
// numbers and the same bits as the CPU. pulses, when not null, receives the
// number of pulses applied (the call then waits for the kernels).
void pulsed_update(const cpu::PulsedUpdateArgs& args, std::int64_t* pulses = nullptr);
void pulsed_post_update(const cpu::PulsedPostUpdateArgs& args);

// Engine ops (kernels/cuda/engine_ops.cu) on float32 device buffers, with the
// per-element math of kernels/engine/elementwise_law.h (engine/dispatch.h
// lists which engine ops run on CUDA).
// y[i] = unary<kind>(x[i], p) for i < n (x contiguous).
void engine_unary(engine_law::Unary kind, double p, const float* x, float* y, std::size_t n);
// y (contiguous, shape index.size) = binary<kind>(a, b, p) with a and b read
// through index.stride_a / stride_b (0 on broadcast dims).
void engine_binary(engine_law::Binary kind, double p, const float* a, const float* b,
                   const engine_law::StridedIndex& index, float* y);
// y (contiguous over the kept dims) = Σ of x over the reduced dims, in double.
void engine_sum(const float* x, const engine_law::ReduceIndex& index, float* y);
// Softmax (log_kind false) or log-softmax of contiguous x viewed as [outer,
// size, inner] along the middle dim, and its backward (y the forward output).
void engine_softmax(bool log_kind, const float* x, std::int64_t outer, std::int64_t size, std::int64_t inner,
                    float* y);
void engine_softmax_backward(bool log_kind, const float* g, const float* y, std::int64_t outer, std::int64_t size,
                             std::int64_t inner, float* gx);
// Mean cross entropy of logits [n, c] (contiguous) against labels [n] in
// [0, c): loss[0], with the per-row log-sum-exp lse[n] kept for the backward
// (row_loss[n] is scratch). gx = (g[0]/n)(softmax(x) - onehot(label)).
void engine_cross_entropy(const float* logits, const std::int32_t* labels, std::int64_t n, std::int64_t c,
                          double* lse, double* row_loss, float* loss);
// cpu::im2col and cpu::col2im on device pointers (kernels/cuda/im2col.cu),
// with the CPU's bits (col2im adds each element's terms in the CPU's order).
void im2col(const cpu::Im2colGeometry& g, std::int64_t batch, const float* image, float* cols);
void col2im(const cpu::Im2colGeometry& g, std::int64_t batch, const float* cols, float* image);
// Pooling (kernels/cuda/pool.cu): cpu::max_pool_* and cpu::avg_pool_* on
// device pointers (argmax too), with the CPU's window order and bits.
void max_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y,
                      std::int64_t* argmax);
void max_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y,
                       const std::int64_t* argmax, float* grad_x);
void avg_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y);
void avg_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x);
// y[p] = mean of the contiguous plane x[p·area, (p+1)·area), summed in float
// in order (global_avg_pool).
void engine_plane_mean(const float* x, std::int64_t planes, std::int64_t area, float* y);
// loss[0] = mean of (prediction[i] - target[i])² over n contiguous values,
// summed in double (mse_loss).
void engine_squared_error_mean(const float* prediction, const float* target, std::int64_t n, float* loss);
// dst[offset_a(i)] = src[offset_b(i)] for every i of index (row-major): a
// copy into a strided view (copy_ into a slice, concat).
void engine_strided_assign(const float* src, const engine_law::StridedIndex& index, float* dst);
// batch_norm (kernels/cuda/batch_norm.cu) on x viewed as [n, c, s], one
// thread per channel for the sums (double, the CPU's term order):
// mean[ch] = Σ x / (n·s), var[ch] = Σ (x - mean)² / (n·s) (biased).
void batch_norm_stats(const float* x, std::int64_t n, std::int64_t c, std::int64_t s, double* mean, double* var);
// y = x·scale[ch] + shift[ch] in float.
void batch_norm_apply(const float* x, std::int64_t n, std::int64_t c, std::int64_t s, const float* scale,
                      const float* shift, float* y);
// sum_dy[ch] = Σ g, sum_dy_xhat[ch] = Σ g·xhat with xhat = (x - mean)·inv_std
// (double, the CPU's order), then gx = w·inv_std·(g - mean_dy - xhat·mean_dy_xhat)
// with the means over n·s in training and 0 in eval.
void batch_norm_backward(const float* x, const float* g, std::int64_t n, std::int64_t c, std::int64_t s,
                         const double* mean, const double* inv_std, const double* w, bool training, double* sum_dy,
                         double* sum_dy_xhat, float* gx);
// out[i] = 1 with probability p, else 0: the draws of Generator::bernoulli
// (seed, stream) from Philox block `block` (four values a block).
void engine_bernoulli(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, float p, std::size_t n,
                      float* out);
void engine_cross_entropy_backward(const float* logits, const std::int32_t* labels, const double* lse,
                                   const float* g, std::int64_t n, std::int64_t c, float* gx);

}  // namespace aimc::cuda
