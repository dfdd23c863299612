// Optimizers and learning-rate schedules: SGD (plain, momentum, dampening,
// Nesterov, weight decay) and Adam against hand-computed updates (PyTorch
// semantics), state save/restore, StepLR and CosineAnnealingLR sequences, and
// convergence on a small linear regression.
#include <catch2/catch.hpp>

#include <limits>

#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "engine/ops.h"
#include "layers/modules/linear.h"
#include "layers/optim/adam.h"
#include "layers/optim/lr_scheduler.h"
#include "layers/optim/sgd.h"

using namespace aimc;

namespace {

Tensor param(const std::vector<double>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).set_requires_grad();
}

void set_grad(Tensor& p, const std::vector<double>& g) {
  p.set_grad(Tensor::from_vector(g, {static_cast<std::int64_t>(g.size())}));
}

void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  const auto v = t.to_double_vector();
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == Approx(expected[i]).margin(tol).epsilon(tol));
}

const std::vector<double> w0{1.0, 2.0, -3.0};
const std::vector<double> g0{0.5, -1.0, 2.0};

}  // namespace

TEST_CASE("SGD: one plain step is w - lr * g") {
  Tensor w = param(w0);
  SGD opt({w}, 0.1);
  set_grad(w, g0);
  opt.step();
  check_values(w, {0.95, 2.1, -3.2});
  CHECK(opt.named_state().empty());
}

TEST_CASE("SGD: float32 parameters update in place") {
  Tensor w = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad();
  auto* before = w.raw_data();
  SGD opt({w}, 0.5);
  w.set_grad(Tensor::from_vector(std::vector<float>{1, -2}, {2}));
  opt.step();
  CHECK(w.raw_data() == before);
  CHECK(w.to_vector() == std::vector<float>{0.5f, 3.0f});
}

TEST_CASE("SGD: momentum buffer starts at the gradient, then b = m b + (1 - d) g") {
  const double lr = 0.1, m = 0.9;
  SECTION("no dampening") {
    Tensor w = param(w0);
    SGD opt({w}, lr, {.momentum = m});
    set_grad(w, g0);
    opt.step();  // b = g
    set_grad(w, g0);
    opt.step();  // b = 1.9 g
    std::vector<double> expected;
    for (std::size_t i = 0; i < 3; ++i) expected.push_back(w0[i] - lr * g0[i] - lr * 1.9 * g0[i]);
    check_values(w, expected);
    auto state = opt.named_state();
    REQUIRE(state.size() == 1);
    CHECK(state[0].first == "0.momentum_buffer");
    check_values(state[0].second, {1.9 * 0.5, 1.9 * -1.0, 1.9 * 2.0});
  }
  SECTION("dampening 0.5") {
    Tensor w = param(w0);
    SGD opt({w}, lr, {.momentum = m, .dampening = 0.5});
    set_grad(w, g0);
    opt.step();  // b = g (PyTorch does not damp the first step)
    set_grad(w, {1.0, 1.0, 1.0});
    opt.step();  // b = 0.9 g0 + 0.5 * 1
    std::vector<double> expected;
    for (std::size_t i = 0; i < 3; ++i) expected.push_back(w0[i] - lr * g0[i] - lr * (0.9 * g0[i] + 0.5));
    check_values(w, expected);
  }
}

TEST_CASE("SGD: Nesterov steps along g + m b") {
  const double lr = 0.1, m = 0.9;
  Tensor w = param(w0);
  SGD opt({w}, lr, {.momentum = m, .nesterov = true});
  set_grad(w, g0);
  opt.step();  // b = g; d = g + 0.9 g = 1.9 g
  set_grad(w, g0);
  opt.step();  // b = 1.9 g; d = g + 0.9 * 1.9 g = 2.71 g
  std::vector<double> expected;
  for (std::size_t i = 0; i < 3; ++i) expected.push_back(w0[i] - lr * 1.9 * g0[i] - lr * 2.71 * g0[i]);
  check_values(w, expected);
}

TEST_CASE("SGD: weight decay adds wd * w to the gradient") {
  Tensor w = param(w0);
  SGD opt({w}, 0.1, {.weight_decay = 0.01});
  set_grad(w, g0);
  opt.step();
  std::vector<double> expected;
  for (std::size_t i = 0; i < 3; ++i) expected.push_back(w0[i] - 0.1 * (g0[i] + 0.01 * w0[i]));
  check_values(w, expected);
}

TEST_CASE("SGD: parameters without a gradient are skipped; zero_grad drops gradients") {
  Tensor a = param(w0), b = param(w0);
  SGD opt({a, b}, 0.1, {.momentum = 0.5});
  set_grad(a, g0);
  opt.step();
  check_values(b, w0);
  CHECK(opt.named_state().size() == 1);
  opt.zero_grad();
  CHECK(!a.grad().defined());
}

