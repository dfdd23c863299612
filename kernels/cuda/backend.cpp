// Loading the CUDA backend library (see backend.h). Part of libaimc in every
// build; without CUDA it only reports that this build has none.
#include "kernels/cuda/backend.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "aimc_config.h"
#include "engine/error.h"

namespace aimc::cuda {
namespace {

std::atomic<RegisterFunction> installed_register{nullptr};

struct LoadedBackend {
  Backend table;
  bool ok = false;
  std::string error;  // why it did not load, when !ok
};

// Where to look, in order (see backend()).
std::vector<std::string> library_candidates() {
  if (const char* path = std::getenv(kBackendLibraryVariable); path != nullptr && *path != '\0') return {path};
  std::vector<std::string> paths;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&gpu_available), &info) != 0 && info.dli_fname != nullptr) {
    const std::filesystem::path here = std::filesystem::path(info.dli_fname).parent_path();
    if (!here.empty()) paths.push_back((here / kBackendLibrary).string());
  }
  paths.push_back(kBackendLibrary);  // LD_LIBRARY_PATH, the program's RUNPATH, ld.so.cache
  paths.push_back(std::string(AIMC_INSTALL_LIBDIR) + "/" + kBackendLibrary);
  return paths;
}

// The registration function of the first candidate that loads, or nullptr
// with every candidate's failure appended to `error`.
RegisterFunction open_library(std::string& error) {
  for (const std::string& path : library_candidates()) {
    // Never closed: the table points into it for the life of the process.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      if (void* symbol = dlsym(handle, "aimc_cuda_register")) return reinterpret_cast<RegisterFunction>(symbol);
    }
    const char* message = dlerror();
    std::string why = message != nullptr ? message : "unknown error";
    if (why.rfind(path, 0) != 0) why = path + ": " + why;  // dlerror names the file only when it is missing
    error += (error.empty() ? " " : "; ") + why;
  }
  return nullptr;
}

LoadedBackend load() {
  LoadedBackend out;
  RegisterFunction register_function = installed_register.load();
  if (register_function == nullptr) {
    if (!AIMC_HAVE_CUDA) {
      out.error = "aimc was built without CUDA (reconfigure with -Dcuda=enabled on a machine with nvcc)";
      return out;
    }
    std::string tried;
    register_function = open_library(tried);
    if (register_function == nullptr) {
      out.error = std::string("the CUDA backend ") + kBackendLibrary +
                  " could not be loaded (it needs the CUDA runtime, libcudart and libcublas; it is looked for next "
                  "to libaimc, on the loader's path and in " AIMC_INSTALL_LIBDIR ", or set " +
                  kBackendLibraryVariable + " to its path); tried:" + tried;
      return out;
    }
  }
  if (!register_function(&out.table, sizeof(Backend))) {
    out.error = std::string("the CUDA backend ") + kBackendLibrary + " is from another aimc build";
    return out;
  }
  out.ok = true;
  return out;
}

const LoadedBackend& loaded() {
  static const LoadedBackend backend = load();
  return backend;
}

}  // namespace

const Backend& backend() {
  const LoadedBackend& b = loaded();
  if (!b.ok) throw DeviceError(b.error);
  return b.table;
}

bool gpu_available() {
  const LoadedBackend& b = loaded();
  return b.ok && b.table.available();
}

void use_backend(RegisterFunction register_function) { installed_register.store(register_function); }

}  // namespace aimc::cuda
