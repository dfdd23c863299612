// Tensor handle: factories, accessors, copies, in-place updates, autograd glue.
#include "engine/tensor.h"

#include <climits>
#include <limits>
#include <cstring>
#include <type_traits>
#include <sstream>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/ops.h"
#include "engine/strided.h"
#include "kernels/cuda/backend.h"

namespace aimc {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s)
    if (__builtin_mul_overflow(n, d, &n)) throw ShapeError("shape " + shape_str(s) + " has too many elements");
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  std::int64_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

namespace {
std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device) {
  if (shape.size() > static_cast<std::size_t>(kMaxDims))
    throw ShapeError("tensors have at most 5 dims, got " + shape_str(shape));
  for (auto d : shape)
    if (d < 0) throw ShapeError("negative size in shape " + shape_str(shape));
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(shape_numel(shape), static_cast<std::int64_t>(dtype_size(dtype)), &bytes))
    throw ShapeError("shape " + shape_str(shape) + " needs more bytes than can be addressed");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(bytes), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

template <class T>
Tensor from_values(const std::vector<T>& values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != shape_numel(shape))
    throw ShapeError("from_vector: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor t(make_impl(shape, dtype_of<T>::value, Device::cpu()));
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(make_impl(shape, dtype, device));
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) { return from_values(v, s); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s) { return from_values(v, s); }
Tensor Tensor::from_vector(const std::vector<std::int32_t>& v, const Shape& s) { return from_values(v, s); }
Tensor Tensor::from_vector(const std::vector<std::int64_t>& v, const Shape& s) { return from_values(v, s); }
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