TEST_CASE("SGD: invalid hyperparameters throw ConfigError") {
  Tensor w = param(w0);
  CHECK_THROWS_AS(SGD({w}, -0.1), ConfigError);
  CHECK_THROWS_AS(SGD({w}, 0.1, {.momentum = -1}), ConfigError);
  CHECK_THROWS_AS(SGD({w}, 0.1, {.nesterov = true}), ConfigError);
  CHECK_THROWS_AS(SGD({w}, 0.1, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), ConfigError);
  CHECK_THROWS_AS(SGD({w}, 0.1, {.weight_decay = -1}), ConfigError);
  CHECK_THROWS_AS(Adam({w}, 0.1, {.beta1 = 1.0}), ConfigError);
  CHECK_THROWS_AS(Adam({w}, 0.1, {.eps = 0}), ConfigError);
}

TEST_CASE("Adam: the first step is -lr * sign(g) after bias correction") {
  Tensor w = param(w0);
  Adam opt({w}, 0.01);
  set_grad(w, g0);
  opt.step();
  // m_hat = g, v_hat = g^2: step = lr * g / (|g| + eps).
  std::vector<double> expected;
  for (std::size_t i = 0; i < 3; ++i) expected.push_back(w0[i] - 0.01 * g0[i] / (std::abs(g0[i]) + 1e-8));
  check_values(w, expected);
  CHECK(w.to_double_vector()[0] == Approx(1.0 - 0.01).epsilon(1e-7));
  CHECK(w.to_double_vector()[2] == Approx(-3.0 - 0.01).epsilon(1e-7));
}

