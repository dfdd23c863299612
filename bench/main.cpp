// Standalone benchmark runner: prints the JSON of `aimc bench --json`.
//   build/bench/aimc_bench [entry ...]
#include <iostream>

#include "bench/benchmarks.h"
#include "engine/error.h"

int main(int argc, char** argv) {
  std::vector<std::string> names(argv + 1, argv + argc);
  try {
    std::cout << aimc::bench::run_benchmarks(names, {}).dump(2) << std::endl;
    return 0;
  } catch (const aimc::Error& e) {
    std::cerr << "aimc_bench: " << e.what() << "\n";
    return 2;
  }
}
