// The pulsed device types beyond ConstantStep (layers/devices/pulsed/*.cpp),
// their step laws (kernels/analog/pulsed_law.h), write noise and the preset
// devices and configs: known answers by hand, device-to-device spreads with
// tolerances from the sample size, and training with AnalogSGD.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/analog/pulsed_law.h"
#include "kernels/cpu/parallel.h"
#include "layers/config/presets.h"
#include "layers/devices/pulsed/pulsed_device.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_linear.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"
#include "pulsed_test_util.h"

using namespace aimc;

namespace {

// A device of `type` without any device-to-device or cycle-to-cycle spread.
nlohmann::json exact(const char* type, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json j{{"type", type},     {"dw_min_dtod", 0}, {"dw_min_std", 0}, {"up_down_dtod", 0},
                   {"w_max_dtod", 0},  {"w_min_dtod", 0}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

std::unique_ptr<AnalogTile> make_tile(std::int64_t out, std::int64_t in, const nlohmann::json& device,
                                      const UpdateParameters& up = UpdateParameters{}, std::uint64_t seed = 7) {
  return test::make_pulsed_tile(out, in, device, up, seed);
}

// Exactly `pulses` pulses on every element of a 1x1 tile: BL = pulses, no
// management, x = ∓1, d = 1 and lr large enough for probabilities >= 1.
void pulse(AnalogTile& t, int pulses, bool up, float granularity) {
  t.record_update(Tensor::from_vector(std::vector<float>{up ? -1.f : 1.f}, {1, 1}),
                  Tensor::from_vector(std::vector<float>{1.f}, {1, 1}));
  t.apply_updates(1.1f * granularity * float(pulses));
}

UpdateParameters bl(int pulses) {
  UpdateParameters up;
  up.update_management = up.update_bl_management = false;
  up.desired_bl = pulses;
  return up;
}

float hidden(const AnalogTile& t, const char* name) { return t.state().find(name)->to_vector()[0]; }

std::shared_ptr<const PulsedDeviceModel> pulsed_model(const nlohmann::json& j) {
  return std::dynamic_pointer_cast<const PulsedDeviceModel>(make_device_model(j));
}

std::pair<double, double> mean_std(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float e : v) s += e, s2 += double(e) * e;
  const double mean = s / double(v.size());
  return {mean, std::sqrt(s2 / double(v.size()) - mean * mean)};
}

}  // namespace

TEST_CASE("SoftBounds known answer: 1000 up pulses from 0 give 1 - 0.999^1000", "[pulsed_devices]") {
  // w_max 1, dw_min 0.001: w ← w + 0.001·(1 − w) per pulse, so w_n = 1 − 0.999^n.
  auto tile = make_tile(1, 1, exact("SoftBoundsDevice", {{"w_max", 1.0}, {"w_min", -1.0}, {"dw_min", 0.001}}), bl(10));
  AnalogTile& t = *tile;
  CHECK(hidden(t, "slope_up") == Approx(-0.001).epsilon(1e-6));
  CHECK(hidden(t, "slope_down") == Approx(0.001).epsilon(1e-6));  // −dwmin_down/min_bound, min_bound −1
  for (int k = 0; k < 100; ++k) pulse(t, 10, true, 0.001f);
  const double expected = 1.0 - std::pow(0.999, 1000);  // 0.632305
  // 1000 float steps, each rounding by at most 2^-24 relative: 1e-4 absolute is generous.
  CHECK(t.weight().to_vector()[0] == Approx(expected).margin(2e-5));
  CHECK(expected == Approx(0.6323).margin(1e-4));
}

TEST_CASE("LinearStep: slopes from gamma and one pulse by the formula", "[pulsed_devices]") {
  // aihwkit 1.1.0 gives slope_up −0.00025, slope_down 0.001125 for these values
  // (gamma 0.2 / 0.5, bounds 0.8 / −0.4, up_down 0.1: dwmin_down 0.0009).
  const nlohmann::json dev = exact("LinearStepDevice", {{"gamma_up", 0.2}, {"gamma_down", 0.5}, {"gamma_up_dtod", 0},
                                                         {"gamma_down_dtod", 0}, {"w_max", 0.8}, {"w_min", -0.4},
                                                         {"up_down", 0.1}});
  auto tile = make_tile(1, 1, dev, bl(1));
  AnalogTile& t = *tile;
  CHECK(hidden(t, "slope_up") == Approx(-0.00025).epsilon(1e-5));
  CHECK(hidden(t, "slope_down") == Approx(0.001125).epsilon(1e-5));
  CHECK(hidden(t, "dwmin_down") == Approx(0.0009).epsilon(1e-5));
  t.weight().fill_(0.5);
  t.weights_set();
  pulse(t, 1, true, 0.001f);
  // up: w + (slope_up·w + dwmin_up) = 0.5 + (−0.000125 + 0.001)
  CHECK(t.weight().to_vector()[0] == Approx(0.500875).margin(1e-7));
  pulse(t, 1, false, 0.001f);
  // down: w − (slope_down·w + dwmin_down)
  const double w1 = 0.500875;
  CHECK(t.weight().to_vector()[0] == Approx(w1 - (0.001125 * w1 + 0.0009)).margin(1e-7));
  SECTION("additive noise: only dwmin is noisy") {
    analog::PulsedLawParams l = pulsed_model(dev)->law();
    l.dw_min_std = 0.5f;
    l.mult_noise = false;
    const analog::PulsedElement e{0.8f, -0.4f, 0.001f, 0.0009f, -0.00025f, 0.001125f};
    // up with ξ = 1: w + slope_up·w + dwmin_up·1.5
    CHECK(analog::pulsed_step(l, e, 0.5f, false, 1.f) == Approx(0.5 - 0.000125 + 0.0015).margin(1e-7));
    l.mult_noise = true;
    CHECK(analog::pulsed_step(l, e, 0.5f, false, 1.f) == Approx(0.5 + 1.5 * (0.001 - 0.000125)).margin(1e-7));
  }
}

TEST_CASE("SoftBoundsPmax: bounds and steps from p_max and alpha", "[pulsed_devices]") {
  // aihwkit's defaults: b = 2/(1 − e^−0.5) = 5.082988, w_max 4.082988,
  // dw_min 0.0025415, up_down 0.6065307 (dwmin_down = (1 − up_down)·dw_min).
  auto tile = make_tile(1, 1, exact("SoftBoundsPmaxDevice"));
  AnalogTile& t = *tile;
  const double b = 2.0 / (1.0 - std::exp(-0.5));
  CHECK(hidden(t, "max_bound") == Approx(-1.0 + b).epsilon(1e-6));
  CHECK(hidden(t, "min_bound") == Approx(-1.0).epsilon(1e-6));
  CHECK(hidden(t, "dwmin_up") == Approx(b * 0.0005).epsilon(1e-6));
  CHECK(hidden(t, "dwmin_down") == Approx((1 - (1 - 2 / b)) * b * 0.0005).epsilon(1e-5));
  const nlohmann::json j = make_device_model(exact("SoftBoundsPmaxDevice"))->to_json();
  CHECK(j["w_max"].is_null());
  CHECK(j["p_max"] == 1000);
  CHECK(make_device_model(j)->to_json() == j);
  CHECK_THROWS_WITH(make_device_model(exact("SoftBoundsPmaxDevice", {{"w_max", 2.0}}), "d"),
                    Catch::Contains("d.w_max"));
}

TEST_CASE("SoftBoundsReference: the step acts on g = w + reference", "[pulsed_devices]") {
  auto tile = make_tile(1, 1, exact("SoftBoundsReferenceDevice", {{"w_max", 1.0}, {"w_min", -1.0}, {"dw_min", 0.01},
                                                                 {"reference_mean", 0.2}}), bl(1));
  AnalogTile& t = *tile;
  CHECK(hidden(t, "reference") == Approx(0.2).epsilon(1e-6));
  t.weight().fill_(0.3);
  t.weights_set();
  pulse(t, 1, true, 0.01f);
  // g = 0.5: up step 0.01·(1 − 0.5/1); w = g' − 0.2
  CHECK(t.weight().to_vector()[0] == Approx(0.3 + 0.005).margin(1e-7));
  pulse(t, 1, false, 0.01f);
  // g = 0.505: down step 0.01·(1 − 0.505/(−1))
  CHECK(t.weight().to_vector()[0] == Approx(0.305 - 0.01 * 1.505).margin(1e-7));
  SECTION("additive noise: dwmin·(1 − a + σξ)") {
    const analog::PulsedLawParams l = pulsed_model(exact("SoftBoundsReferenceDevice", {{"dw_min_std", 0.5}}))->law();
    CHECK_FALSE(l.mult_noise);  // aihwkit's default
    const analog::PulsedElement e{1.f, -1.f, 0.01f, 0.01f, 0.2f, 0.f};
    CHECK(analog::pulsed_step(l, e, 0.3f, false, 1.f) == Approx(0.3 + 0.01 * (1 - 0.5 + 0.5)).margin(1e-7));
  }
  SECTION("the conductance is clipped, not w") {
    t.weight().fill_(0.79);
    t.weights_set();
    for (int k = 0; k < 30; ++k) pulse(t, 1, true, 0.01f);
    CHECK(t.weight().to_vector()[0] <= 0.8f + 1e-6f);  // g ≤ max_bound = 1
  }
  SECTION("subtract_symmetry_point: reference and reset bias at the symmetry point") {
    // su = 0.01, sd = 0.009 (up_down 0.1), bounds 1.25 / −0.75:
    // sp = (su − sd)/(su/1.25 + sd/0.75) = 0.001/0.02 = 0.05.
    auto t2 = make_tile(1, 1, exact("SoftBoundsReferenceDevice", {{"w_max", 1.25}, {"w_min", -0.75}, {"dw_min", 0.01},
                                                                 {"up_down", 0.1}, {"subtract_symmetry_point", true}}));
    CHECK(hidden(*t2, "reference") == Approx(0.05).epsilon(1e-5));
    CHECK(hidden(*t2, "reset_bias") == Approx(0.05).epsilon(1e-5));
  }
}

TEST_CASE("SoftBoundsReference: device-to-device slopes and references", "[pulsed_devices]") {
  // 200x200 = 40000 elements; a mean of N(μ, σ) has std σ/200, a std estimate
  // relative std 1/sqrt(2·40000) = 0.35 %; checks at 5σ or wider.
  auto tile = make_tile(200, 200, exact("SoftBoundsReferenceDevice", {{"w_max", 1.0}, {"w_min", -1.0},
                                                                     {"slope_up_dtod", 0.1}, {"reference_std", 0.05}}));
  const auto [rm, rs] = mean_std(tile->state().find("reference")->to_vector());
  CHECK(rm == Approx(0.0).margin(5 * 0.05 / 200));
  CHECK(rs == Approx(0.05).epsilon(0.02));
  // max_bound = 1/|1 + 0.1·ξ|: 1/max_bound has mean 1 and std 0.1.
  std::vector<float> inv;
  for (float v : tile->state().find("max_bound")->to_vector()) inv.push_back(1.f / v);
  const auto [im, is] = mean_std(inv);
  CHECK(im == Approx(1.0).margin(5 * 0.1 / 200));
  CHECK(is == Approx(0.1).epsilon(0.02));
  for (float v : tile->state().find("min_bound")->to_vector()) CHECK(v == -1.f);
}

TEST_CASE("ExpStep: one pulse against the formula", "[pulsed_devices]") {
  const auto model = pulsed_model(exact("ExpStepDevice", {{"dw_min", 0.01}}));
  const analog::PulsedLawParams l = model->law();
  const analog::PulsedElement e{0.6f, -0.6f, 0.01f, 0.01f, 0.f, 0.f};
  const double w = 0.3, z = 2 * 0.244 * w / 1.2 + 0.2425;
  const double up = 0.01 * std::max(1 - 0.00081 * std::exp(12.44625 * z), 0.0);
  const double down = 0.01 * std::max(1 - 0.36833 * std::exp(-12.78785 * z), 0.0);
  CHECK(analog::pulsed_step(l, e, 0.3f, false, 0.f) == Approx(w + up).margin(1e-7));
  CHECK(analog::pulsed_step(l, e, 0.3f, true, 0.f) == Approx(w - down).margin(1e-7));
  // The schedule's step: the down step at w = 0 with the mean values.
  CHECK(model->granularity() == Approx(0.01 * (1 - 0.36833 * std::exp(-12.78785 * 0.2425))).epsilon(1e-5));
  SECTION("additive noise terms: σ·(|dw| + add + slope·|w|)·ξ") {
    analog::PulsedLawParams n = l;
    n.dw_min_std = 0.5f;
    n.dw_min_std_add = 0.01f;
    n.dw_min_std_slope = 0.1f;
    CHECK(analog::pulsed_step(n, e, 0.3f, false, 1.f) == Approx(w + up + 0.5 * (up + 0.01 + 0.03)).margin(1e-7));
    CHECK(analog::pulsed_step(n, e, 0.3f, true, 1.f) == Approx(w - down + 0.5 * (down + 0.01 + 0.03)).margin(1e-7));
  }
  SECTION("no range: no move") {
    const analog::PulsedElement dead{0.2f, 0.2f, 0.01f, 0.01f, 0.f, 0.f};
    CHECK(analog::pulsed_step(l, dead, 0.2f, false, 0.f) == 0.2f);
  }
}

TEST_CASE("PowStep: one pulse with gamma and the spread of gamma", "[pulsed_devices]") {
  auto tile = make_tile(1, 1, exact("PowStepDevice", {{"pow_gamma", 2.0}, {"pow_gamma_dtod", 0}, {"dw_min", 0.01},
                                                     {"w_max", 1.0}, {"w_min", -1.0}}), bl(1));
  AnalogTile& t = *tile;
  CHECK(hidden(t, "gamma_up") == Approx(2.0));
  CHECK(hidden(t, "gamma_down") == Approx(2.0));
  t.weight().fill_(0.5);
  t.weights_set();
  // The schedule counts in dw_min·0.5^2 = 0.0025.
  pulse(t, 1, true, 0.0025f);
  // up: 0.01·((1 − 0.5)/2)^2 = 0.000625
  CHECK(t.weight().to_vector()[0] == Approx(0.500625).margin(1e-7));
  pulse(t, 1, false, 0.0025f);
  // down: 0.01·((0.500625 + 1)/2)^2
  CHECK(t.weight().to_vector()[0] == Approx(0.500625 - 0.01 * std::pow(1.500625 / 2, 2)).margin(1e-7));
  CHECK(pulsed_model(exact("PowStepDevice", {{"pow_gamma", 2.0}}))->granularity() == Approx(0.001 * 0.25));
  SECTION("device to device: gamma = (1 + 0.1ξ ± r)·pow_gamma") {
    // 40000 elements, std estimate within 2 % (about 5σ), mean within 5σ = 5·0.3/200.
    auto big = make_tile(200, 200, exact("PowStepDevice", {{"pow_gamma", 3.0}, {"pow_gamma_dtod", 0.1},
                                                          {"pow_up_down_dtod", 0.05}}));
    const auto [m, s] = mean_std(big->state().find("gamma_up")->to_vector());
    CHECK(m == Approx(3.0).margin(5 * 0.34 / 200));
    // gain and r independent: 3·sqrt(0.1² + 0.05²)
    CHECK(s == Approx(3.0 * std::sqrt(0.01 + 0.0025)).epsilon(0.02));
  }
}

TEST_CASE("PiecewiseStep: the step interpolates between the nodes", "[pulsed_devices]") {
  const nlohmann::json dev = exact("PiecewiseStepDevice", {{"piecewise_up", {1.0, 0.5, 0.25}},
                                                           {"piecewise_down", {0.2, 0.6, 1.0}}, {"dw_min", 0.01},
                                                           {"w_max", 1.0}, {"w_min", -1.0}});
  const auto model = pulsed_model(dev);
  CHECK(model->granularity() == Approx(0.01 * 0.5));  // dw_min·piecewise_up[3/2]
  const analog::PulsedLawParams l = model->law();
  const analog::PulsedElement e{1.f, -1.f, 0.01f, 0.01f, 0.f, 0.f};
  // w = −0.5: a quarter of the range, halfway between nodes 0 and 1.
  CHECK(analog::pulsed_step(l, e, -0.5f, false, 0.f) == Approx(-0.5 + 0.01 * 0.75).margin(1e-7));
  CHECK(analog::pulsed_step(l, e, -0.5f, true, 0.f) == Approx(-0.5 - 0.01 * 0.4).margin(1e-7));
  // w = 0.5: halfway between nodes 1 and 2.
  CHECK(analog::pulsed_step(l, e, 0.5f, false, 0.f) == Approx(0.5 + 0.01 * 0.375).margin(1e-7));
  // At max_bound the last node.
  CHECK(analog::pulsed_step(l, e, 1.f, true, 0.f) == Approx(1.0 - 0.01).margin(1e-7));
  nlohmann::json bad = dev;
  bad["piecewise_down"] = {1.0, 1.0};
  CHECK_THROWS_WITH(make_device_model(bad, "dev"), Catch::Contains("dev.piecewise_down"));
}

TEST_CASE("IdealDevice: the exact float update, decay and diffusion", "[pulsed_devices]") {
  auto tile = make_tile(2, 3, nlohmann::json{{"type", "IdealDevice"}, {"lifetime", 10}});
  AnalogTile& t = *tile;
  t.weight().copy_(Tensor::from_vector(std::vector<float>{0.1f, 0.2f, 0.3f, -0.1f, 0.f, 2.f}, {2, 3}));
  t.weights_set();  // no bounds: unchanged
  CHECK(t.weight().to_vector()[5] == 2.f);
  // two samples: W − 0.5·Σ d_mᵀ x_m, then × 0.9
  t.record_update(Tensor::from_vector(std::vector<float>{1, 0, 2, 0, 1, 0}, {2, 3}),
                  Tensor::from_vector(std::vector<float>{0.2f, -0.4f, 0.f, 1.f}, {2, 2}));
  t.apply_updates(0.5f);
  const std::vector<double> expected{0.9 * (0.1 - 0.1), 0.9 * 0.2, 0.9 * (0.3 - 0.2),
                                     0.9 * (-0.1 + 0.2), 0.9 * (0.0 - 0.5), 0.9 * (2.0 + 0.4)};
  const auto w = t.weight().to_vector();
  for (int k = 0; k < 6; ++k) CHECK(w[k] == Approx(expected[k]).margin(1e-6));
}

TEST_CASE("write noise: apparent weights around the persistent ones", "[pulsed_devices]") {
  // aihwkit: SoftBounds dw_min 0.01, write_noise_std 10, set_weights(0): apparent
  // std 0.1 (= 10·0.01), persistent 0. 100x100 = 10000 draws: std within 5 %
  // (5σ of the relative std estimate 0.7 %), mean within 5·0.1/100.
  auto tile = make_tile(100, 100, exact("SoftBoundsDevice", {{"dw_min", 0.01}, {"write_noise_std", 10}}), bl(1));
  AnalogTile& t = *tile;
  t.weight().fill_(0.0);
  t.weights_set();
  const auto [m, s] = mean_std(t.weight().to_vector());
  CHECK(m == Approx(0.0).margin(0.005));
  CHECK(s == Approx(0.1).epsilon(0.05));
  for (float v : t.state().find("persistent_weights")->to_vector()) CHECK(v == 0.f);
  SECTION("an update moves the persistent weights and redraws the touched elements") {
    // One up pulse on every element (x = −1, d = 1 everywhere): persistent = 0.01.
    t.record_update(Tensor::full({1, 100}, -1.f), Tensor::full({1, 100}, 1.f));
    t.apply_updates(1.1f * 0.01f);
    for (float v : t.state().find("persistent_weights")->to_vector()) CHECK(v == Approx(0.01f).margin(1e-7));
    const auto [m2, s2] = mean_std(t.weight().to_vector());
    CHECK(m2 == Approx(0.01).margin(0.005));
    CHECK(s2 == Approx(0.1).epsilon(0.05));
  }
  SECTION("apply_write_noise_on_set false: apparent = persistent when set") {
    auto quiet = make_tile(4, 4, exact("SoftBoundsDevice", {{"write_noise_std", 10}, {"apply_write_noise_on_set", false}}));
    quiet->weight().fill_(0.25);
    quiet->weights_set();
    for (float v : quiet->weight().to_vector()) CHECK(v == 0.25f);
  }
  CHECK_THROWS_WITH(make_device_model(exact("ConstantStepDevice", {{"write_noise_std", 1}}), "x"),
                    Catch::Contains("x.write_noise_std"));
}

TEST_CASE("LinearStep: device-to-device gamma spreads", "[pulsed_devices]") {
  // With exact steps dwmin_up = dw_min: slope_up = −gamma_up·dw_min/w_max,
  // gamma_up ~ |N(0.3, 0.05)| (mean_bound_reference). 40000 elements: mean
  // within 5·0.05/200, std within 2 %.
  auto tile = make_tile(200, 200, exact("LinearStepDevice", {{"gamma_up", 0.3}, {"gamma_up_dtod", 0.05}}));
  std::vector<float> g;
  for (float v : tile->state().find("slope_up")->to_vector()) g.push_back(-v * 0.6f / 0.001f);
  const auto [m, s] = mean_std(g);
  CHECK(m == Approx(0.3).margin(5 * 0.05 / 200));
  CHECK(s == Approx(0.05).epsilon(0.02));
}

TEST_CASE("every device type trains an AnalogLinear with AnalogSGD", "[pulsed_devices][optim]") {
  // An 8 -> 4 regression with a fixed teacher and perfect IO, 100 steps of
  // batch 16 at lr 0.1; the MSE on held-out inputs must fall (to less than
  // half for the well-behaved devices; the noisy ReRAM fits less).
  const std::vector<std::pair<nlohmann::json, double>> devices{
      {{{"type", "LinearStepDevice"}}, 0.5},
      {{{"type", "SoftBoundsDevice"}}, 0.5},
      {{{"type", "SoftBoundsPmaxDevice"}}, 0.5},
      {{{"type", "SoftBoundsReferenceDevice"}}, 0.5},
      {{{"type", "ExpStepDevice"}}, 0.5},
      {{{"type", "PowStepDevice"}}, 0.5},
      {{{"type", "PiecewiseStepDevice"}, {"piecewise_up", {1.2, 1.0, 0.8}}, {"piecewise_down", {0.8, 1.0, 1.2}}}, 0.5},
      {{{"type", "IdealDevice"}}, 0.5},
      {{{"type", "ReRamSBPresetDevice"}}, 0.8},
      {{{"type", "ReRamESPresetDevice"}}, 0.8},
      {{{"type", "CapacitorPresetDevice"}}, 0.5},
      {{{"type", "EcRamPresetDevice"}}, 0.5},
      {{{"type", "EcRamMOPresetDevice"}}, 0.8},
      {{{"type", "IdealizedPresetDevice"}}, 0.5},
      {{{"type", "GokmenVlasovPresetDevice"}}, 0.5},
  };
  for (const auto& [device, ratio] : devices) {
    INFO(device.dump());
    SingleRPUConfig c = test::with_perfect_io(SingleRPUConfig{});
    c.device = device;
    const auto [first, last] = test::regression_mse(c);
    INFO("MSE " << first << " -> " << last);
    CHECK(last < ratio * first);
  }
}

TEST_CASE("preset devices: aihwkit's values, JSON round trip, errors naming the field", "[pulsed_devices][config]") {
  auto field = [](const char* type, const char* key) { return make_device_model({{"type", type}})->to_json()[key]; };
  // presets/devices.py (aihwkit 1.1.0)
  CHECK(field("ReRamSBPresetDevice", "w_max").get<double>() == Approx(1.25));
  CHECK(field("ReRamSBPresetDevice", "w_min_dtod").get<double>() == Approx(0.4));
  CHECK(field("ReRamSBPresetDevice", "write_noise_std").get<double>() == Approx(56));
  CHECK(field("ReRamSBPresetDevice", "mult_noise") == false);
  CHECK(field("ReRamSBPresetDevice", "type") == "ReRamSBPresetDevice");
  CHECK(field("ReRamESPresetDevice", "A_down").get<double>() == Approx(-0.081404));
  CHECK(field("ReRamESPresetDevice", "up_down").get<double>() == Approx(0.259359));
  CHECK(field("CapacitorPresetDevice", "lifetime").get<double>() == Approx(1e6));
  CHECK(field("CapacitorPresetDevice", "gamma_up_dtod").get<double>() == Approx(0.01));
  CHECK(field("EcRamPresetDevice", "gamma_down").get<double>() == Approx(0.5085));
  CHECK(field("EcRamMOPresetDevice", "dw_min").get<double>() == Approx(2.8214e-4));
  CHECK(field("IdealizedPresetDevice", "dw_min").get<double>() == Approx(0.0002));
  CHECK(field("GokmenVlasovPresetDevice", "dw_min").get<double>() == Approx(0.0016));
  CHECK(field("PCMPresetDevice", "dw_min_std_slope").get<double>() == Approx(0.108));
  CHECK(field("PCMPresetDevice", "w_min").get<double>() == 0.0);
  // A field set by the user wins over the preset's.
  CHECK(make_device_model({{"type", "ReRamSBPresetDevice"}, {"subtract_symmetry_point", true}})
            ->to_json()["subtract_symmetry_point"] == true);

  for (const std::string name : {"ReRamESPreset", "ReRamSBPreset", "CapacitorPreset", "EcRamPreset", "EcRamMOPreset",
                                 "IdealizedPreset", "GokmenVlasovPreset"}) {
    INFO(name);
    const RPUConfig c = resolve_rpu_config(name);
    REQUIRE(c.holds<SingleRPUConfig>());
    const SingleRPUConfig& s = c.get<SingleRPUConfig>();
    CHECK(s.device["type"] == name + "Device");
    CHECK(s.forward.out_noise == 0.1f);
    CHECK(s.forward.out_bound == 20.f);
    CHECK(s.backward.inp_res == Approx(1.0 / 126));
    CHECK(s.forward.out_res == Approx(1.0 / 510));
    CHECK(s.update.desired_bl == 31);
    const nlohmann::json j = c.to_json();
    CHECK(RPUConfig::from_json(j).to_json() == j);
  }
  nlohmann::json bad = resolve_rpu_config("EcRamPreset").to_json();
  bad["device"]["gamma_up"] = "x";
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("SingleRPUConfig.device.gamma_up"));
  bad = resolve_rpu_config("ReRamSBPreset").to_json();
  bad["device"]["slope_up_dtod"] = -1;
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("SingleRPUConfig.device.slope_up_dtod"));
}