TEST_CASE("Adam: two steps with weight decay match a hand computation") {
  const double lr = 0.05, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1;
  Tensor w = param(w0);
  Adam opt({w}, lr, {.beta1 = b1, .beta2 = b2, .eps = eps, .weight_decay = wd});
  const std::vector<double> g1{0.3, -0.7, 1.5};
  std::vector<double> ref = w0, m(3, 0), v(3, 0);
  for (int t = 1; t <= 2; ++t) {
    const auto& g = t == 1 ? g0 : g1;
    set_grad(w, g);
    opt.step();
    for (std::size_t i = 0; i < 3; ++i) {
      const double d = g[i] + wd * ref[i];
      m[i] = b1 * m[i] + (1 - b1) * d;
      v[i] = b2 * v[i] + (1 - b2) * d * d;
      const double mhat = m[i] / (1 - std::pow(b1, t));
      const double vhat = v[i] / (1 - std::pow(b2, t));
      ref[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
  check_values(w, ref, 1e-12);
  auto state = opt.named_state();
  REQUIRE(state.size() == 3);
  CHECK(state[0].first == "0.exp_avg");
  CHECK(state[1].first == "0.exp_avg_sq");
  CHECK(state[2].first == "0.step");
  CHECK(state[2].second.item() == 2.0);
  check_values(state[0].second, m);
  check_values(state[1].second, v);
}

TEST_CASE("optimizer state restores so that training continues identically") {
  auto run = [](bool restore) {
    Tensor w = param(w0);
    Adam a({w}, 0.01);
    set_grad(w, g0);
    a.step();
    Tensor w2 = param(w.to_double_vector());
    Adam b({w2}, 0.01);
    if (restore) b.load_state(a.named_state());
    set_grad(w2, {0.1, 0.2, 0.3});
    b.step();
    set_grad(w, {0.1, 0.2, 0.3});
    a.step();
    return std::make_pair(w.to_double_vector(), w2.to_double_vector());
  };
  auto [cont, resumed] = run(true);
  CHECK(cont == resumed);
  auto [cont2, fresh] = run(false);
  CHECK(cont2 != fresh);  // without the state the second step differs

  Tensor w = param(w0);
  Adam opt({w}, 0.01);
  CHECK_THROWS_AS(opt.load_state({{"1.exp_avg", Tensor::zeros({3})}}), ValueError);
  CHECK_THROWS_AS(opt.load_state({{"0.exp_avg", Tensor::zeros({4})}}), ShapeError);
  CHECK_THROWS_AS(opt.load_state({{"exp_avg", Tensor::zeros({3})}}), ValueError);
  CHECK_THROWS_AS(opt.load_state({{"0.momentum", Tensor::zeros({3})}}), ValueError);
  SGD sgd({w}, 0.1, {.momentum = 0.9});
  CHECK_THROWS_AS(sgd.load_state({{"0.exp_avg", Tensor::zeros({3})}}), ValueError);
}

TEST_CASE("optimizer state values from a file are range-checked, the message naming key and element") {
  Tensor w = param(w0);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  SGD sgd({w}, 0.1, {.momentum = 0.9});
  CHECK_THROWS_WITH(sgd.load_state({{"0.momentum_buffer", param({0.0, nan, 1.0})}}),
                    Catch::Contains("'0.momentum_buffer' element 1") && Catch::Contains("finite"));
  CHECK_THROWS_AS(sgd.load_state({{"0.momentum_buffer", param({inf, 0.0, 1.0})}}), ValueError);
  sgd.load_state({{"0.momentum_buffer", param({-1.0, 0.0, 1.0})}});  // any finite value
  Adam adam({w}, 0.01);
  auto step = [](double v) { return Tensor::scalar(v, DType::Float64); };
  CHECK_THROWS_WITH(adam.load_state({{"0.step", step(-1)}}), Catch::Contains("whole number >= 0"));
  CHECK_THROWS_AS(adam.load_state({{"0.step", step(2.5)}}), ValueError);
  CHECK_THROWS_WITH(adam.load_state({{"0.exp_avg_sq", param({0.1, -0.2, 0.3})}}),
                    Catch::Contains("element 1") && Catch::Contains(">= 0"));
  CHECK_THROWS_AS(adam.load_state({{"0.exp_avg", param({0.1, nan, 0.3})}}), ValueError);
  adam.load_state({{"0.step", step(3)}, {"0.exp_avg", param({-0.1, 0.0, 0.2})}, {"0.exp_avg_sq", param({0, 1, 2})}});
}

TEST_CASE("config() reports the hyperparameters") {
  Tensor w = param(w0);
  SGD sgd({w}, 0.1, {.momentum = 0.9, .weight_decay = 1e-4});
  CHECK(sgd.type_name() == "SGD");
  CHECK(sgd.config()["momentum"] == 0.9);
  CHECK(sgd.config()["lr"] == 0.1);
  Adam adam({w}, 0.002);
  CHECK(adam.config()["betas"][1] == 0.999);
}

TEST_CASE("StepLR multiplies by gamma every step_size epochs") {
  Tensor w = param(w0);
  SGD opt({w}, 1.0);
  StepLR sched(opt, 2, 0.5);
  std::vector<double> lrs{opt.lr()};
  for (int e = 0; e < 5; ++e) {
    sched.step();
    lrs.push_back(opt.lr());
  }
  const std::vector<double> expected{1.0, 1.0, 0.5, 0.5, 0.25, 0.25};
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(lrs[i] == Approx(expected[i]).epsilon(1e-15));
  CHECK(sched.epoch() == 5);
  CHECK_THROWS_AS(StepLR(opt, 0), ConfigError);
}

TEST_CASE("CosineAnnealingLR follows eta_min + (base - eta_min)(1 + cos(pi e / T))/2") {
  Tensor w = param(w0);
  SGD opt({w}, 1.0);
  CosineAnnealingLR sched(opt, 4, 0.1);
  const std::vector<double> expected{1.0, 0.8681980515339464, 0.55, 0.23180194846605365, 0.1};
  CHECK(opt.lr() == 1.0);
  for (std::size_t e = 1; e < expected.size(); ++e) {
    sched.step();
    CHECK(opt.lr() == Approx(expected[e]).epsilon(1e-12));
  }
  sched.set_epoch(2);  // resuming
  CHECK(opt.lr() == Approx(0.55).epsilon(1e-12));
}

TEST_CASE("a linear regression converges with SGD momentum and with Adam") {
  // y = x . (2, -1, 0.5) + 0.3, 64 samples.
  Generator gen(5, 1);
  Tensor x = gen.uniform({64, 3}, -1, 1);
  auto xv = x.to_vector();
  std::vector<float> yv(64);
  for (int i = 0; i < 64; ++i) yv[i] = 2 * xv[3 * i] - xv[3 * i + 1] + 0.5f * xv[3 * i + 2] + 0.3f;
  Tensor y = Tensor::from_vector(yv, {64, 1});
  auto train = [&](Optimizer& opt, Linear& model, int steps) {
    double loss_value = 0;
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      Tensor loss = mse_loss(model(x), y);
      loss.backward();
      opt.step();
      loss_value = loss.item();
    }
    return loss_value;
  };
  SECTION("SGD") {
    Generator init(9);
    Linear model(3, 1, init);
    SGD opt(model.parameters(), 0.1, {.momentum = 0.9});
    CHECK(train(opt, model, 300) < 1e-8);
    auto w = model.weight().to_vector();
    CHECK(w[0] == Approx(2.0).margin(1e-3));
    CHECK(w[1] == Approx(-1.0).margin(1e-3));
    CHECK(w[2] == Approx(0.5).margin(1e-3));
    CHECK(model.bias().item() == Approx(0.3).margin(1e-3));
  }
  SECTION("Adam") {
    Generator init(9);
    Linear model(3, 1, init);
    Adam opt(model.parameters(), 0.05);
    CHECK(train(opt, model, 500) < 1e-5);
    CHECK(model.weight().to_vector()[0] == Approx(2.0).margin(1e-2));
  }
}
