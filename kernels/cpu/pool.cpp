// Pooling kernels (see pool.h). 1-D and 2-D problems run as 3-D ones with
// leading unit dims. A plane is processed as a list of steps (output line x
// kernel offset) whose inner loop runs over neighbouring windows, so the
// updates in it are independent and branch-free.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {
namespace {

// Output positions o along the last dim whose input index o*s - p + k lies
// inside the input: [lo, hi).
void last_dim_range(const Pool3& e, std::int64_t k, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t from = e.p[2] - k, to = e.in[2] - 1 + e.p[2] - k;
  lo = from <= 0 ? 0 : (from + e.s[2] - 1) / e.s[2];
  hi = to < 0 ? 0 : std::min(e.out[2], to / e.s[2] + 1);
  hi = std::max(hi, lo);
}

// One kernel offset applied to one output line: positions o2 in [lo, hi) of
// the line starting at output element out_offset read input element
// start + o2 * s2 of the plane (start may be negative; those o2 are not in
// the range).
struct Step {
  std::int64_t out_offset, start, lo, hi;
  std::int64_t offset_number;  // row-major number of the kernel offset (a, b, k2)
};

// The steps of one plane (the same for every plane): output lines in order,
// and within a line the kernel offsets in row-major order, so each window
// sees its elements in row-major order. The inner loop over o2 then updates
// neighbouring windows side by side (independent, branch-free updates).
std::vector<Step> plane_steps(const Pool3& e) {
  std::vector<Step> steps;
  for (std::int64_t o0 = 0; o0 < e.out[0]; ++o0)
    for (std::int64_t o1 = 0; o1 < e.out[1]; ++o1)
      for (std::int64_t a = 0; a < e.k[0]; ++a) {
        const std::int64_t i0 = o0 * e.s[0] - e.p[0] + a;
        if (i0 < 0 || i0 >= e.in[0]) continue;
        for (std::int64_t b = 0; b < e.k[1]; ++b) {
          const std::int64_t i1 = o1 * e.s[1] - e.p[1] + b;
          if (i1 < 0 || i1 >= e.in[1]) continue;
          for (std::int64_t k2 = 0; k2 < e.k[2]; ++k2) {
            Step st;
            st.out_offset = (o0 * e.out[1] + o1) * e.out[2];
            const std::int64_t row = i0 * e.in[1] + i1, shift = k2 - e.p[2];
            st.start = row * e.in[2] + shift;
            st.offset_number = (a * e.k[1] + b) * e.k[2] + k2;
            last_dim_range(e, k2, st.lo, st.hi);
            if (st.hi > st.lo) steps.push_back(st);
          }
        }
      }
  return steps;
}

// Calls f(q0, q1) for chunks of planes, in parallel; chunks depend only on sizes.
template <class F>
void for_plane_chunks(const Pool3& e, std::int64_t planes, F&& f) {
  const std::int64_t work = std::max<std::int64_t>(1, e.out_plane * e.kernel_volume + e.in_plane);
  parallel_for(0, planes, grain_for(planes, std::max<std::int64_t>(1, 16384 / work)), f);
}

// Max over each window, from value -inf and the window's first element (as
// PyTorch, so an all -inf window points inside itself). A larger value or
// NaN (which propagates; the last NaN wins, as in PyTorch) replaces the
// maximum, visiting each window's elements in row-major order.
//
// Done in two passes so that the comparisons run in long contiguous loops
// the compiler vectorises: first the inputs are gathered per kernel offset,
// patches[j][o] = element j of window o (-inf where padding clips the
// window, which never wins), then the kernel offsets are compared in order
// for all windows of the plane at once.
template <class T>
void max_plane(const Pool3& e, const std::vector<Step>& steps, const std::int64_t* offsets, const T* __restrict src,
               T* __restrict best, std::int64_t* __restrict index, T* __restrict patches,
               std::int32_t* __restrict arg) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const std::int64_t s2 = e.s[2], out_plane = e.out_plane;
  const bool clipped = e.p[0] > 0 || e.p[1] > 0 || e.p[2] > 0;
  if (clipped) std::fill(patches, patches + e.kernel_volume * out_plane, -std::numeric_limits<T>::infinity());
  for (const Step& st : steps) {
    T* to = patches + st.offset_number * out_plane + st.out_offset;
    for (std::int64_t o2 = st.lo; o2 < st.hi; ++o2) to[o2] = src[st.start + o2 * s2];
  }
  for (std::int64_t o = 0; o < out_plane; ++o) {
    best[o] = -std::numeric_limits<T>::infinity();
    arg[o] = -1;
  }
  for (std::int64_t j = 0; j < e.kernel_volume; ++j) {
    const T* row = patches + j * out_plane;
    const auto jj = static_cast<std::int32_t>(j);
    for (std::int64_t o = 0; o < out_plane; ++o) {
      // Mask arithmetic keeps the scalar remainder branch-free as well.
      const T v = row[o], b = best[o];
      const bool take = (v > b) | (v != v);
      const Bits mask = Bits(0) - Bits(take);
      const std::int32_t arg_mask = -static_cast<std::int32_t>(take);
      best[o] = std::bit_cast<T>((std::bit_cast<Bits>(v) & mask) | (std::bit_cast<Bits>(b) & ~mask));
      arg[o] = (jj & arg_mask) | (arg[o] & ~arg_mask);
    }
  }
  // Flat input index: window origin (unclipped, may lie in the padding) plus
  // the winning offset; the window's first element if nothing beat -inf.
  for (std::int64_t o0 = 0, o = 0; o0 < e.out[0]; ++o0)
    for (std::int64_t o1 = 0; o1 < e.out[1]; ++o1)
      for (std::int64_t o2 = 0; o2 < e.out[2]; ++o2, ++o) {
        const std::int64_t c0 = o0 * e.s[0] - e.p[0], c1 = o1 * e.s[1] - e.p[1], c2 = o2 * s2 - e.p[2];
        const std::int32_t j = arg[o];
        index[o] = j >= 0 ? (c0 * e.in[1] + c1) * e.in[2] + c2 + offsets[j]
                          : (std::max<std::int64_t>(c0, 0) * e.in[1] + std::max<std::int64_t>(c1, 0)) * e.in[2] +
                                std::max<std::int64_t>(c2, 0);
      }
}