TEST_CASE("device drift: w·(Δt/t_0)^−ν, restarted by a change", "[pulsed_devices]") {
  // REFERENCE known answer: ν = 0.1, t_0 = 1, Δt = 2: 2^−0.1 = 0.93303·W.
  const nlohmann::json dev = exact("ConstantStepDevice", {{"w_max", 10.0}, {"w_min", -10.0}, {"dw_min", 0.01},
                                                         {"drift", {{"nu", 0.1}, {"t_0", 1.0}}}});
  auto tile = make_tile(1, 3, dev, bl(1));
  AnalogTile& t = *tile;
  t.weight().copy_(Tensor::from_vector(std::vector<float>{0.5f, -0.2f, 1.5f}, {1, 3}));
  t.weights_set();
  t.drift_device_weights(2.f);
  auto w = t.weight().to_vector();
  CHECK(w[0] == Approx(0.93303 * 0.5).epsilon(1e-5));
  CHECK(w[1] == Approx(0.93303 * -0.2).epsilon(1e-5));
  CHECK(w[2] == Approx(0.93303 * 1.5).epsilon(1e-5));
  // Two more: t = 4, the drift continues from the first weights: 4^−0.1 = 0.87055.
  t.drift_device_weights(2.f);
  w = t.weight().to_vector();
  CHECK(w[0] == Approx(std::pow(4.0, -0.1) * 0.5).epsilon(1e-5));
  // An update moves every element: the drift restarts from the new weights
  // at t = 4 (no change in that call); t_0 = 2 units later: 2^−0.1.
  t.record_update(Tensor::full({1, 3}, -1.f), Tensor::full({1, 1}, 1.f));
  t.apply_updates(1.1f * 0.01f);
  const auto moved = t.weight().to_vector();
  t.drift_device_weights(1.f);
  for (int k = 0; k < 3; ++k) CHECK(t.weight().to_vector()[k] == moved[k]);
  t.drift_device_weights(1.f);
  // dt = max(6 − 5, 1) = 1 after the restart call at t = 5: unchanged; then t = 7: dt 2.
  for (int k = 0; k < 3; ++k) CHECK(t.weight().to_vector()[k] == Approx(moved[k]).epsilon(1e-6));
  t.drift_device_weights(1.f);
  for (int k = 0; k < 3; ++k) CHECK(t.weight().to_vector()[k] == Approx(moved[k] * 0.93303).epsilon(1e-5));
  CHECK(t.state().find("drift_nu")->to_vector()[0] == Approx(0.1f));

  SECTION("nu_dtod: relative spread of ν") {
    // 40000 elements: mean within 5·0.02/200, std within 2 %.
    nlohmann::json d = dev;
    d["drift"]["nu_dtod"] = 0.2;
    auto big = make_tile(200, 200, d);
    const auto [m, s] = mean_std(big->state().find("drift_nu")->to_vector());
    CHECK(m == Approx(0.1).margin(5 * 0.02 / 200));
    CHECK(s == Approx(0.02).epsilon(0.02));
  }
  SECTION("JSON: aihwkit's DriftParameter fields; errors name the field") {
    const nlohmann::json j = make_device_model(dev)->to_json();
    CHECK(j["drift"]["nu"].get<double>() == Approx(0.1));
    CHECK(j["drift"]["reset_tol"].get<double>() == Approx(1e-7));
    CHECK(make_device_model(j)->to_json() == j);
    nlohmann::json bad = dev;
    bad["drift"]["t_0"] = 0;
    CHECK_THROWS_WITH(make_device_model(bad, "dev"), Catch::Contains("dev.drift.t_0"));
    bad = dev;
    bad["drift"]["nu_x"] = 0;
    CHECK_THROWS_WITH(make_device_model(bad, "dev"), Catch::Contains("nu_x"));
  }
}

