// The engine's op table and device check (see dispatch.h).
#include "engine/dispatch.h"

#include <stdexcept>

#include "kernels/cuda/backend.h"

namespace aimc {

const std::vector<EngineOp>& engine_ops() {
  static const std::vector<EngineOp> ops = {
      // elementwise with broadcasting (ops_elementwise.cpp)
      {"add", true}, {"sub", true}, {"mul", true}, {"div", true}, {"add_scalar", true}, {"mul_scalar", true},
      {"neg", true}, {"exp", true}, {"log", true}, {"sqrt", true}, {"square", true}, {"abs", true},
      {"pow_scalar", true}, {"expand_to", true},
      // activations (ops_activation.cpp)
      {"relu", true}, {"leaky_relu", true}, {"sigmoid", true}, {"tanh", true}, {"gelu", true}, {"erf", true},
      // reductions, softmax, losses (ops_reduce.cpp); mean is sum then mul_scalar
      {"sum", true}, {"softmax", true}, {"log_softmax", true}, {"cross_entropy", true}, {"mse_loss", true},
      {"argmax_rows", true},
      // copies and in-place updates (tensor.cpp, ops_shape.cpp); permute is a
      // strided view made contiguous. clone, to(device) and copy_ move bytes
      // of any dtype and are not ops.
      {"contiguous", true}, {"fill_", true}, {"add_", true}, {"mul_", true}, {"to(dtype)", false}, {"concat", true},
      // linear algebra (ops_linalg.cpp)
      {"matmul", true}, {"linear", true},
      // convolution (ops_conv.cpp)
      {"im2col", true}, {"col2im", true}, {"rows_to_channels", true}, {"conv", true},  // conv: groups 1
      {"conv_transpose", false},
      // pooling (ops_pool.cpp)
      {"max_pool", true}, {"avg_pool", true}, {"global_avg_pool", true},
      // normalisation and regularisation (ops_norm.cpp)
      {"batch_norm", false}, {"dropout", true},
      // elementwise maps with three inputs (elementwise.h map_ternary)
      {"map_ternary", false},
  };
  return ops;
}

namespace {
const EngineOp& find_op(const std::string& op) {
  const std::string name = op.substr(0, op.find(' '));
  for (const EngineOp& e : engine_ops())
    if (name == e.name) return e;
  throw Error("internal: engine op '" + name + "' is not in the dispatch table (engine/dispatch.cpp)");
}
}  // namespace

bool op_runs_on(const std::string& op, Device device) {
  const EngineOp& e = find_op(op);
  return device.is_cpu() || e.cuda;
}

Device op_device(const char* op, std::initializer_list<Tensor> inputs) {
  Device device = Device::cpu();
  bool first = true;
  bool float64 = false;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (first) device = t.device();
    else if (t.device() != device)
      throw DeviceError(std::string(op) + ": inputs are on different devices, " + device.str() + " and " +
                        t.device().str() + " (move them with .to(device) first)");
    first = false;
    float64 = float64 || t.dtype() == DType::Float64;
  }
  if (device.is_cpu()) return device;
  if (!op_runs_on(op, device))
    throw DeviceError(std::string(op) + ": no " + device.str() +
                      " kernel; this op runs on the CPU only (move its inputs with .to(Device::cpu()))");
  if (float64)
    throw DeviceError(std::string(op) + ": float64 on " + device.str() +
                      " is not supported (CUDA ops run float32; float64 stays on the CPU)");
  return device;
}

const cuda::Backend& cuda_kernels() {
  try {
    return cuda::backend();
  } catch (const DeviceError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw DeviceError(e.what());
  }
}

}  // namespace aimc
