// Measured peak float32 FMA throughput of this CPU (all worker threads), the
// napkin-math reference for GEMM efficiency.
#pragma once

namespace aimc::bench {

// GFLOP/s of independent register-resident FMA chains, best of a few runs.
double measured_fma_peak_gflops(int threads);

}  // namespace aimc::bench