TEST_CASE("reset_columns: reset bias plus reset_std noise, per column", "[pulsed_devices]") {
  // 200 rows × 4 columns; columns 3 and 0 (wrap-around) reset to reset 0.2
  // with reset_std 0.05: mean within 5·0.05/sqrt(400), std within 5/sqrt(2·400) = 18 %.
  const nlohmann::json dev = exact("ConstantStepDevice", {{"reset", 0.2}, {"reset_std", 0.05}});
  auto tile = make_tile(200, 4, dev);
  AnalogTile& t = *tile;
  t.weight().fill_(-0.3);
  t.weights_set();
  t.reset_columns(3, 2);
  const auto w = t.weight().to_vector();
  std::vector<float> reset;
  for (int i = 0; i < 200; ++i) {
    reset.push_back(w[i * 4 + 3]);
    reset.push_back(w[i * 4 + 0]);
    CHECK(w[i * 4 + 1] == -0.3f);
    CHECK(w[i * 4 + 2] == -0.3f);
  }
  const auto [m, s] = mean_std(reset);
  CHECK(m == Approx(0.2).margin(5 * 0.05 / 20));
  CHECK(s == Approx(0.05).epsilon(0.18));
  SECTION("reset_prob 0.5: about half the elements") {
    // 800 elements, fraction std sqrt(0.25/800) = 0.018; 5σ = 0.09.
    auto t2 = make_tile(200, 4, exact("ConstantStepDevice", {{"reset", 0.2}, {"reset_std", 0.0}}));
    t2->weight().fill_(-0.3);
    t2->weights_set();
    t2->reset_columns(0, -1, 0.5f);
    int n = 0;
    for (float v : t2->weight().to_vector()) {
      CHECK((v == 0.2f || v == -0.3f));
      n += v == 0.2f;
    }
    CHECK(n / 800.0 == Approx(0.5).margin(0.09));
  }
  SECTION("IdealDevice: w = reset_std·ξ") {
    auto t3 = make_tile(100, 100, nlohmann::json{{"type", "IdealDevice"}, {"reset_std", 0.1}});
    t3->weight().fill_(1.0);
    t3->reset_columns(0, -1);
    const auto [m3, s3] = mean_std(t3->weight().to_vector());
    CHECK(m3 == Approx(0.0).margin(0.005));
    CHECK(s3 == Approx(0.1).epsilon(0.05));
  }
}

