// Shared pieces of the ONNX reader and writer (see common.h).
#include "convert/onnx/common.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "convert/onnx_io.h"
#include "engine/error.h"

namespace aimc::onnx_detail {

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose",
      "Div", "Dropout", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool",
      "Identity", "LayerNormalization", "LeakyRelu", "LogSoftmax", "MatMul", "MaxPool", "Mod", "Mul", "Neg", "Pow",
      "Range", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt",
      "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where"};
  return ops;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : ", ") + e;
  return s;
}

std::string ints_str(const std::vector<std::int64_t>& v) { return nlohmann::json(v).dump(); }

std::int64_t checked_elements(const std::vector<std::int64_t>& dims, const std::string& who) {
  std::int64_t n = 1;
  for (auto d : dims) {
    if (d < 0 || d > kOnnxMaxDim)
      throw ConfigError(who + ": dimension " + std::to_string(d) + " is outside [0, " + std::to_string(kOnnxMaxDim) +
                        "]");
    n *= std::max<std::int64_t>(d, 1);
    if (n > kOnnxMaxElements)
      throw ConfigError(who + ": shape " + ints_str(dims) + " has more than " + std::to_string(kOnnxMaxElements) +
                        " elements");
  }
  return n;
}

std::string dtype_label(int t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return "float";
    case onnx::TensorProto::DOUBLE: return "double";
    case onnx::TensorProto::INT64: return "int64";
    case onnx::TensorProto::INT32: return "int32";
    case onnx::TensorProto::BOOL: return "bool";
    case onnx::TensorProto::FLOAT16: return "float16";
    case onnx::TensorProto::BFLOAT16: return "bfloat16";
    case onnx::TensorProto::INT8: return "int8";
    case onnx::TensorProto::UINT8: return "uint8";
    default: return "type " + std::to_string(t);
  }
}

// "a<k>" (appended: "a" + to_string trips GCC 12's -Wrestrict false positive).
std::string arg_name(std::size_t k) {
  std::string s = "a";
  s += std::to_string(k);
  return s;
}

std::int64_t product(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

template <class T>
std::vector<T> raw_values(const std::string& raw, std::int64_t n, const std::string& who) {
  if (static_cast<std::int64_t>(raw.size()) != n * static_cast<std::int64_t>(sizeof(T)))
    throw ConfigError(who + ": raw_data holds " + std::to_string(raw.size()) + " bytes, the shape needs " +
                      std::to_string(n * static_cast<std::int64_t>(sizeof(T))));
  std::vector<T> v(static_cast<std::size_t>(n));
  if (n > 0) std::memcpy(v.data(), raw.data(), raw.size());  // ONNX stores little-endian, as x86/ARM
  return v;
}

template <class Field>
void check_count(const Field& f, std::int64_t n, const std::string& who) {
  if (static_cast<std::int64_t>(f.size()) != n)
    throw ConfigError(who + ": holds " + std::to_string(f.size()) + " values, the shape needs " + std::to_string(n));
}

// A TensorProto as a Value: float32/float64, or int64/int32/bool as integers.
Value read_tensor(const onnx::TensorProto& p, const std::string& who) {
  if (p.data_location() == onnx::TensorProto::EXTERNAL || p.external_data_size() > 0)
    throw ConfigError(who + ": external tensor data is not supported (save the model with its weights inside)");
  if (p.has_segment()) throw ConfigError(who + ": segmented tensors are not supported");
  std::vector<std::int64_t> dims(p.dims().begin(), p.dims().end());
  checked_elements(dims, who);
  const std::int64_t n = product(dims);
  const bool raw = p.has_raw_data();
  Value v;
  v.is_const = true;
  switch (p.data_type()) {
    case onnx::TensorProto::FLOAT: {
      std::vector<float> x;
      if (raw) x = raw_values<float>(p.raw_data(), n, who);
      else {
        check_count(p.float_data(), n, who);
        x.assign(p.float_data().begin(), p.float_data().end());
      }
      v.t = Tensor::from_vector(x, dims);
      return v;
    }
    case onnx::TensorProto::DOUBLE: {
      std::vector<double> x;
      if (raw) x = raw_values<double>(p.raw_data(), n, who);
      else {
        check_count(p.double_data(), n, who);
        x.assign(p.double_data().begin(), p.double_data().end());
      }
      v.t = Tensor::from_vector(x, dims);
      return v;
    }
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::BOOL: {
      std::vector<double> x;
      if (p.data_type() == onnx::TensorProto::INT64) {
        if (raw) {
          for (auto e : raw_values<std::int64_t>(p.raw_data(), n, who)) x.push_back(static_cast<double>(e));
        } else {
          check_count(p.int64_data(), n, who);
          for (auto e : p.int64_data()) x.push_back(static_cast<double>(e));
        }
      } else if (p.data_type() == onnx::TensorProto::INT32) {
        if (raw) {
          for (auto e : raw_values<std::int32_t>(p.raw_data(), n, who)) x.push_back(e);
        } else {
          check_count(p.int32_data(), n, who);
          for (auto e : p.int32_data()) x.push_back(e);
        }
      } else {
        if (raw) {
          for (auto e : raw_values<std::uint8_t>(p.raw_data(), n, who)) x.push_back(e != 0);
        } else {
          check_count(p.int32_data(), n, who);
          for (auto e : p.int32_data()) x.push_back(e != 0);
        }
      }
      v.t = Tensor::from_vector(x, dims);
      v.is_int = true;
      return v;
    }
    default:
      throw ConfigError(who + ": data type " + dtype_label(p.data_type()) +
                        " is not supported (supported: float, double, int64, int32, bool)");
  }
}

std::vector<std::int64_t> to_ints(const Tensor& t) {
  Tensor c = t.to(DType::Float64).contiguous();
  const double* d = c.data<double>();
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    const double x = d[i];
    // Shapes and indices are exact in a double up to 2^53; INT64_MAX (Slice's "to the end") saturates.
    out.push_back(x >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                              : x <= -9.2e18 ? std::numeric_limits<std::int64_t>::min()
                                             : static_cast<std::int64_t>(x));
  }
  return out;
}

Tensor ints_tensor(const std::vector<std::int64_t>& v, const Shape& shape) {
  std::vector<double> d(v.begin(), v.end());
  return Tensor::from_vector(d, shape);
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "v_" + out;
  return out;
}

}  // namespace aimc::onnx_detail
