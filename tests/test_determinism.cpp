// Same seed, same bits for 1, 2 and 8 threads: GEMM (batched too), reductions, the RNG and
// a full training step (forward, backward, optimizer) of LeNet-5.
#include <catch2/catch.hpp>

#include "convert/models.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "kernels/cpu/gemm.h"
#include "layers/optim/adam.h"

using namespace aimc;

namespace {

template <class F>
void for_thread_counts(F&& f) {
  for (int t : {1, 2, 8}) {
    set_num_threads(t);
    f(t);
  }
  set_num_threads(0);
}

std::vector<float> lenet_step(std::uint64_t seed) {
  Generator init(seed, 1);
  auto model = build_model(std::string("lenet5"), init);
  Adam opt(model->parameters(), 1e-3);
  Generator data(seed, 2);
  Tensor x = data.uniform({64, 1, 28, 28});
  std::vector<std::int32_t> labels(64);
  for (int i = 0; i < 64; ++i) labels[i] = i % 10;
  Tensor y = Tensor::from_vector(labels, {64});
  std::vector<float> out;
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    opt.step();
    out.push_back(static_cast<float>(loss.item()));
  }
  for (const auto& p : model->parameters()) {
    auto v = p.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

TEST_CASE("GEMM results are bitwise identical for 1, 2 and 8 threads") {
  Generator g(3);
  for (auto [m, n, k] : {std::tuple<int, int, int>{512, 512, 256}, {1000, 37, 300}, {64, 700, 784}}) {
    Tensor a = g.normal({m, k}), b = g.normal({k, n});
    std::vector<float> reference;
    for_thread_counts([&](int t) {
      Tensor c = matmul(a, b);
      if (t == 1) reference = c.to_vector();
      else CHECK(c.to_vector() == reference);
    });
  }
}

TEST_CASE("batched matmul and N-D linear, values and gradients, are bitwise identical for 1, 2 and 8 threads") {
  Generator g(4);
  const Tensor a0 = g.normal({3, 2, 200, 64}), b0 = g.normal({2, 64, 300}), w = g.normal({96, 300});
  std::vector<float> reference;
  for_thread_counts([&](int t) {
    Tensor a = a0.clone(), b = b0.clone();
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    const Tensor y = linear(matmul(a, b), w, Tensor());  // [3, 2, 200, 96]
    sum(mul(y, y)).backward();
    std::vector<float> got = y.to_vector();
    for (const Tensor& gr : {a.grad(), b.grad()}) {
      const auto v = gr.to_vector();
      got.insert(got.end(), v.begin(), v.end());
    }
    if (t == 1) reference = got;
    else CHECK(got == reference);
  });
}

TEST_CASE("reductions and the RNG are bitwise identical for 1, 2 and 8 threads") {
  Tensor x = Generator(4).normal({2000, 513});
  std::vector<float> ref_sum, ref_rows, ref_rng;
  for_thread_counts([&](int t) {
    auto s = sum(x).to_vector();
    auto r = sum(x, {0}).to_vector();
    std::vector<float> u(1 << 20);
    Generator(11, 5).normal(u.data(), static_cast<std::int64_t>(u.size()));
    if (t == 1) {
      ref_sum = s;
      ref_rows = r;
      ref_rng = u;
    } else {
      CHECK(s == ref_sum);
      CHECK(r == ref_rows);
      CHECK(u == ref_rng);
    }
  });
}

TEST_CASE("a LeNet-5 training step is bitwise identical for 1, 2 and 8 threads") {
  std::vector<float> reference;
  for_thread_counts([&](int t) {
    auto v = lenet_step(17);
    if (t == 1) reference = v;
    else CHECK(v == reference);
  });
  CHECK(reference.size() > 61706);
}