TEST_CASE("write noise and drift state: a restored layer continues bit for bit", "[pulsed_devices][checkpoint]") {
  SingleRPUConfig c = single_device_preset("ReRamSBPresetDevice");
  c.device["drift"] = {{"nu", 0.05}, {"nu_std", 0.1}};
  Generator data(3, 0);
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (int k = 0; k < 10; ++k) batches.emplace_back(data.uniform({8, 6}), data.normal({8, 3}, 0., 1.));
  auto train = [&](AnalogLinear& layer, int from, int to) {
    AnalogSGD opt(layer.parameters(), layer.analog_tiles(), 0.05);
    for (int k = from; k < to; ++k) {
      opt.zero_grad();
      Tensor loss = mse_loss(layer.forward(batches[k].first), batches[k].second);
      loss.backward();
      opt.step();
      layer.analog_tiles()[0]->drift_device_weights(1.f);
    }
  };
  Generator g1(5, 0), g2(6, 0);
  AnalogLinear a(6, 3, false, RPUConfig(c), g1);
  train(a, 0, 5);
  NamedTensors saved;
  for (const auto& [name, t] : a.state_dict()) saved.emplace_back(name, t.clone());
  bool has_persistent = false;
  for (const auto& [name, t] : saved) has_persistent |= name.find("persistent_weights") != std::string::npos;
  CHECK(has_persistent);
  const std::vector<float> at_save = a.analog_tiles()[0]->weight().to_vector();
  train(a, 5, 10);
  AnalogLinear b(6, 3, false, RPUConfig(c), g2);
  b.load_state_dict(saved);
  train(b, 5, 10);
  CHECK(a.analog_tiles()[0]->weight().to_vector() == b.analog_tiles()[0]->weight().to_vector());
  CHECK(at_save != a.analog_tiles()[0]->weight().to_vector());  // the last 5 steps moved it
}

