// Loops over strided (possibly non-contiguous) element layouts, up to 5-D.
// Strides and sizes in elements; elem is the element size in bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/tensor.h"

namespace aimc {

// Calls f(pointer) for every element in row-major order.
template <class F>
void for_each_strided(char* base, const Shape& shape, const Shape& strides, std::size_t elem, F&& f) {
  const std::size_t rank = shape.size();
  if (rank == 0) { f(base); return; }
  std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::int64_t idx[kMaxDims] = {0, 0, 0, 0, 0};
  char* p = base;
  const std::int64_t inner = shape[rank - 1];
  const std::int64_t inner_step = strides[rank - 1] * static_cast<std::int64_t>(elem);
  for (std::int64_t done = 0; done < n; done += inner) {
    char* q = p;
    for (std::int64_t i = 0; i < inner; ++i, q += inner_step) f(q);
    // advance the outer index
    for (std::size_t d = rank - 1; d-- > 0;) {
      p += strides[d] * static_cast<std::int64_t>(elem);
      if (++idx[d] < shape[d]) break;
      p -= strides[d] * shape[d] * static_cast<std::int64_t>(elem);
      idx[d] = 0;
    }
  }
}

// Gathers a strided source into contiguous dst.
inline void strided_copy(const char* src, const Shape& shape, const Shape& strides, char* dst, std::size_t elem) {
  for_each_strided(const_cast<char*>(src), shape, strides, elem, [&](char* p) {
    std::memcpy(dst, p, elem);
    dst += elem;
  });
}

// Scatters contiguous src into a strided destination.
inline void strided_assign(const char* src, char* dst, const Shape& shape, const Shape& strides, std::size_t elem) {
  for_each_strided(dst, shape, strides, elem, [&](char* p) {
    std::memcpy(p, src, elem);
    src += elem;
  });
}

}  // namespace aimc
