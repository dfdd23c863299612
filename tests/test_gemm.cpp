// kernels/cpu/gemm against a float64 triple loop: every trans flag, row
// strides wider than the matrix (padding left untouched), alpha/beta, the
// small-row direct path and the Eigen path, several thread counts.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

using namespace aimc::cpu;

namespace {

// Returns the largest |C - reference| and checks the padding is untouched.
template <class T>
double gemm_error(bool ta, bool tb, long m, long n, long k, T alpha, T beta, long pad, bool& padding_ok) {
  std::mt19937 rng(static_cast<unsigned>(m * 1000 + n * 7 + k));
  std::uniform_real_distribution<double> u(-1, 1);
  GemmShape s;
  s.trans_a = ta;
  s.trans_b = tb;
  s.m = m;
  s.n = n;
  s.k = k;
  s.lda = (ta ? m : k) + pad;
  s.ldb = (tb ? k : n) + pad;
  s.ldc = n + pad;
  std::vector<T> a((ta ? k : m) * s.lda + 1), b((tb ? n : k) * s.ldb + 1), c(m * s.ldc + 1);
  for (auto& x : a) x = static_cast<T>(u(rng));
  for (auto& x : b) x = static_cast<T>(u(rng));
  for (auto& x : c) x = static_cast<T>(u(rng));
  const std::vector<T> c0 = c;
  gemm(s, alpha, a.data(), b.data(), beta, c.data());
  double err = 0;
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) {
      double ref = 0;
      for (long p = 0; p < k; ++p)
        ref += double(ta ? a[p * s.lda + i] : a[i * s.lda + p]) * double(tb ? b[j * s.ldb + p] : b[p * s.ldb + j]);
      ref = double(alpha) * ref + (beta == T(0) ? 0.0 : double(beta) * double(c0[i * s.ldc + j]));
      err = std::max(err, std::abs(ref - double(c[i * s.ldc + j])));
    }
  padding_ok = true;
  for (long i = 0; i < m; ++i)
    for (long j = n; j < s.ldc; ++j) padding_ok = padding_ok && c[i * s.ldc + j] == c0[i * s.ldc + j];
  return err;
}

}  // namespace

TEST_CASE("gemm matches a float64 reference for all layouts, strides and alpha/beta") {
  // Tolerance: float32 rounding grows ~ sqrt(k); 4e-4*sqrt(k+1) is ~10x the
  // expected error for entries of U(-1,1). Float64: 4e-11*sqrt(k+1).
  const long ms[] = {1, 5, 8, 17, 40}, ns[] = {1, 15, 16, 33, 300}, ks[] = {0, 1, 25, 300};
  int checked = 0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (long m : ms)
      for (long n : ns)
        for (long k : ks)
          for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb) {
              bool pad_ok = false;
              const double tol32 = 4e-4 * std::sqrt(double(k) + 1), tol64 = 4e-11 * std::sqrt(double(k) + 1);
              CHECK(gemm_error<float>(ta, tb, m, n, k, 1.0f, 0.0f, (m + n) % 3, pad_ok) <= tol32);
              CHECK(pad_ok);
              CHECK(gemm_error<double>(ta, tb, m, n, k, 0.5, (k % 2) ? 0.25 : 0.0, (m + k) % 2, pad_ok) <= tol64);
              CHECK(pad_ok);
              CHECK(gemm_error<float>(ta, tb, m, n, k, -2.0f, 1.0f, 0, pad_ok) <= 2 * tol32);
              checked += 3;
            }
  }
  set_num_threads(0);
  bool pad_ok = false;
  // Large shapes that take the parallel split.
  CHECK(gemm_error<float>(false, false, 6, 5000, 1000, 1.0f, 0.0f, 0, pad_ok) <= 4e-4 * std::sqrt(1001.0));
  CHECK(gemm_error<double>(true, false, 16, 4000, 200, 1.0, 0.5, 3, pad_ok) <= 4e-11 * std::sqrt(201.0));
  CHECK(pad_ok);
  CHECK(checked == 2 * 5 * 5 * 4 * 4 * 3);
}