TEST_CASE("preset devices: every field equals aihwkit 1.1.0's", "[pulsed_devices][config]") {
  // The dataclass fields of aihwkit 1.1.0's preset devices (dumped from
  // aihwkit with dataclasses.fields; drift, the DriftParameter defaults, is
  // compared below); aimc's to_json must hold each with the same value and
  // nothing else but the C++-only adjust_bounds_with_up_down fields.
  const std::vector<std::pair<const char*, const char*>> reference{
      {"ReRamESPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.00135,"dw_min_dtod":0.2,"dw_min_dtod_log_normal":false,"dw_min_std":5.0,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.259359,"up_down_dtod":0.05,"w_max":1.0,"w_max_dtod":0.3,"w_min":-1.0,"w_min_dtod":0.3,"count_pulses":false,"A_up":-1.18445,"A_down":-0.081404,"gamma_up":5.0,"gamma_down":5.0,"a":-0.5,"b":-0.5,"dw_min_std_add":0.0,"dw_min_std_slope":0.0,"write_noise_std":75.0,"apply_write_noise_on_set":true})"},
      {"ReRamSBPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.002,"dw_min_dtod":0.3,"dw_min_dtod_log_normal":false,"dw_min_std":3.75,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.01,"w_max":1.25,"w_max_dtod":0.24,"w_min":-0.75,"w_min_dtod":0.39999999999999997,"count_pulses":false,"mult_noise":false,"write_noise_std":56,"apply_write_noise_on_set":true,"slope_up_dtod":0.0,"slope_down_dtod":0.0,"reference_mean":0.0,"reference_std":0.0,"subtract_symmetry_point":false})"},
      {"CapacitorPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.005,"dw_min_dtod":0.1,"dw_min_dtod_log_normal":false,"dw_min_std":0.3,"enforce_consistency":true,"lifetime":1000000.0,"lifetime_dtod":0.3,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.06,"w_max":1.0,"w_max_dtod":0.07,"w_min":-1.0,"w_min_dtod":0.07,"count_pulses":false,"gamma_up":0.05,"gamma_down":0.05,"gamma_up_dtod":0.01,"gamma_down_dtod":0.01,"allow_increasing":false,"mean_bound_reference":true,"mult_noise":false,"write_noise_std":0.0,"apply_write_noise_on_set":true,"reverse_up":false,"reverse_down":false,"reverse_offset":0.01})"},
      {"EcRamPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.002,"dw_min_dtod":0.1,"dw_min_dtod_log_normal":false,"dw_min_std":0.3,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.01,"w_max":1.1724,"w_max_dtod":0.05,"w_min":-0.8276,"w_min_dtod":0.05,"count_pulses":false,"gamma_up":0.1153,"gamma_down":0.5085,"gamma_up_dtod":0.05,"gamma_down_dtod":0.05,"allow_increasing":false,"mean_bound_reference":true,"mult_noise":true,"write_noise_std":0.0,"apply_write_noise_on_set":true,"reverse_up":false,"reverse_down":false,"reverse_offset":0.01})"},
      {"EcRamMOPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.00028214,"dw_min_dtod":0.1,"dw_min_dtod_log_normal":false,"dw_min_std":2.0,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.01,"w_max":1.1714,"w_max_dtod":0.05,"w_min":-0.8286,"w_min_dtod":0.05,"count_pulses":false,"gamma_up":0.4152,"gamma_down":0.7342,"gamma_up_dtod":0.05,"gamma_down_dtod":0.05,"allow_increasing":false,"mean_bound_reference":true,"mult_noise":true,"write_noise_std":0.0,"apply_write_noise_on_set":true,"reverse_up":false,"reverse_down":false,"reverse_offset":0.01})"},
      {"IdealizedPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.0002,"dw_min_dtod":0.3,"dw_min_dtod_log_normal":false,"dw_min_std":0.3,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.0,"w_max":1.0,"w_max_dtod":0.3,"w_min":-1.0,"w_min_dtod":0.3,"count_pulses":false})"},
      {"GokmenVlasovPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.0016,"dw_min_dtod":0.3,"dw_min_dtod_log_normal":false,"dw_min_std":0.3,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.0,"reset_dtod":0.0,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.01,"w_max":1.0,"w_max_dtod":0.3,"w_min":-1.0,"w_min_dtod":0.3,"count_pulses":false})"},
      {"PCMPresetDevice",
       R"({"construction_seed":0,"corrupt_devices_prob":0.0,"corrupt_devices_range":0.1,"diffusion":0.0,"diffusion_dtod":0.0,"dw_min":0.01,"dw_min_dtod":0.2,"dw_min_dtod_log_normal":false,"dw_min_std":0.6,"enforce_consistency":true,"lifetime":0.0,"lifetime_dtod":0.0,"perfect_bias":false,"reset":0.01,"reset_dtod":0.02,"reset_std":0.01,"up_down":0.0,"up_down_dtod":0.05,"w_max":2.0,"w_max_dtod":0.1,"w_min":0.0,"w_min_dtod":0.0,"count_pulses":false,"A_up":-27.235,"A_down":-2.235,"gamma_up":2.5,"gamma_down":2.5,"a":-1.0,"b":0.0,"dw_min_std_add":0.042,"dw_min_std_slope":0.108,"write_noise_std":0.0,"apply_write_noise_on_set":true})"},
  };
  for (const auto& [type, text] : reference) {
    INFO(type);
    const nlohmann::json ref = nlohmann::json::parse(text);
    const nlohmann::json ours = make_device_model({{"type", type}})->to_json();
    for (const auto& [key, value] : ref.items()) {
      INFO(key);
      REQUIRE(ours.contains(key));
      if (value.is_number()) {
        CHECK(ours[key].get<double>() == Approx(value.get<double>()).epsilon(1e-6));
      } else {
        CHECK(ours[key] == value);
      }
    }
    for (const auto& [key, value] : ours.items())
      if (key != "type" && key != "drift" && key != "adjust_bounds_with_up_down" && key != "adjust_bounds_with_up_down_dev")
        CHECK(ref.contains(key));
    // DriftParameter(): nu 0, t_0 1, reset_tol 1e-7, wg_ratio 1, the rest 0.
    const nlohmann::json drift = ours["drift"];
    CHECK(drift.size() == 11);
    for (const auto& [k, v] : drift.items()) {
      const double expected = k == "t_0" || k == "wg_ratio" ? 1.0 : k == "reset_tol" ? 1e-7 : 0.0;
      CHECK(v.get<double>() == Approx(expected).epsilon(1e-6));
    }
  }
}

