// RPU configuration structs (layers/config): REFERENCE.md defaults, JSON round
// trips, ConfigError messages that name the field, presets and resolve_rpu_config.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "kernels/analog/io_parameters.h"
#include "layers/config/io_parameters_json.h"
#include "layers/config/presets.h"
#include "layers/config/rpu_config.h"

using namespace aimc;
using nlohmann::json;

namespace {

// Runs fn, requires a ConfigError whose message contains every fragment.
void expect_config_error(const std::function<void()>& fn,
                         std::initializer_list<std::string> fragments) {
  try {
    fn();
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& f : fragments) CHECK(msg.find(f) != std::string::npos);
    return;
  }
  FAIL("no ConfigError thrown");
}

template <class T>
void check_round_trip(const T& value) {
  const json first = value.to_json();
  const json second = T::from_json(first).to_json();
  CHECK(first.dump() == second.dump());
}

std::filesystem::path scratch_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("aimc_test_rpu_config_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

}  // namespace

TEST_CASE("IOParameters defaults are REFERENCE.md section 1") {
  const IOParameters io;
  CHECK_FALSE(io.is_perfect);
  CHECK(io.mv_type == AnalogMVType::OnePass);
  CHECK(io.inp_bound == 1.0f);
  CHECK(io.inp_res == Approx(1.0 / 126.0));
  CHECK_FALSE(io.inp_sto_round);
  CHECK(io.inp_noise == 0.0f);
  CHECK(io.inp_asymmetry == 0.0f);
  CHECK(io.out_bound == 12.0f);
  CHECK(io.out_res == Approx(1.0 / 510.0));
  CHECK_FALSE(io.out_sto_round);
  CHECK(io.out_noise == 0.06f);
  CHECK(io.out_noise_std == 0.0f);
  CHECK(io.out_asymmetry == 0.0f);
  CHECK(io.out_nonlinearity == 0.0f);
  CHECK(io.out_nonlinearity_std == 0.0f);
  CHECK(io.out_scale == 1.0f);
  // aihwkit 1.1.0's io.py defaults (its C++ struct has others: the Python ones win).
  CHECK(io.slope_calibration == 0.0f);
  CHECK(io.v_offset_std == 0.0f);
  CHECK(io.v_offset_w_min == -1.0f);
  CHECK(io.r_series == 0.0f);
  CHECK(io.w_read_asymmetry_dtod == 0.0f);
  CHECK(io.bound_management == BoundManagementType::Iterative);
  CHECK(io.noise_management == NoiseManagementType::AbsMax);
  CHECK(io.nm_thres == 0.0f);
  CHECK(io.w_noise == 0.0f);
  CHECK(io.w_noise_type == WeightNoiseType::None);
  CHECK(io.ir_drop == 0.0f);
  CHECK(io.ir_drop_g_ratio == Approx(1.0 / 0.35 / 5e-6));  // 571428.57
  CHECK(io.max_bm_factor == 1000.0f);
  CHECK(io.max_bm_res == 0.25f);
  CHECK(io.bm_test_negative_bound);
  CHECK_NOTHROW(validate(io));
}

TEST_CASE("mapping, clip, modifier, remap and input range defaults are REFERENCE.md / aihwkit's") {
  const MappingParameter m;
  CHECK(m.digital_bias);
  CHECK(m.weight_scaling_omega == 0.0f);
  CHECK_FALSE(m.weight_scaling_columnwise);
  CHECK_FALSE(m.learn_out_scaling);
  CHECK_FALSE(m.out_scaling_columnwise);
  CHECK(m.max_input_size == 512);
  CHECK(m.max_output_size == 512);

  const WeightClipParameter clip;
  CHECK(clip.type == WeightClipType::None);
  CHECK(clip.sigma == 2.5f);
  CHECK(clip.fixed_value == -1.0f);

  const WeightModifierParameter mod;
  CHECK(mod.type == WeightModifierType::None);
  REQUIRE(mod.coeffs.size() == 3);
  CHECK(mod.coeffs[0] == 0.0105392f);
  CHECK(mod.coeffs[1] == 0.0768f);
  CHECK(mod.coeffs[2] == -0.046925f);
  CHECK(mod.std_dev == 0.0f);
  CHECK(mod.res == 0.0f);
  CHECK(mod.pdrop == 0.0f);
  CHECK(mod.rel_to_actual_wmax);
  CHECK(mod.assumed_wmax == 1.0f);
  CHECK_FALSE(mod.enable_during_test);
  CHECK(mod.dorefa_clip == 0.6f);
  CHECK(mod.g_max == 25.0f);
  CHECK(mod.pcm_t0 == 20.0f);

  const WeightRemapParameter remap;
  CHECK(remap.type == WeightRemapType::None);
  CHECK(remap.remapped_wmax == 1.0f);
  CHECK(remap.max_scale_range == 0.0f);

  const InputRangeParameter ir;
  CHECK_FALSE(ir.enable);
  CHECK(ir.learn_input_range);
  CHECK(ir.init_value == 3.0f);
  CHECK(ir.init_from_data == 100);
  CHECK(ir.init_std_alpha == 3.0f);
  CHECK(ir.decay == 0.001f);
  CHECK(ir.input_min_percentage == 0.95f);
  CHECK_FALSE(ir.manage_output_clipping);
  CHECK(ir.output_min_percentage == 0.95f);
  CHECK(ir.gradient_scale == 1.0f);
  CHECK(ir.gradient_relative);
}

