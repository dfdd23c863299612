// CPU-only build: the CUDA entry points exist but report that no GPU is usable.
#include <stdexcept>

#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error("aimc was built without CUDA (reconfigure with -Dcuda=enabled on a machine with nvcc)");
}
}  // namespace

bool available() { return false; }
int device_count() { return 0; }
void* device_malloc(std::size_t) { unavailable(); }
void device_free(void*) noexcept {}
void release_cached_memory() {}
void copy_host_to_device(void*, const void*, std::size_t) { unavailable(); }
void copy_device_to_host(void*, const void*, std::size_t) { unavailable(); }
void copy_device_to_device(void*, const void*, std::size_t) { unavailable(); }
void synchronize() {}
void fill(float*, std::size_t, float) { unavailable(); }
void axpy(std::size_t, float, const float*, float*) { unavailable(); }
void scale(float*, std::size_t, float) { unavailable(); }
void row_abs_max(const float*, std::int64_t, std::int64_t, std::int64_t, float*) { unavailable(); }
void gemm(const cpu::GemmShape&, float, const float*, const float*, float, float*) { unavailable(); }
cpu::AnalogMvmStats analog_mvm_forward(const IOParameters&, const float*, std::int64_t, std::int64_t, const float*,
                                       std::int64_t, float*, const cpu::AnalogLineValues&, const cpu::AnalogRandom&,
                                       float*, bool) {
  unavailable();
}
cpu::AnalogMvmStats analog_mvm_backward(const IOParameters&, const float*, std::int64_t, std::int64_t, const float*,
                                        std::int64_t, float*, const cpu::AnalogLineValues&, const cpu::AnalogRandom&,
                                        float*, bool) {
  unavailable();
}
std::uint64_t draw_analog_line_values(const IOParameters&, std::int64_t, const cpu::AnalogRandom&, float*, float*,
                                      float*) {
  unavailable();
}
std::uint64_t draw_weight_read_asymmetry(const IOParameters&, std::int64_t, const cpu::AnalogRandom&, float*) {
  unavailable();
}
void input_range_clip(const float*, std::int64_t, float, float*) { unavailable(); }
void input_range_backward(const float*, const float*, std::int64_t, float, float*, double*, double*) {
  unavailable();
}
void input_range_data_stats(const float*, std::int64_t, double*, double*) { unavailable(); }
std::uint64_t lightning_forward(const analog::LightningLaw&, const float*, std::int64_t,
                                const std::vector<std::int64_t>&, const std::vector<std::int64_t>&,
                                const std::vector<const float*>&, const std::vector<const float*>&,
                                const std::vector<float>&, std::uint64_t, std::uint64_t, std::uint64_t, float*) {
  unavailable();
}
void fill_normal(std::uint64_t, std::uint64_t, std::uint64_t, std::size_t, float*) { unavailable(); }
void pcm_program(const PcmLaw&, const float*, std::size_t, const float*, const float*, float*, float*) {
  unavailable();
}
void pcm_drift(const PcmLaw&, const PcmDriftTime&, const float*, const float*, const float*, std::size_t, float*) {
  unavailable();
}

void pair_to_conductances(const PairLaw&, double, const float*, std::size_t, float*) { unavailable(); }
void pair_to_weights(const PairLaw&, double, const float*, std::size_t, float*) { unavailable(); }
void table_to_conductances(const PairTables&, double, const float*, std::size_t, float*) { unavailable(); }
void single_to_conductances(double, double, double, const float*, std::size_t, float*) { unavailable(); }
void single_to_weights(double, double, double, const float*, std::size_t, float*) { unavailable(); }
void column_abs_sums(const float*, std::size_t, std::size_t, double*) { unavailable(); }
void table_drift_exponent(const DriftTable&, double, const float*, std::size_t, const float*, float*) {
  unavailable();
}
void reram_program(const ReRamCmoLaw&, const float*, std::size_t, const float*, float*) { unavailable(); }
void reram_drift(const ReRamCmoLaw&, const ReRamCmoDriftTime&, const float*, const float*, std::size_t, float*) {
  unavailable();
}

// Weight transforms (kernels/cuda/weight_transforms.cu)
std::uint64_t weight_modifier(const ModifierLaw&, const float*, std::size_t, std::size_t, float*, std::uint64_t,
                              std::uint64_t, std::uint64_t) {
  unavailable();
}
void weight_clip(ClipKind, float, float, float*, std::size_t, std::size_t) { unavailable(); }
void weight_remap(const RemapLaw&, float*, std::size_t, std::size_t, float*) { unavailable(); }

}  // namespace aimc::cuda