void Tensor::check_defined(const char* what) const {
  if (!impl_) throw ValueError(std::string(what) + "() on an undefined tensor");
}
const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
const Shape& Tensor::strides() const { check_defined("strides"); return impl_->strides; }
std::int64_t Tensor::size(std::int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }
std::int64_t Tensor::numel() const { return shape_numel(shape()); }
std::int64_t Tensor::offset() const { check_defined("offset"); return impl_->offset; }
DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }
Device Tensor::device() const { check_defined("device"); return impl_->storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { check_defined("storage"); return impl_->storage; }

bool Tensor::is_contiguous() const {
  check_defined("is_contiguous");
  std::int64_t expected = 1;
  for (std::size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] != 1 && impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() {
  check_defined("raw_data");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}
const void* Tensor::raw_data() const {
  check_defined("raw_data");
  return static_cast<const char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}

double Tensor::item() const {
  if (numel() != 1) throw ShapeError("item() needs one element, got shape " + shape_str(shape()));
  Tensor c = to(Device::cpu()).contiguous();
  switch (dtype()) {
    case DType::Float32: return *c.data<float>();
    case DType::Float64: return *c.data<double>();
    case DType::Int32: return *c.data<std::int32_t>();
    case DType::Int64: return static_cast<double>(*c.data<std::int64_t>());
  }
  return 0;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(DType::Float32).contiguous();
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

std::vector<double> Tensor::to_double_vector() const {
  Tensor c = to(Device::cpu()).to(DType::Float64).contiguous();
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous");
  if (is_contiguous()) return *this;
  Tensor out;
  if (op_device("contiguous", {*this}).is_cuda()) {
    out = detail::cuda_contiguous(detach());
    return record(out, "contiguous", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  }
  out = empty(shape(), dtype(), device());
  const std::size_t es = dtype_size(dtype());
  strided_copy(static_cast<const char*>(raw_data()), shape(), strides(), static_cast<char*>(out.raw_data()), es);
  // Non-contiguous views are differentiable: the copy passes gradients through.
  return record(out, "contiguous", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), dtype(), device());
  const std::size_t bytes = numel() * dtype_size(dtype());
  if (device().is_cpu()) {
    if (bytes) std::memcpy(out.raw_data(), src.raw_data(), bytes);
  } else {
    cuda::backend().copy_device_to_device(out.raw_data(), src.raw_data(), bytes);
  }
  return record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(Device target) const {
  check_defined("to");
  if (device() == target) return *this;
  Tensor src = detach().is_contiguous() ? detach() : detach().contiguous();
  if (device().is_cuda() && !src.is_contiguous())
    throw DeviceError("to(): non-contiguous CUDA tensors are not supported yet");
  Tensor out = empty(shape(), dtype(), target);
  const std::size_t bytes = numel() * dtype_size(dtype());
  try {
    const cuda::Backend& gpu = cuda::backend();
    if (target.is_cuda() && device().is_cpu()) gpu.copy_host_to_device(out.raw_data(), src.raw_data(), bytes);
    else if (target.is_cpu() && device().is_cuda()) gpu.copy_device_to_host(out.raw_data(), src.raw_data(), bytes);
    else gpu.copy_device_to_device(out.raw_data(), src.raw_data(), bytes);
  } catch (const std::runtime_error& e) {
    throw DeviceError(e.what());
  }
  return record(out, "to_device", {*this}, [from = device()](const Tensor& g) {
    return std::vector<Tensor>{g.to(from)};
  });
}

Tensor& Tensor::move_to_(Device target) {
  check_defined("move_to_");
  if (target.is_cuda()) {
    const std::string where = "move_to_(" + target.str() + ")";
    const cuda::Backend* loaded = nullptr;
    try {
      loaded = &cuda::backend();
    } catch (const DeviceError& e) {  // no CUDA in this build, or the library did not load
      throw DeviceError(where + ": no usable GPU found: " + e.what());
    }
    const cuda::Backend& gpu = *loaded;
    if (!gpu.available()) throw DeviceError(where + ": no usable GPU found (the CUDA backend reports none)");
    try {
      use_cuda_device(target);
    } catch (const DeviceError& e) {
      throw DeviceError(where + ": " + e.what());
    }
  }
  impl_->storage->move_to(target);
  if (impl_->grad) Tensor(impl_->grad).move_to_(target);
  return *this;
}

Tensor Tensor::to(DType target) const {
  check_defined("to");
  if (dtype() == target) return *this;
  if (device().is_cuda())  // by design: CUDA runs float32 only, other dtypes live on the CPU
    throw DeviceError(std::string("to(dtype): ") + dtype_name(dtype()) + " -> " + dtype_name(target) + " on " +
                      device().str() + " is not supported (CUDA runs float32 only; convert on the CPU: "
                      ".to(Device::cpu()).to(dtype))");
  op_device("to(dtype)", {*this});
  Tensor src = contiguous();
  Tensor out = empty(shape(), target, device());
  const std::int64_t n = numel();
  auto convert = [&](auto from, auto to_tag) {
    using F = decltype(from);
    using T = decltype(to_tag);
    const F* s = static_cast<const F*>(src.raw_data());
    T* d = static_cast<T*>(out.raw_data());
    for (std::int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_integral_v<T> && !(std::is_integral_v<F> && sizeof(F) <= sizeof(T))) {
        // NaN -> 0, out of range saturates (a plain cast would be undefined).
        // 2^63 and -2^63 are exact doubles; int64 -> int32 passes exactly.
        constexpr double hi = -static_cast<double>(std::numeric_limits<T>::min());  // 2^31 or 2^63
        const double v = static_cast<double>(s[i]);
        d[i] = v != v     ? T{0}
               : v >= hi  ? std::numeric_limits<T>::max()
               : v <= -hi ? std::numeric_limits<T>::min()
                          : static_cast<T>(v);
      } else {
        d[i] = static_cast<T>(s[i]);
      }
    }
  };
  auto with_target = [&](auto from) {
    switch (target) {
      case DType::Float32: convert(from, float{}); break;
      case DType::Float64: convert(from, double{}); break;
      case DType::Int32: convert(from, std::int32_t{}); break;
      case DType::Int64: convert(from, std::int64_t{}); break;
    }
  };
  switch (dtype()) {
    case DType::Float32: with_target(float{}); break;
    case DType::Float64: with_target(double{}); break;
    case DType::Int32: with_target(std::int32_t{}); break;
    case DType::Int64: with_target(std::int64_t{}); break;
  }
  if (is_integer_dtype(target)) return out;
  return record(out, "to_dtype", {src}, [from = dtype()](const Tensor& g) {
    return std::vector<Tensor>{g.to(from)};
  });
}

Tensor Tensor::reshape(const Shape& s) const { return aimc::reshape(*this, s); }
Tensor Tensor::transpose(std::int64_t d0, std::int64_t d1) const { return aimc::transpose(*this, d0, d1); }
Tensor Tensor::slice(std::int64_t d, std::int64_t start, std::int64_t end) const {
  return aimc::slice(*this, d, start, end);
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_");
  if (op_device("fill_", {*this}).is_cuda()) {
    if (dtype() != DType::Float32 || !is_contiguous())
      throw DeviceError("fill_: on " + device().str() + " only contiguous float32 tensors");
    cuda::backend().fill(data<float>(), numel(), static_cast<float>(value));
    return *this;
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    for_each_strided(static_cast<char*>(raw_data()), shape(), strides(), sizeof(T),
                     [v = static_cast<T>(value)](char* p) { *reinterpret_cast<T*>(p) = v; });
  };
  switch (dtype()) {
    case DType::Float32: run(float{}); break;
    case DType::Float64: run(double{}); break;
    case DType::Int32: run(std::int32_t{}); break;
    case DType::Int64: run(std::int64_t{}); break;
  }
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  check_same_shape(*this, src, "copy_");
  // A dtype change happens on the CPU side (CUDA runs float32 only).
  const Tensor d = src.detach();
  Tensor s = (d.device().is_cpu() ? d.to(dtype()).to(device()) : d.to(device()).to(dtype())).contiguous();
  // Reading and writing the same memory in different layouts would overwrite
  // elements before they are read: copy the source first.
  if (s.storage() == storage() && (s.offset() != offset() || s.strides() != strides())) s = s.clone();
  if (device().is_cuda()) {
    if (!is_contiguous()) {
      use_cuda_device(device());
      detail::cuda_assign(s, *this);
      return *this;
    }
    cuda::backend().copy_device_to_device(raw_data(), s.raw_data(), numel() * dtype_size(dtype()));
    return *this;
  }
  strided_assign(static_cast<const char*>(s.raw_data()), static_cast<char*>(raw_data()), shape(), strides(),
                 dtype_size(dtype()));
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_defined("add_");
  check_same_shape(*this, other, "add_");
  if (dtype() != other.dtype())
    throw ValueError(std::string("add_: dtype ") + dtype_name(dtype()) + " vs " + dtype_name(other.dtype()));
  Tensor o = other.detach().to(device()).contiguous();
  if (op_device("add_", {*this, o}).is_cuda()) {
    if (dtype() != DType::Float32 || !is_contiguous())
      throw DeviceError("add_: on " + device().str() + " only into contiguous float32 tensors");
    cuda::backend().axpy(numel(), static_cast<float>(alpha), o.data<float>(), data<float>());
    return *this;
  }
  if (!is_contiguous()) throw ValueError("add_ into a non-contiguous tensor");
  dispatch_float(dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    T* y = data<T>();
    const T* x = o.data<T>();
    const T a = static_cast<T>(alpha);
    const std::int64_t n = numel();
    for (std::int64_t i = 0; i < n; ++i) y[i] += a * x[i];
  });
  return *this;
}

Tensor& Tensor::mul_(double alpha) {
  check_defined("mul_");
  if (op_device("mul_", {*this}).is_cuda()) {
    if (dtype() != DType::Float32 || !is_contiguous())
      throw DeviceError("mul_: on " + device().str() + " only contiguous float32 tensors");
    cuda::backend().scale(data<float>(), numel(), static_cast<float>(alpha));
    return *this;
  }
  if (!is_contiguous()) throw ValueError("mul_ on a non-contiguous tensor");
  dispatch_float(dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    T* y = data<T>();
    const T a = static_cast<T>(alpha);
    const std::int64_t n = numel();
    for (std::int64_t i = 0; i < n; ++i) y[i] *= a;
  });
  return *this;
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool value) {
  check_defined("set_requires_grad");
  if (impl_->grad_fn) throw ValueError("set_requires_grad on a non-leaf tensor (detach it first)");
  if (value && is_integer_dtype(dtype()))
    throw ValueError(std::string(dtype_name(dtype())) + " tensors cannot require grad");
  impl_->requires_grad = value;
  return *this;
}
Tensor Tensor::grad() const {
  check_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}
void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  if (g.defined()) check_same_shape(*this, g, "set_grad");
  impl_->grad = g.defined() ? g.impl_ptr() : nullptr;
}
void Tensor::zero_grad() { check_defined("zero_grad"); impl_->grad.reset(); }
const std::shared_ptr<Node>& Tensor::grad_fn() const { check_defined("grad_fn"); return impl_->grad_fn; }
bool Tensor::is_leaf() const { return impl_ && !impl_->grad_fn; }
void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  check_defined("backward");
  run_backward(*this, grad_output, retain_graph);
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  if (a.shape() != b.shape())
    throw ShapeError(std::string(op) + ": shapes differ, " + shape_str(a.shape()) + " vs " + shape_str(b.shape()));
}
void check_dtype(const Tensor& t, DType dtype, const char* op) {
  if (t.dtype() != dtype)
    throw ValueError(std::string(op) + ": expected " + dtype_name(dtype) + ", got " + dtype_name(t.dtype()));
}
void check_float(const Tensor& t, const char* op) {
  if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)
    throw ValueError(std::string(op) + ": expected a float tensor, got " + dtype_name(t.dtype()));
}
void check_cpu(const Tensor& t, const char* op) {
  if (!t.device().is_cpu())
    throw DeviceError(std::string(op) + ": not supported on " + t.device().str() + " yet (CPU only)");
}
std::int64_t normalize_dim(std::int64_t d, std::int64_t rank, const char* op) {
  const std::int64_t r = d < 0 ? d + rank : d;
  if (r < 0 || r >= std::max<std::int64_t>(rank, 1) || (rank == 0))
    throw ShapeError(std::string(op) + ": dim " + std::to_string(d) + " out of range for a " +
                     std::to_string(rank) + "-D tensor");
  return r;
}

}  // namespace aimc