TEST_CASE("InferenceRPUConfig defaults: perfect backward and PCM-like device models") {
  const InferenceRPUConfig c;
  CHECK_FALSE(c.forward.is_perfect);
  CHECK(c.backward.is_perfect);
  CHECK(c.noise_model == json{{"type", "PCMLikeNoiseModel"}});
  CHECK(c.drift_compensation == json{{"type", "GlobalDriftCompensation"}});
  CHECK_FALSE(c.reconvert_weights_before_drift);  // the physical drift path (tile_programming.h)
  CHECK(RPUConfig(c).tile_class() == AnalogTileClass::Inference);
  CHECK(RPUConfig(FloatingPointRPUConfig{}).tile_class() == AnalogTileClass::FloatingPoint);
  CHECK(RPUConfig(TorchInferenceRPUConfig{}).tile_class() == AnalogTileClass::Inference);
  CHECK(std::string(to_string(AnalogTileClass::Analog)) == "TILE_CLASS_ANALOG");
  const json on = {{"family", "InferenceRPUConfig"}, {"reconvert_weights_before_drift", true}};
  CHECK(InferenceRPUConfig::from_json(on).reconvert_weights_before_drift);
  CHECK(InferenceRPUConfig::from_json(on).to_json()["reconvert_weights_before_drift"] == true);
  CHECK_THROWS_WITH(InferenceRPUConfig::from_json({{"family", "InferenceRPUConfig"},
                                                   {"reconvert_weights_before_drift", "yes"}}),
                    Catch::Contains("reconvert_weights_before_drift") && Catch::Contains("true or false"));
  CHECK_NOTHROW(c.validate());
  CHECK_NOTHROW(FloatingPointRPUConfig{}.validate());
  CHECK_NOTHROW(TorchInferenceRPUConfig{}.validate());
}

TEST_CASE("IOParameters JSON uses aihwkit's field and enum names") {
  const json j = to_json(IOParameters{});
  CHECK(j.size() == 31);
  CHECK(j["v_offset_w_min"].get<double>() == -1.0);
  CHECK(j["noise_management"] == "ABS_MAX");
  CHECK(j["bound_management"] == "ITERATIVE");
  CHECK(j["mv_type"] == "ONE_PASS");
  CHECK(j["w_noise_type"] == "NONE");
  CHECK(j["out_noise"].get<double>() == 0.06);  // shortest float form
  CHECK(j["out_bound"].get<double>() == 12.0);

  // aihwkit's enum values are read too; missing fields keep defaults.
  const IOParameters io = io_parameters_from_json(
      json{{"noise_management", "AbsMaxNPSum"}, {"w_noise_type", "PCM_READ"}, {"out_noise", 0.1}});
  CHECK(io.noise_management == NoiseManagementType::AbsMaxNPSum);
  CHECK(io.w_noise_type == WeightNoiseType::PCMRead);
  CHECK(io.out_noise == 0.1f);
  CHECK(io.out_bound == 12.0f);

  // Resolutions > 1 are steps (aihwkit presets write inp_res=254.0).
  const IOParameters steps = io_parameters_from_json(json{{"inp_res", 254}, {"out_res", 0.25}});
  CHECK(steps.inp_res == 1.0f / 254.0f);
  CHECK(steps.out_res == 0.25f);
}

