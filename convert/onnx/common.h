// Shared pieces of the ONNX reader and writer (convert/onnx_io.h): the
// operator list, bounds on untrusted sizes, names, and decoding of
// TensorProto values. Internal to the library (built with ONNX support only).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "convert/onnx.pb.h"
#include "engine/tensor.h"

namespace aimc::onnx_detail {

namespace onnx = aimc_onnx;

// The ONNX op types the importer understands.
const std::vector<std::string>& supported_ops();
std::string join(const std::vector<std::string>& v);         // "a, b, c"
std::string ints_str(const std::vector<std::int64_t>& v);    // "[1,2,3]"
// The element count of dims; ConfigError (prefixed by who) for a dim outside
// [0, kOnnxMaxDim] or more than kOnnxMaxElements elements.
std::int64_t checked_elements(const std::vector<std::int64_t>& dims, const std::string& who);
std::int64_t product(const std::vector<std::int64_t>& dims);

// A value of the ONNX graph during import.
struct Value {
  Tensor t;              // the constant, or the value for the probe input (zeros, batch 1)
  bool is_const = false;
  bool is_int = false;   // an integer tensor (shapes, indices), held as float64
  std::string gname;     // its name in the Graph ("" for a constant no node reads yet)
  // A float initializer of more than one element (a weight or bias of the
  // source model): read by a Graph op, it becomes a trainable parameter of
  // the Graph; scalars and everything computed at import stay constants.
  bool is_param = false;
  std::string init_name;  // the initializer's name: a parameter's name in the Graph
};

// A constant value (not a parameter).
inline Value constant_value(Tensor t, bool is_int = false) {
  Value v;
  v.t = std::move(t);
  v.is_const = true;
  v.is_int = is_int;
  return v;
}

// An ONNX data type's name ("float", "int64", ...).
std::string dtype_label(int t);
// "a<k>": the argument names of a one-op Graph.
std::string arg_name(std::size_t k);
// A TensorProto as a Value: float32/float64, or int64/int32/bool as integers
// (held as float64); ConfigError for other types, external or segmented data
// and sizes that disagree with the shape.
Value read_tensor(const onnx::TensorProto& p, const std::string& who);
// The values of t as integers (INT64_MAX/MIN saturate), and back.
std::vector<std::int64_t> to_ints(const Tensor& t);
Tensor ints_tensor(const std::vector<std::int64_t>& v, const Shape& shape);
// A Graph value name of s: letters, digits and '_' only, not starting with a digit.
std::string sanitize(const std::string& s);

}  // namespace aimc::onnx_detail