template <class T>
void avg_plane(const Pool3& e, const std::vector<Step>& steps, const T* __restrict src, T* __restrict total) {
  const std::int64_t s2 = e.s[2];
  const T scale = T(1) / static_cast<T>(e.kernel_volume);
  std::fill(total, total + e.out_plane, T(0));
  for (const Step& st : steps) {
    T* tl = total + st.out_offset;
    for (std::int64_t o2 = st.lo; o2 < st.hi; ++o2) tl[o2] += src[st.start + o2 * s2];
  }
  for (std::int64_t o = 0; o < e.out_plane; ++o) total[o] *= scale;
}

template <class T>
void avg_plane_backward(const Pool3& e, const std::vector<Step>& steps, const T* __restrict grad_y,
                        T* __restrict grad_x) {
  const std::int64_t s2 = e.s[2];
  const T scale = T(1) / static_cast<T>(e.kernel_volume);
  std::fill(grad_x, grad_x + e.in_plane, T(0));
  // Positions of one line hit distinct inputs for a fixed kernel offset.
  for (const Step& st : steps) {
    const T* gl = grad_y + st.out_offset;
    for (std::int64_t o2 = st.lo; o2 < st.hi; ++o2) grad_x[st.start + o2 * s2] += gl[o2] * scale;
  }
}

template <class T>
void max_forward(const PoolGeometry& g, std::int64_t planes, const T* x, T* y, std::int64_t* argmax) {
  const Pool3 e = expand(g);
  const std::vector<Step> steps = plane_steps(e);
  std::vector<std::int64_t> offsets;  // flat input offset of kernel offset j within a window
  for (std::int64_t a = 0; a < e.k[0]; ++a)
    for (std::int64_t b = 0; b < e.k[1]; ++b)
      for (std::int64_t k = 0; k < e.k[2]; ++k) offsets.push_back((a * e.in[1] + b) * e.in[2] + k);
  for_plane_chunks(e, planes, [&](std::int64_t q0, std::int64_t q1) {
    std::vector<T> patches(static_cast<std::size_t>(e.kernel_volume * e.out_plane));
    std::vector<std::int32_t> arg(static_cast<std::size_t>(e.out_plane));
    for (std::int64_t q = q0; q < q1; ++q)
      max_plane<T>(e, steps, offsets.data(), x + q * e.in_plane, y + q * e.out_plane, argmax + q * e.out_plane,
                   patches.data(), arg.data());
  });
}

template <class T>
void max_backward(const PoolGeometry& g, std::int64_t planes, const T* grad_y, const std::int64_t* argmax,
                  T* grad_x) {
  const Pool3 e = expand(g);
  for_plane_chunks(e, planes, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) {
      T* dst = grad_x + q * e.in_plane;
      std::fill(dst, dst + e.in_plane, T(0));
      const T* gy = grad_y + q * e.out_plane;
      const std::int64_t* idx = argmax + q * e.out_plane;
      for (std::int64_t o = 0; o < e.out_plane; ++o) dst[idx[o]] += gy[o];
    }
  });
}

template <class T>
void avg_forward(const PoolGeometry& g, std::int64_t planes, const T* x, T* y) {
  const Pool3 e = expand(g);
  const std::vector<Step> steps = plane_steps(e);
  for_plane_chunks(e, planes, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) avg_plane<T>(e, steps, x + q * e.in_plane, y + q * e.out_plane);
  });
}

template <class T>
void avg_backward(const PoolGeometry& g, std::int64_t planes, const T* grad_y, T* grad_x) {
  const Pool3 e = expand(g);
  const std::vector<Step> steps = plane_steps(e);
  for_plane_chunks(e, planes, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q)
      avg_plane_backward<T>(e, steps, grad_y + q * e.out_plane, grad_x + q * e.in_plane);
  });
}

}  // namespace

void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y, std::int64_t* argmax) {
  max_forward(g, planes, x, y, argmax);
}
void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y,
                      std::int64_t* argmax) {
  max_forward(g, planes, x, y, argmax);
}
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y, const std::int64_t* argmax,
                       float* grad_x) {
  max_backward(g, planes, grad_y, argmax, grad_x);
}
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y,
                       const std::int64_t* argmax, double* grad_x) {
  max_backward(g, planes, grad_y, argmax, grad_x);
}
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y) {
  avg_forward(g, planes, x, y);
}
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y) {
  avg_forward(g, planes, x, y);
}
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x) {
  avg_backward(g, planes, grad_y, grad_x);
}
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y, double* grad_x) {
  avg_backward(g, planes, grad_y, grad_x);
}

}  // namespace aimc::cpu