TEST_CASE("every struct and family round-trips through JSON") {
  IOParameters io;
  io.mv_type = AnalogMVType::PosNegSeparateDigitalSum;
  io.noise_management = NoiseManagementType::AverageAbsMax;
  io.bound_management = BoundManagementType::IterativeWorstCase;
  io.w_noise_type = WeightNoiseType::AdditiveConstant;
  io.w_noise = 0.0175f;
  io.inp_res = 1.0f / 254.0f;
  io.out_nonlinearity = 0.3f;
  io.slope_calibration = 0.5f;
  io.v_offset_std = 0.1f;
  io.v_offset_w_min = -0.5f;
  io.r_series = 0.02f;
  io.w_read_asymmetry_dtod = 0.3f;
  const json j1 = to_json(io);
  CHECK(j1["slope_calibration"].get<double>() == 0.5);
  CHECK(j1["v_offset_std"].get<double>() == 0.1);
  CHECK(j1["v_offset_w_min"].get<double>() == -0.5);
  CHECK(j1["r_series"].get<double>() == 0.02);
  CHECK(j1["w_read_asymmetry_dtod"].get<double>() == 0.3);
  CHECK(j1.dump() == to_json(io_parameters_from_json(j1)).dump());
  CHECK(to_json(io_parameters_from_json(j1)) == j1);

  MappingParameter m;
  m.max_input_size = 256;
  m.weight_scaling_omega = 0.8f;
  check_round_trip(m);
  WeightClipParameter clip;
  clip.type = WeightClipType::LayerGaussianPerChannel;
  clip.sigma = 3.5f;
  check_round_trip(clip);
  WeightModifierParameter mod;
  mod.type = WeightModifierType::Poly;
  mod.std_dev = 0.08f;
  mod.pdrop = 0.1f;
  mod.coeffs = {0.1f, 0.2f};
  check_round_trip(mod);
  WeightRemapParameter remap;
  remap.type = WeightRemapType::LayerwiseSymmetric;
  check_round_trip(remap);
  InputRangeParameter ir;
  ir.enable = true;
  ir.calibration_info = "max";
  check_round_trip(ir);
  check_round_trip(PrePostProcessingParameter{});

  check_round_trip(FloatingPointRPUConfig{});
  check_round_trip(InferenceRPUConfig{});
  check_round_trip(TorchInferenceRPUConfig{});
  check_round_trip(standard_hwa_training_preset());
  InferenceRPUConfig no_drift;
  no_drift.drift_compensation = nullptr;
  check_round_trip(no_drift);

  for (const RPUConfig& c : {RPUConfig(FloatingPointRPUConfig{}), RPUConfig(InferenceRPUConfig{}),
                             RPUConfig(TorchInferenceRPUConfig{}),
                             RPUConfig(standard_hwa_training_preset())}) {
    const json j = c.to_json();
    CHECK(j["family"] == c.family());
    CHECK(RPUConfig::from_json(j).to_json().dump() == j.dump());
  }
}

TEST_CASE("unknown fields and wrong types raise ConfigError naming the field") {
  expect_config_error([] { io_parameters_from_json(json{{"inp_bund", 1.0}}); },
                      {"IOParameters", "inp_bund", "known fields", "inp_bound", "out_noise"});
  expect_config_error([] { io_parameters_from_json(json{{"inp_bound", "one"}}); },
                      {"IOParameters.inp_bound", "a number", "string"});
  expect_config_error([] { io_parameters_from_json(json{{"is_perfect", 1}}); },
                      {"IOParameters.is_perfect", "boolean"});
  expect_config_error([] { io_parameters_from_json(json{{"noise_management", "ABSMAX"}}); },
                      {"noise_management", "ABSMAX", "ABS_MAX", "AVERAGE_ABS_MAX"});
  expect_config_error([] { io_parameters_from_json(json::array()); }, {"IOParameters", "object"});
  expect_config_error([] { MappingParameter::from_json(json{{"max_input_size", 1.5}}); },
                      {"MappingParameter.max_input_size", "integer"});
  expect_config_error([] { WeightModifierParameter::from_json(json{{"coeffs", "x"}}); },
                      {"WeightModifierParameter.coeffs", "array"});
  expect_config_error([] { WeightClipParameter::from_json(json{{"typ", "NONE"}}); },
                      {"WeightClipParameter", "typ", "fixed_value, sigma, type"});
  expect_config_error(
      [] {
        InferenceRPUConfig::from_json(json{{"forward", {{"out_noise", true}}}});
      },
      {"InferenceRPUConfig.forward.out_noise", "a number"});
  expect_config_error(
      [] {
        InferenceRPUConfig::from_json(
            json{{"pre_post", {{"input_range", {{"decay", "fast"}}}}}});
      },
      {"InferenceRPUConfig.pre_post.input_range.decay"});
  expect_config_error([] { TorchInferenceRPUConfig::from_json(json{{"remap", json::object()}}); },
                      {"TorchInferenceRPUConfig", "remap", "known fields"});
}

