// Runtime services: thread count, version, CUDA availability.
#pragma once

#include <string>

namespace aimc {

// Limit worker threads for every parallel loop (n <= 0: all cores). Results
// are bitwise identical for any thread count.
void set_num_threads(int n);
int num_threads();

// True when the CUDA backend library loads and a GPU is usable (false in a
// CPU-only build).
bool cuda_available();

std::string version();

}  // namespace aimc
