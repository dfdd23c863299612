// ONNX import and export (see onnx_io.h): what a build without ONNX support
// answers. With it, the work is in convert/onnx/: common (operator list,
// bounds, tensor decoding), importer and import_ops (ONNX -> Graph),
// exporter (Module -> ONNX).
#include "convert/onnx_io.h"

#include "aimc_config.h"
#include "engine/error.h"

#if AIMC_HAVE_ONNX

#include "convert/onnx/common.h"

namespace aimc {

bool onnx_available() { return true; }
void require_onnx_support() {}
std::vector<std::string> onnx_supported_ops() { return onnx_detail::supported_ops(); }

}  // namespace aimc

#else  // !AIMC_HAVE_ONNX

namespace aimc {

namespace {
[[noreturn]] void no_onnx() {
  throw ConfigError("ONNX: this build of aimc was built without ONNX support (install libprotobuf-dev and "
                    "protobuf-compiler and reconfigure with -Donnx=enabled)");
}
}  // namespace

bool onnx_available() { return false; }
void require_onnx_support() { no_onnx(); }
std::vector<std::string> onnx_supported_ops() { return {}; }
OnnxModel import_onnx(const std::string&, const OnnxImportOptions&) { no_onnx(); }
OnnxModel import_onnx_bytes(const std::string&, const OnnxImportOptions&, const std::string&) { no_onnx(); }
std::string export_onnx_bytes(Module&, const std::vector<std::int64_t>&) { no_onnx(); }
void export_onnx(Module&, const std::vector<std::int64_t>&, const std::string&) { no_onnx(); }

}  // namespace aimc

#endif