TEST_CASE("out-of-range values raise ConfigError naming field, value and range") {
  IOParameters io;
  io.inp_noise = -0.5f;
  expect_config_error([&] { validate(io, "fwd"); }, {"fwd.inp_noise", "-0.5", ">= 0"});
  io = IOParameters{};
  io.inp_bound = 2.0f;
  expect_config_error([&] { validate(io); },
                      {"IOParameters.inp_bound", "2", "noise_management"});
  io.noise_management = NoiseManagementType::None;
  CHECK_NOTHROW(validate(io));  // without noise management any positive bound is fine
  io = IOParameters{};
  io.inp_res = 3.0f;
  expect_config_error([&] { validate(io); }, {"IOParameters.inp_res", "3", "(0, 1]"});
  io = IOParameters{};
  io.out_bound = -1.0f;  // no bound needs the ADC off
  expect_config_error([&] { validate(io); }, {"out_res", "out_bound"});
  io.out_res = 0.0f;
  CHECK_NOTHROW(validate(io));
  io = IOParameters{};
  io.max_bm_factor = 0.5f;
  expect_config_error([&] { validate(io); }, {"max_bm_factor", "0.5", ">= 1"});
  io = IOParameters{};
  io.ir_drop_g_ratio = 0.0f;
  expect_config_error([&] { validate(io); }, {"ir_drop_g_ratio", "> 0"});

  expect_config_error([] { io_parameters_from_json(json{{"out_noise", -0.1}}); },
                      {"IOParameters.out_noise", "-0.1", ">= 0"});
  // The periphery fields of aihwkit 1.1.0 (accepted at their defaults, as an
  // aihwkit config names them; negative spreads and resistances rejected).
  CHECK_NOTHROW(io_parameters_from_json(json{{"r_series", 0.0}, {"slope_calibration", 0.0}, {"v_offset_std", 0.0},
                                             {"v_offset_w_min", -1.0}, {"w_read_asymmetry_dtod", 0.0}}));
  {  // An aihwkit InferenceRPUConfig naming them: read into forward and backward.
    const auto c = InferenceRPUConfig::from_json(json{
        {"forward", {{"r_series", 0.01}, {"slope_calibration", 0.5}, {"v_offset_std", 0.02}, {"v_offset_w_min", -1.0},
                     {"w_read_asymmetry_dtod", 0.1}}},
        {"backward", {{"r_series", 0.0}, {"v_offset_w_min", -0.5}}}});
    CHECK(c.forward.r_series == 0.01f);
    CHECK(c.forward.slope_calibration == 0.5f);
    CHECK(c.forward.v_offset_std == 0.02f);
    CHECK(c.forward.w_read_asymmetry_dtod == 0.1f);
    CHECK(c.backward.v_offset_w_min == -0.5f);
  }
  expect_config_error([] { io_parameters_from_json(json{{"r_series", -0.01}}); },
                      {"IOParameters.r_series", "-0.01", ">= 0"});
  expect_config_error([] { io_parameters_from_json(json{{"slope_calibration", -0.5}}); },
                      {"IOParameters.slope_calibration", "-0.5", ">= 0"});
  expect_config_error([] { io_parameters_from_json(json{{"v_offset_std", -0.1}}); },
                      {"IOParameters.v_offset_std", "-0.1", ">= 0"});
  expect_config_error([] { io_parameters_from_json(json{{"w_read_asymmetry_dtod", -1}}); },
                      {"IOParameters.w_read_asymmetry_dtod", "-1", ">= 0"});
  expect_config_error([] { io_parameters_from_json(json{{"v_offset_w_min", "min"}}); },
                      {"IOParameters.v_offset_w_min", "a number"});
  expect_config_error([] { MappingParameter::from_json(json{{"max_output_size", -1}}); },
                      {"MappingParameter.max_output_size", "-1"});
  expect_config_error([] { WeightModifierParameter::from_json(json{{"pdrop", 1.0}}); },
                      {"WeightModifierParameter.pdrop", "1", "[0, 1)"});
  expect_config_error([] { WeightModifierParameter::from_json(json{{"type", "DISCRETIZE"}}); },
                      {"WeightModifierParameter.res", "DISCRETIZE"});
  expect_config_error([] { WeightClipParameter::from_json(json{{"type", "FIXED_VALUE"}}); },
                      {"WeightClipParameter.fixed_value", "-1", "FIXED_VALUE"});
  expect_config_error([] { WeightRemapParameter::from_json(json{{"remapped_wmax", 0}}); },
                      {"WeightRemapParameter.remapped_wmax", "> 0"});
  expect_config_error(
      [] { InputRangeParameter::from_json(json{{"input_min_percentage", 1.5}}); },
      {"InputRangeParameter.input_min_percentage", "1.5", "[0, 1]"});

  // Cross-field rules of the families.
  InferenceRPUConfig c;
  c.pre_post.input_range.enable = true;
  c.forward.noise_management = NoiseManagementType::None;
  c.forward.inp_bound = 2.0f;
  expect_config_error([&] { c.validate(); },
                      {"InferenceRPUConfig.forward.inp_bound", "input_range"});
  c.forward.inp_bound = 1.0f;
  c.pre_post.input_range.manage_output_clipping = true;
  expect_config_error([&] { c.validate(); }, {"bound_management", "manage_output_clipping"});
  c.forward.bound_management = BoundManagementType::None;
  CHECK_NOTHROW(c.validate());
  c.noise_model = json{{"name", "PCM"}};
  expect_config_error([&] { c.validate(); }, {"InferenceRPUConfig.noise_model", "type"});
}