TEST_CASE("new laws and write noise: same bits for any thread count", "[pulsed_devices][determinism]") {
  Generator g(5, 0);
  const Tensor x = g.uniform({32, 64}), d = g.normal({32, 48}, 0., 0.05);
  for (const char* type : {"ReRamSBPresetDevice", "ReRamESPresetDevice", "EcRamPresetDevice", "PowStepDevice",
                           "PiecewiseStepDevice", "SoftBoundsDevice"}) {
    INFO(type);
    nlohmann::json dev{{"type", type}, {"diffusion", 0.001}};
    if (std::string(type) != "ReRamSBPresetDevice" && std::string(type) != "ReRamESPresetDevice")
      dev["write_noise_std"] = 2.0;
    const auto results = test::updated_weights_per_thread_count(
        [&] { return make_tile(48, 64, dev, UpdateParameters{}, 3); },
        [](auto& tile) -> AnalogTile& { return *tile; }, x, d);
    CHECK(results[0] == results[1]);
    CHECK(results[0] == results[2]);
  }
}

TEST_CASE("write noise: a new chip keeps the true weights and draws new noise", "[pulsed_devices]") {
  // 100x100, write noise std 10·0.01 = 0.1: after reseed the apparent weights
  // are persistent + one fresh draw (std 0.1 within 5 %), not two (0.141).
  auto tile = make_tile(100, 100, exact("SoftBoundsDevice", {{"dw_min", 0.01}, {"write_noise_std", 10}}));
  AnalogTile& t = *tile;
  t.weight().fill_(0.3);
  t.weights_set();
  const auto first = t.weight().to_vector();
  t.reseed(99);
  for (float v : t.state().find("persistent_weights")->to_vector()) CHECK(v == Approx(0.3f));
  std::vector<float> dev;
  const auto w = t.weight().to_vector();
  for (float v : w) dev.push_back(v - 0.3f);
  const auto [m, s] = mean_std(dev);
  CHECK(m == Approx(0.0).margin(0.005));
  CHECK(s == Approx(0.1).epsilon(0.05));
  CHECK(w != first);
}

