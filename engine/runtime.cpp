// Runtime services (see runtime.h).
#include "engine/runtime.h"

#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"

namespace aimc {

void set_num_threads(int n) { cpu::set_num_threads(n); }
int num_threads() { return cpu::num_threads(); }
bool cuda_available() { return cuda::gpu_available(); }
std::string version() { return "0.2.0"; }

}  // namespace aimc