TEST_CASE("RPUConfig holds one family and checks the family tag") {
  RPUConfig c;
  CHECK(c.family() == "InferenceRPUConfig");
  CHECK(c.holds<InferenceRPUConfig>());
  CHECK(c.get<InferenceRPUConfig>().backward.is_perfect);
  expect_config_error([&] { (void)c.get<TorchInferenceRPUConfig>(); },
                      {"TorchInferenceRPUConfig", "InferenceRPUConfig"});
  expect_config_error([] { RPUConfig::from_json(json{{"mapping", json::object()}}); },
                      {"family", "FloatingPointRPUConfig", "TorchInferenceRPUConfig"});
  expect_config_error([] { RPUConfig::from_json(json{{"family", "UnitCellRPUConfig2"}}); },
                      {"UnitCellRPUConfig2", "InferenceRPUConfig", "SingleRPUConfig"});
  CHECK(RPUConfig::from_json(json{{"family", "SingleRPUConfig"}}).tile_class() == AnalogTileClass::Analog);
  const RPUConfig fp = RPUConfig::from_json(json{{"family", "FloatingPointRPUConfig"},
                                                 {"mapping", {{"max_input_size", 128}}}});
  CHECK(fp.get<FloatingPointRPUConfig>().mapping.max_input_size == 128);
  CHECK(fp.get<FloatingPointRPUConfig>().mapping.max_output_size == 512);
  expect_config_error(
      [] { InferenceRPUConfig::from_json(json{{"family", "FloatingPointRPUConfig"}}); },
      {"InferenceRPUConfig.family"});
}

TEST_CASE("StandardHWATrainingPreset has aihwkit's settings") {
  const InferenceRPUConfig p = standard_hwa_training_preset();
  CHECK(p.forward.inp_res == 1.0f / 254.0f);
  CHECK(p.forward.out_res == 1.0f / 254.0f);
  CHECK(p.forward.bound_management == BoundManagementType::None);
  CHECK(p.forward.noise_management == NoiseManagementType::Constant);
  CHECK(p.forward.nm_thres == 1.0f);
  CHECK(p.forward.w_noise == 0.0175f);
  CHECK(p.forward.w_noise_type == WeightNoiseType::PCMRead);
  CHECK(p.forward.ir_drop == 1.0f);
  CHECK(p.forward.out_noise == 0.04f);
  CHECK(p.forward.out_bound == 10.0f);
  CHECK(p.backward.is_perfect);
  CHECK(p.mapping.weight_scaling_omega == 1.0f);
  CHECK(p.mapping.weight_scaling_columnwise);
  CHECK(p.mapping.max_input_size == 512);
  CHECK(p.mapping.max_output_size == 0);
  CHECK(p.mapping.learn_out_scaling);
  CHECK(p.mapping.out_scaling_columnwise);
  CHECK(p.remap.type == WeightRemapType::ChannelwiseSymmetric);
  CHECK(p.remap.remapped_wmax == 1.0f);
  CHECK(p.clip.type == WeightClipType::FixedValue);
  CHECK(p.clip.fixed_value == 1.0f);
  CHECK(p.pre_post.input_range.enable);
  CHECK(p.pre_post.input_range.init_value == 3.0f);
  CHECK(p.modifier.type == WeightModifierType::None);
  CHECK_NOTHROW(p.validate());
}

