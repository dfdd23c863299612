// Differentiable tensor operations (free functions). Every op records its
// backward rule when an input requires grad (engine/autograd.h). Float ops
// accept float32 and float64 (gradient checks); inputs of one op share a dtype
// and a device. Which ops also run on CUDA (float32) is the table of
// engine/dispatch.h; the others throw one DeviceError naming the op for CUDA
// tensors.
//
// Layout conventions: a batch is [N, features]; images are [N, C, *spatial]
// with 1 to 3 spatial dims; a linear weight is [out, in].
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace aimc {

class Generator;

// ---- elementwise with numpy broadcasting (engine/ops_elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor square(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor pow_scalar(const Tensor& a, double exponent);
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }
inline Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
Shape broadcast_shapes(const Shape& a, const Shape& b);  // ShapeError if incompatible

// ---- activations (engine/ops_activation.cpp)
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact erf form, as PyTorch's default
Tensor erf(const Tensor& x);

// ---- reductions, softmax and losses (engine/ops_reduce.cpp)
Tensor sum(const Tensor& x);  // all elements -> shape {}
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
Tensor softmax(const Tensor& x, std::int64_t dim = -1);
Tensor log_softmax(const Tensor& x, std::int64_t dim = -1);
// Mean cross entropy of logits [N, C] against int32 labels [N] in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);
// Mean squared error over all elements.
Tensor mse_loss(const Tensor& prediction, const Tensor& target);
// Index of the largest value along the last dim of [N, C] (not differentiable).
std::vector<std::int32_t> argmax_rows(const Tensor& x);

// ---- shape ops (engine/ops_shape.cpp); views where possible
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 allowed
Tensor flatten(const Tensor& x, std::int64_t start_dim = 1, std::int64_t end_dim = -1);
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order);  // contiguous copy
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end);
Tensor concat(const std::vector<Tensor>& xs, std::int64_t dim);

// ---- linear algebra (engine/ops_linalg.cpp)
// [M,K] x [K,N] -> [M,N]; batched as numpy's matmul: [*A, M, K] x [*B, K, N]
// -> [broadcast(*A, *B), M, N], and a 1-D a [K] (b [K]) is a row (column)
// whose dim is dropped from the result.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [*, in] (any leading dims), weight [out, in], bias [out] or undefined -> [*, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- convolution (engine/ops_conv.cpp); 1 to 3 spatial dims
struct ConvGeometry {
  std::vector<std::int64_t> kernel, stride, padding, dilation;  // one per spatial dim
  std::int64_t groups = 1;
};
// Output spatial size floor((in + 2p - d(k-1) - 1)/s) + 1 per dim.
std::vector<std::int64_t> conv_output_size(const std::vector<std::int64_t>& input_size,
                                           const ConvGeometry& g);
// Unfold x [N, C, *S] into patches [N * L, C * prod(kernel)], L = prod(output
// size); a row is one output position, its columns ordered (c, k0, k1, k2).
Tensor im2col(const Tensor& x, const ConvGeometry& g);
// Inverse scatter-add of im2col: cols [N*L, C*prod(k)] -> [N, C, *input_size].
Tensor col2im(const Tensor& cols, std::int64_t channels, const std::vector<std::int64_t>& input_size,
              const ConvGeometry& g);
// x [N, C_in, *S], weight [C_out, C_in/groups, *kernel], bias [C_out] or undefined.
Tensor conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g);
// The transposed convolution (the adjoint of conv, PyTorch's conv_transpose):
// x [N, C_in, *S], weight [C_in, C_out, *kernel], bias [C_out] or undefined;
// output size (S - 1) stride - 2 padding + dilation (kernel - 1) + 1 +
// output_padding per dim (output_padding below the stride or dilation).
// groups 1 only. Differentiable in all three.
Tensor conv_transpose(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g,
                      const std::vector<std::int64_t>& output_padding = {});
// Rows [N*L, C] (one row per output position) -> [N, C, *out_size].
Tensor rows_to_channels(const Tensor& rows, std::int64_t n, const std::vector<std::int64_t>& out_size);

// ---- pooling (engine/ops_pool.cpp); 1 to 3 spatial dims, padding counts as -inf / 0
Tensor max_pool(const Tensor& x, const std::vector<std::int64_t>& kernel,
                const std::vector<std::int64_t>& stride, const std::vector<std::int64_t>& padding);
// count_include_pad as PyTorch's default (true).
Tensor avg_pool(const Tensor& x, const std::vector<std::int64_t>& kernel,
                const std::vector<std::int64_t>& stride, const std::vector<std::int64_t>& padding);
Tensor global_avg_pool(const Tensor& x);  // [N, C, *S] -> [N, C]

// ---- normalisation and regularisation (engine/ops_norm.cpp)
// x [N, C] or [N, C, *S]. In training: normalise with batch statistics and
// update running_mean/var in place (momentum as PyTorch, unbiased var for the
// running estimate). In eval: use the running statistics. weight/bias [C] or
// undefined.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                  Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// Inverted dropout: in training zero with probability p and scale by 1/(1-p).
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace aimc
