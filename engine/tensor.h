// Tensor: an n-dimensional (0 to 5-D) strided view of a Storage, plus the
// autograd record (requires_grad, grad, the node that produced it).
//
// Storage is row-major; views (reshape of contiguous data, slice, transpose)
// share it. Copies happen only where a function says so (clone, contiguous
// of a non-contiguous view, to). A Tensor is a cheap handle: copying it
// shares the same data and autograd record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/storage.h"

namespace aimc {

using Shape = std::vector<std::int64_t>;
constexpr int kMaxDims = 5;

std::string shape_str(const Shape& s);
std::int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories (uninitialised, zeros, ones, constant, from host values).
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<std::int32_t>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape);
  static Tensor scalar(double value, DType dtype = DType::Float32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t size(std::int64_t d) const;  // negative d counts from the end
  std::int64_t numel() const;
  std::int64_t offset() const;  // in elements, into the storage
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;

  // Typed pointer to the first element (respect strides() unless contiguous).
  // Throws ValueError on a dtype mismatch.
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  double item() const;                       // one-element tensor
  std::vector<float> to_vector() const;      // any float dtype, any device
  std::vector<double> to_double_vector() const;

  Tensor contiguous() const;                 // self if already contiguous
  Tensor clone() const;                      // deep copy (differentiable)
  Tensor to(Device device) const;            // copy to another device (self if same; differentiable)
  Tensor to(DType dtype) const;              // converted copy (self if same)
  // Moves the data (and the gradient's) to `device` IN PLACE: the storage is
  // moved, so this handle, its copies and every view of the same storage
  // follow (modules and optimizers keep their handles). Not recorded.
  // DeviceError without a usable GPU or for a GPU index out of range.
  Tensor& move_to_(Device device);

  // Views and shape ops; differentiable (see engine/ops.h for the free forms).
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(std::int64_t d0, std::int64_t d1) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end) const;
  Tensor detach() const;  // same data, no autograd record

  // In-place updates for optimizers and initialisers; never recorded.
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);          // same shape; any devices
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha*other (same shape)
  Tensor& mul_(double alpha);

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool value = true);  // leaves only
  Tensor grad() const;                      // undefined until a backward reaches it
  void set_grad(const Tensor& grad);
  void zero_grad();                         // drops the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const;
  // Backpropagates from this tensor. grad_output defaults to 1 for a
  // one-element tensor. The graph is freed unless retain_graph.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  // elements
  Shape shape;
  Shape strides;            // elements
  DType dtype = DType::Float32;
  // Autograd record.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

// Shape checks that throw ShapeError naming both shapes.
void check_same_shape(const Tensor& a, const Tensor& b, const char* op);
void check_dtype(const Tensor& t, DType dtype, const char* op);
void check_float(const Tensor& t, const char* op);
void check_cpu(const Tensor& t, const char* op);
std::int64_t normalize_dim(std::int64_t d, std::int64_t rank, const char* op);

// Calls f with a value of the tensor's float type: f(float{}) or f(double{}).
template <class F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  throw ValueError(std::string(op) + ": expected a float32 or float64 tensor, got " + dtype_name(dtype));
}

template <class T>
T* Tensor::data() {
  check_defined("data");
  if (dtype() != dtype_of<T>::value)
    throw ValueError(std::string("data<") + dtype_name(dtype_of<T>::value) + ">() on a " +
                     dtype_name(dtype()) + " tensor");
  return static_cast<T*>(raw_data());
}

template <class T>
const T* Tensor::data() const {
  check_defined("data");
  if (dtype() != dtype_of<T>::value)
    throw ValueError(std::string("data<") + dtype_name(dtype_of<T>::value) + ">() on a " +
                     dtype_name(dtype()) + " tensor");
  return static_cast<const T*>(raw_data());
}

}  // namespace aimc