TEST_CASE("resolve_rpu_config takes presets, families and JSON files") {
  const RPUConfig preset = resolve_rpu_config("StandardHWATrainingPreset");
  CHECK(preset.get<InferenceRPUConfig>().forward.out_noise == 0.04f);
  CHECK(resolve_rpu_config("FloatingPointPreset").family() == "FloatingPointRPUConfig");
  const RPUConfig fam = resolve_rpu_config("TorchInferenceRPUConfig");
  CHECK(fam.get<TorchInferenceRPUConfig>().forward.out_noise == 0.0f);  // lightning's default

  const auto dir = scratch_dir();
  const auto good = dir / "hwa.json";
  write_file(good, R"({"family": "InferenceRPUConfig",
                       "forward": {"out_noise": 0.02, "inp_res": 62, "noise_management": "MAX"},
                       "drift_compensation": null})");
  const RPUConfig from_file = resolve_rpu_config(good.string());
  const auto& inf = from_file.get<InferenceRPUConfig>();
  CHECK(inf.forward.out_noise == 0.02f);
  CHECK(inf.forward.inp_res == 1.0f / 62.0f);
  CHECK(inf.forward.noise_management == NoiseManagementType::Max);
  CHECK(inf.drift_compensation.is_null());
  CHECK(inf.backward.is_perfect);

  // A file that exists is read even without the .json ending.
  const auto plain = dir / "config_without_suffix";
  write_file(plain, R"({"family": "FloatingPointRPUConfig"})");
  CHECK(resolve_rpu_config(plain.string()).family() == "FloatingPointRPUConfig");

  const auto missing = (dir / "missing.json").string();
  expect_config_error([&] { resolve_rpu_config(missing); }, {missing});
  const auto bad = dir / "bad.json";
  write_file(bad, "{\"family\": \"InferenceRPUConfig\", ");
  expect_config_error([&] { resolve_rpu_config(bad.string()); }, {bad.string(), "malformed"});
  const auto invalid = dir / "invalid.json";
  write_file(invalid, R"({"family": "InferenceRPUConfig", "forward": {"out_noise": -1}})");
  expect_config_error([&] { resolve_rpu_config(invalid.string()); },
                      {invalid.string(), "InferenceRPUConfig.forward.out_noise", "-1"});
  // Nested 3000 levels deep: refused while parsing (copying it would overflow the stack).
  const auto deep = dir / "deep.json";
  write_file(deep, "{\"family\": \"InferenceRPUConfig\", \"drift_compensation\": " + std::string(3000, '[') +
                       std::string(3000, ']') + "}");
  expect_config_error([&] { resolve_rpu_config(deep.string()); }, {deep.string(), "nested deeper than 64"});
  // Issue 12: a FIFO blocked the read forever, a directory read as "malformed JSON".
  const auto fifo = (dir / "fifo.json").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  expect_config_error([&] { resolve_rpu_config(fifo); }, {fifo, "not a regular file"});
  const auto fifo_plain = (dir / "fifo_without_suffix").string();
  REQUIRE(::mkfifo(fifo_plain.c_str(), 0600) == 0);
  expect_config_error([&] { resolve_rpu_config(fifo_plain); }, {fifo_plain, "not a regular file"});
  const auto folder = dir / "folder.json";
  std::filesystem::create_directories(folder);
  expect_config_error([&] { resolve_rpu_config(folder.string()); }, {folder.string(), "is a directory"});
  expect_config_error([] { resolve_rpu_config("StandardHWAPreset"); },
                      {"StandardHWAPreset", "StandardHWATrainingPreset", "FloatingPointPreset",
                       "InferenceRPUConfig", "TorchInferenceRPUConfig"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("TorchInferenceRPUConfig: fields that aihwkit-lightning lacks are rejected unless at aihwkit's default") {
  const auto torch = [](json fields) {
    fields["family"] = "TorchInferenceRPUConfig";
    return RPUConfig::from_json(fields);
  };
  // Lightning's own fields, resolutions as steps.
  const RPUConfig ok = torch(json{{"forward", {{"inp_res", 254}, {"out_res", 254}, {"out_bound", 10},
                                               {"out_noise", 0.04}, {"out_noise_per_channel", true}}},
                                  {"pre_post", {{"input_range", {{"enable", true}}}}}});
  const auto& f = ok.get<TorchInferenceRPUConfig>().forward;
  CHECK(f.inp_res == 1.f / 254.f);
  CHECK(f.out_noise_per_channel);
  CHECK(f.out_bound == 10.f);
  // aihwkit IOParameters fields lightning lacks: rejected naming the field,
  // at any value (aihwkit's defaults of some, noise_management ABS_MAX or
  // bound_management ITERATIVE, would mean "on").
  for (const json& forward : {json{{"w_noise", 0.0}}, json{{"w_noise", 0.02}}, json{{"w_noise_type", "NONE"}},
                              json{{"noise_management", "ABS_MAX"}}, json{{"bound_management", "ITERATIVE"}},
                              json{{"inp_bound", 1.0}}})
    expect_config_error([&] { torch(json{{"forward", forward}}); },
                        {"TorchInferenceRPUConfig.forward." + forward.begin().key(), "aihwkit's IOParameters",
                         "aihwkit-lightning", "out_noise_per_channel"});
  CHECK_THROWS_AS(torch(json{{"forward", aimc::to_json(IOParameters{})}}), ConfigError);
  for (const char* field : {"inp_noise", "out_nonlinearity", "ir_drop", "out_noise_std", "inp_asymmetry", "r_series",
                            "slope_calibration", "v_offset_std", "w_read_asymmetry_dtod"})
    expect_config_error([&] { torch(json{{"forward", {{field, 0.1}}}}); }, {std::string("forward.") + field});
  expect_config_error([&] { torch(json{{"forward", {{"is_perfect", true}}}}); }, {"forward.is_perfect"});
  expect_config_error([&] { torch(json{{"forward", {{"out_nois", 0.1}}}}); }, {"out_nois", "out_noise_per_channel"});
  // The modifier and clip: lightning's types only, its other fields at aihwkit's defaults.
  expect_config_error([&] { torch(json{{"modifier", {{"type", "POLY"}}}}); }, {"modifier.type", "POLY"});
  expect_config_error([&] { torch(json{{"modifier", {{"pdrop", 0.1}}}}); }, {"modifier.pdrop"});
  expect_config_error([&] { torch(json{{"modifier", {{"rel_to_actual_wmax", false}}}}); },
                      {"modifier.rel_to_actual_wmax"});
  expect_config_error([&] { torch(json{{"clip", {{"type", "FIXED_VALUE"}, {"fixed_value", 1.0}}}}); },
                      {"clip.type", "FIXED_VALUE"});
  expect_config_error([&] { torch(json{{"clip", {{"type", "LAYER_GAUSSIAN"}}}}); }, {"clip.sigma", "-1"});
  CHECK(torch(json{{"clip", {{"type", "LAYER_GAUSSIAN"}, {"sigma", 2.0}}}}).get<TorchInferenceRPUConfig>().clip.sigma ==
        2.f);
  // Lightning's mapping writes -1 for no split; aimc's other families do not take it.
  CHECK(torch(json{{"mapping", {{"max_input_size", -1}}}}).get<TorchInferenceRPUConfig>().mapping.max_input_size ==
        -1);
  expect_config_error([&] { torch(json{{"mapping", {{"max_input_size", -2}}}}); }, {"mapping.max_input_size"});
  // pre_post.input_range: lightning's fast_mode / dynamic / act_range_momentum at
  // its defaults; aihwkit's extra fields at aihwkit's defaults.
  CHECK_NOTHROW(torch(json{{"pre_post", {{"input_range", {{"enable", true}, {"fast_mode", false}, {"dynamic", false},
                                                           {"act_range_momentum", 0.95}, {"gradient_scale", 1.0}}}}}}));
  expect_config_error([&] { torch(json{{"pre_post", {{"input_range", {{"fast_mode", true}}}}}}); },
                      {"pre_post.input_range.fast_mode", "not implemented"});
  expect_config_error([&] { torch(json{{"pre_post", {{"input_range", {{"dynamic", true}}}}}}); },
                      {"pre_post.input_range.dynamic"});
  expect_config_error([&] { torch(json{{"pre_post", {{"input_range", {{"gradient_scale", 2.0}}}}}}); },
                      {"pre_post.input_range.gradient_scale", "aihwkit-lightning"});
  expect_config_error([&] { torch(json{{"pre_post", {{"input_range", {{"fast_mod", false}}}}}}); },
                      {"fast_mod", "known fields"});
  // Lightning 2's noise_type / quantization_type combine into the type.
  const auto mod = [&](json m) { return torch(json{{"modifier", m}}).get<TorchInferenceRPUConfig>().modifier.type; };
  CHECK(mod(json{{"quantization_type", "DISCRETIZE"}, {"res", 14}}) == WeightModifierType::Discretize);
  CHECK(mod(json{{"noise_type", "ADD_NORMAL_PER_CHANNEL"}, {"std_dev", 0.02}}) == WeightModifierType::AddNormalPerChannel);
  CHECK(mod(json{{"noise_type", "AddNormal"}, {"quantization_type", "Discretize"}, {"res", 0.1}}) ==
        WeightModifierType::DiscretizeAddNormal);
  CHECK(mod(json{{"noise_type", "NONE"}, {"quantization_type", "NONE"}}) == WeightModifierType::None);
  expect_config_error([&] { mod(json{{"noise_type", "ADD_NORMAL"}, {"quantization_type", "DISCRETIZE_PER_CHANNEL"},
                                     {"res", 14}}); },
                      {"modifier.noise_type", "per channel"});
  expect_config_error([&] { mod(json{{"noise_type", "ADD_NORMAL"}, {"type", "ADD_NORMAL"}}); }, {"modifier.type"});
  expect_config_error([&] { mod(json{{"quantization_type", "DISCRETIZE"}}); }, {"modifier.res"});
  expect_config_error([&] { mod(json{{"noise_type", "MULT_NORMAL"}}); }, {"modifier.noise_type", "MULT_NORMAL"});
  // Written with lightning's fields only, and read back the same.
  const json j = ok.to_json();
  CHECK(j["forward"].size() == 5);
  CHECK(j["modifier"].size() == 4);
  CHECK(RPUConfig::from_json(j).to_json() == j);
}

TEST_CASE("each family says what its tiles are (tile_recipe)") {
  for (const std::string& family : rpu_config_families()) {
    INFO(family);
    const RPUConfig c = RPUConfig::from_family(family);
    const TileRecipe r = c.tile_recipe();
    CHECK(std::string(r.family) == family);
    CHECK(r.tile_class == c.tile_class());
    // Pulsed tiles carry a device, inference tiles a device model, lightning its forward.
    CHECK(r.device.has_value() == (r.tile_class == AnalogTileClass::Analog));
    CHECK(r.noise_model.has_value() == (family == "InferenceRPUConfig"));
    CHECK((r.lightning != nullptr) == (family == "TorchInferenceRPUConfig"));
    // Exact MVMs where the tiles only store weights.
    if (family == "FloatingPointRPUConfig" || family == "TorchInferenceRPUConfig") {
      CHECK(r.forward.is_perfect);
      CHECK(r.backward.is_perfect);
    }
  }
  SingleRPUConfig s;
  s.update.desired_bl = 7;
  s.forward.out_noise = 0.5f;
  const TileRecipe r = RPUConfig(s).tile_recipe();  // copies: outlives the temporary config
  CHECK(r.update.desired_bl == 7);
  CHECK(r.forward.out_noise == 0.5f);
  CHECK((*r.device)["type"] == "ConstantStepDevice");
  InferenceRPUConfig i;
  i.clip.type = WeightClipType::FixedValue;
  i.clip.fixed_value = 0.3f;
  CHECK(RPUConfig(i).tile_recipe().clip.fixed_value == 0.3f);
  CHECK(RPUConfig(i).tile_recipe().backward.is_perfect);  // aihwkit's InferenceRPUConfig backward
}