TEST_CASE("the laws' portable exp and pow agree with libm", "[pulsed_devices]") {
  // Relative error bound: the r^8/8! Taylor remainder (6e-9) plus a few float
  // roundings in the Horner steps and the scaling: 5e-7 is ample.
  double worst = 0;
  for (float x = -80.f; x <= 80.f; x += 0.01234f) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(analog::exp_portable(x) - ref) / ref);
  }
  CHECK(worst < 5e-7);
  // pow on [0, 1] (the law's range) with gamma in [0.1, 5]: rounding g·log a
  // (|g·log a| <= 46 here) to float alone costs up to 46·6e-8 = 2.8e-6 relative.
  worst = 0;
  for (float a = 1e-4f; a <= 1.f; a += 0.00731f)
    for (float g = 0.1f; g <= 5.f; g += 0.37f) {
      const double ref = std::pow(double(a), double(g));
      worst = std::max(worst, std::abs(analog::pow_portable(a, g) - ref) / ref);
    }
  CHECK(worst < 5e-6);
  CHECK(analog::pow_portable(0.f, 2.f) == 0.f);
  CHECK(analog::pow_portable(0.f, 0.f) == 1.f);
  CHECK(analog::pow_portable(-0.1f, 2.f) == 0.f);
  CHECK(analog::exp_portable(0.f) == 1.f);
  CHECK(analog::exp_portable(-200.f) == Approx(std::exp(-87.0)).epsilon(1e-6));
}

