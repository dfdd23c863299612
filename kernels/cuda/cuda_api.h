// Host-side entry points of the CUDA kernels. No CUDA types here, so CPU code
// can include it; without a CUDA build every call reports "unavailable".
// Sizes are element counts unless named *_bytes. Failures throw
// std::runtime_error; engine/ turns them into aimc::DeviceError.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/analog/conductance_law.h"
#include "kernels/analog/pcm_law.h"
#include "kernels/analog/reram_law.h"

namespace aimc::cuda {

// True when aimc was built with CUDA and a GPU is present and usable.
bool available();
int device_count();

void* device_malloc(std::size_t bytes);
void device_free(void* ptr) noexcept;
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
// nu[i] = table_drift_exponent(g_target[i], xi[i]) (CustomDriftPCMLikeNoiseModel).
void table_drift_exponent(const DriftTable& table, double drift_scale, const float* g_target, std::size_t n,
                          const float* xi, float* nu);
// ReRAM-CMO: g_prog[i] = reram_program(g_target[i], xi[i]);
// g[i] = reram_read(t, g_prog[i], xi[i], xi[n + i]).
void reram_program(const ReRamCmoLaw& law, const float* g_target, std::size_t n, const float* xi, float* g_prog);
void reram_drift(const ReRamCmoLaw& law, const ReRamCmoDriftTime& t, const float* g_prog, const float* xi,
                 std::size_t n, float* g);

}  // namespace aimc::cuda
