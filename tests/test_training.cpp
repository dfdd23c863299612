// The training tool's learning-rate schedules (tools/training/trainer.h):
// make_scheduler's lr at given epochs for "step" (the epochs/3 default and
// explicit step_size/gamma, torch StepLR's meaning), "cosine" and "none", and
// the ConfigErrors for out-of-range step_size and gamma.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "layers/optim/sgd.h"
#include "tools/training/trainer.h"

using namespace aimc;
using training::TrainOptions;

namespace {

// The lr make_scheduler(opts) gives at epochs 0..n-1, read back from the optimizer.
std::vector<double> lrs(const TrainOptions& opts, std::int64_t n) {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
  SGD optimizer({w}, opts.lr);
  auto scheduler = training::make_scheduler(opts, optimizer);
  std::vector<double> out;
  for (std::int64_t e = 0; e < n; ++e) {
    if (scheduler) scheduler->set_epoch(e);
    out.push_back(optimizer.lr());
  }
  return out;
}

void check_lrs(const std::vector<double>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-14));
}

std::string config_error(const TrainOptions& opts) {
  try {
    training::check_schedule_options(opts);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("step without step_size decays x0.1 every max(1, epochs/3) epochs") {
  TrainOptions o;
  o.schedule = "step";
  o.lr = 0.5;
  o.epochs = 9;  // step_size 3
  CHECK(training::effective_step_size(o) == 3);
  check_lrs(lrs(o, 9), {0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005, 0.005});
  o.epochs = 2;  // 2/3 = 0 -> 1: decays every epoch
  CHECK(training::effective_step_size(o) == 1);
  check_lrs(lrs(o, 2), {0.5, 0.05});
}

TEST_CASE("step with step_size and gamma is torch's StepLR: lr = base * gamma^floor(epoch / step_size)") {
  TrainOptions o;
  o.schedule = "step";
  o.lr = 0.08;
  o.epochs = 10;  // would be step 3 by default; step_size wins
  o.step_size = 2;
  o.gamma = 0.5;
  CHECK(training::effective_step_size(o) == 2);
  check_lrs(lrs(o, 6), {0.08, 0.08, 0.04, 0.04, 0.02, 0.02});
  o.step_size = 1;
  o.gamma = 0.25;
  check_lrs(lrs(o, 4), {0.08, 0.02, 0.005, 0.00125});
  o.gamma = 1.0;  // the upper end: a constant lr
  check_lrs(lrs(o, 3), {0.08, 0.08, 0.08});
  o.step_size = 20;  // longer than the run: never decays
  o.gamma = 0.1;
  check_lrs(lrs(o, 10), std::vector<double>(10, 0.08));
}

TEST_CASE("cosine and none are unchanged by the step fields") {
  TrainOptions o;
  o.lr = 1.0;
  o.epochs = 4;
  o.schedule = "cosine";  // (1 + cos(pi e / 4)) / 2
  check_lrs(lrs(o, 4), {1.0, 0.8535533905932737, 0.5, 0.14644660940672627});
  o.schedule = "none";
  check_lrs(lrs(o, 3), {1.0, 1.0, 1.0});
}

TEST_CASE("out-of-range step_size and gamma are ConfigErrors naming the flag and the range") {
  TrainOptions o;
  o.schedule = "step";
  CHECK(config_error(o).empty());
  o.step_size = -1;
  CHECK(config_error(o).find("--step-size") != std::string::npos);
  CHECK(config_error(o).find(">= 1") != std::string::npos);
  o.step_size = 0;
  for (double g : {0.0, -0.5, 1.0000001, 2.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    o.gamma = g;
    const std::string msg = config_error(o);
    CHECK(msg.find("--gamma") != std::string::npos);
    CHECK(msg.find("(0, 1]") != std::string::npos);
    Tensor w = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
    SGD optimizer({w}, 0.1);
    CHECK_THROWS_AS(training::make_scheduler(o, optimizer), ConfigError);
  }
  o.gamma = 0.1;
  o.schedule = "linear";
  CHECK(config_error(o).find("known: none, step, cosine") != std::string::npos);
}