TEST_CASE("LinearStep: reverse_up references the lower bound shifted by reverse_offset", "[pulsed_devices]") {
  // gamma_up 0.5, reverse_up, w_min −0.6, reverse_offset 0.01: ref_up = −0.61,
  // slope_up = −0.5·0.001/(−0.61) = +0.00081967 (the up step grows with w).
  const nlohmann::json dev = exact("LinearStepDevice", {{"gamma_up", 0.5}, {"gamma_up_dtod", 0}, {"gamma_down_dtod", 0},
                                                         {"reverse_up", true}});
  auto tile = make_tile(1, 1, dev);
  CHECK(hidden(*tile, "slope_up") == Approx(0.5 * 0.001 / 0.61).epsilon(1e-5));
  CHECK(hidden(*tile, "slope_down") == 0.f);  // gamma_down 0
  nlohmann::json additive = dev;
  additive["mult_noise"] = false;
  CHECK_THROWS_WITH(make_device_model(additive, "dev"), Catch::Contains("dev.mult_noise"));
  // mean_bound_reference false: the element's own bounds (here equal to the mean ones).
  nlohmann::json own = dev;
  own["mean_bound_reference"] = false;
  own["w_min"] = -0.4;
  auto t2 = make_tile(1, 1, own);
  CHECK(hidden(*t2, "slope_up") == Approx(0.5 * 0.001 / 0.41).epsilon(1e-5));
}
