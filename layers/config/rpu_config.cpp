// RPU configuration families: validation, JSON round trip, tagged holder.
#include "layers/config/rpu_config.h"

#include "layers/devices/drift_compensation.h"
#include "layers/devices/noise_model.h"
#include "layers/devices/compound/compound_device.h"
#include "layers/devices/tile_device.h"

#include "engine/error.h"
#include "layers/config/json_fields.h"

namespace aimc {

namespace {

// An optional "family" key must name the family being read.
void check_family_key(config::ObjectReader& r, const char* family) {
  const nlohmann::json* v = r.find("family");
  if (v == nullptr) return;
  if (!v->is_string() || v->get<std::string>() != family) {
    throw ConfigError(r.path("family") + ": expected \"" + family + "\", got " + v->dump());
  }
}

// A device-model placeholder: {"type": "<name>", ...}; null allowed if nullable.
void check_model_object(const nlohmann::json& j, const std::string& where, const char* field,
                        bool nullable) {
  if (nullable && j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    config::RangeCheck(where).fail(
        field, j.dump(),
        std::string("an object {\"type\": \"<model name>\", ...}") + (nullable ? " or null" : ""));
  }
}

// A device model's JSON with every field written out (as read back by its
// factory); an invalid one as it is, so that writing never throws.
template <class Factory>
nlohmann::json full_model_json(const nlohmann::json& j, Factory make) {
  if (j.is_null()) return j;
  try {
    return make(j, "model")->to_json();
  } catch (const ConfigError&) {
    return j;
  }
}

void check_tile_array_class(const std::string& value, const std::string& where) {
  if (!value.empty() && value != "TileModuleArray")
    config::RangeCheck(where).fail("tile_array_class", value, "\"TileModuleArray\" or null (one tile per layer)");
}

nlohmann::json tile_array_class_json(const std::string& value) {
  return value.empty() ? nlohmann::json(nullptr) : nlohmann::json(value);
}

// The part every family shares (aihwkit's MappableRPU): tile_array_class,
// mapping and pre_post, read, checked and written the same way.
template <class Family>
void read_mappable(config::ObjectReader& r, Family& c) {
  r.read("tile_array_class", c.tile_array_class);
  if (auto* v = r.find("mapping")) c.mapping = MappingParameter::from_json(*v, r.path("mapping"));
  if (auto* v = r.find("pre_post")) c.pre_post = PrePostProcessingParameter::from_json(*v, r.path("pre_post"));
}

template <class Family>
void validate_mappable(const Family& c, const std::string& where) {
  check_tile_array_class(c.tile_array_class, where);
  c.mapping.validate(where + ".mapping");
  c.pre_post.validate(where + ".pre_post");
}

template <class Family>
void write_mappable(const Family& c, nlohmann::json& j) {
  j["tile_array_class"] = tile_array_class_json(c.tile_array_class);
  j["mapping"] = c.mapping.to_json();
  j["pre_post"] = c.pre_post.to_json();
}

// Cross-field rules between the input range and the forward IOParameters.
void check_input_range(const PrePostProcessingParameter& pre_post, const IOParameters& forward,
                       const std::string& where) {
  const InputRangeParameter& ir = pre_post.input_range;
  if (!ir.enable) return;
  const config::RangeCheck c(where + ".forward");
  if (forward.inp_bound != 1.0f) {
    c.fail("inp_bound", config::format_number(forward.inp_bound),
           "1 when pre_post.input_range.enable is true (the input range scales inputs to ±1)");
  }
  if (ir.manage_output_clipping) {
    if (forward.is_perfect) {
      c.fail("is_perfect", "true", "false when pre_post.input_range.manage_output_clipping is on");
    }
    if (forward.noise_management != NoiseManagementType::None) {
      c.fail("noise_management", to_string(forward.noise_management),
             "NONE when pre_post.input_range.manage_output_clipping is on");
    }
    if (forward.bound_management != BoundManagementType::None) {
      c.fail("bound_management", to_string(forward.bound_management),
             "NONE when pre_post.input_range.manage_output_clipping is on");
    }
  }
}

}  // namespace

// ---- FloatingPointRPUConfig ----

void FloatingPointRPUConfig::validate(const std::string& where) const {
  validate_mappable(*this, where);
}

nlohmann::json FloatingPointRPUConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  write_mappable(*this, j);
  return j;
}

FloatingPointRPUConfig FloatingPointRPUConfig::from_json(const nlohmann::json& j,
                                                         const std::string& where) {
  FloatingPointRPUConfig c;
  config::ObjectReader r(j, where);
  check_family_key(r, kFamily);
  read_mappable(r, c);
  r.finish();
  c.validate(where);
  return c;
}

TileRecipe FloatingPointRPUConfig::tile_recipe() const {
  TileRecipe r;
  r.family = kFamily;
  r.tile_class = kTileClass;
  r.forward = r.backward = perfect_io_parameters();  // exact digital tiles
  return r;
}

// ---- InferenceRPUConfig ----

IOParameters perfect_io_parameters() {
  IOParameters io;
  io.is_perfect = true;
  return io;
}

void InferenceRPUConfig::validate(const std::string& where) const {
  aimc::validate(forward, where + ".forward");
  aimc::validate(backward, where + ".backward");
  check_model_object(noise_model, where, "noise_model", false);
  check_model_object(drift_compensation, where, "drift_compensation", true);
  make_noise_model(noise_model, where + ".noise_model");  // every field checked
  make_drift_compensation(drift_compensation, where + ".drift_compensation");
  clip.validate(where + ".clip");
  remap.validate(where + ".remap");
  modifier.validate(where + ".modifier");
  validate_mappable(*this, where);
  check_input_range(pre_post, forward, where);
}

nlohmann::json InferenceRPUConfig::to_json() const {
  nlohmann::json j{{"forward", aimc::to_json(forward)},
                        {"backward", aimc::to_json(backward)},
                        {"noise_model", full_model_json(noise_model, make_noise_model)},
                        {"drift_compensation", full_model_json(drift_compensation, make_drift_compensation)},
                        {"reconvert_weights_before_drift", reconvert_weights_before_drift},
                        {"clip", clip.to_json()},
                        {"remap", remap.to_json()},
                        {"modifier", modifier.to_json()}};
  write_mappable(*this, j);
  return j;
}

InferenceRPUConfig InferenceRPUConfig::from_json(const nlohmann::json& j,
                                                 const std::string& where) {
  InferenceRPUConfig c;
  config::ObjectReader r(j, where);
  check_family_key(r, kFamily);
  if (auto* v = r.find("forward")) c.forward = io_parameters_from_json(*v, r.path("forward"));
  if (auto* v = r.find("backward")) c.backward = io_parameters_from_json(*v, r.path("backward"));
  if (auto* v = r.find("noise_model")) c.noise_model = *v;
  if (auto* v = r.find("drift_compensation")) c.drift_compensation = *v;
  if (auto* v = r.find("reconvert_weights_before_drift")) {
    if (!v->is_boolean())
      throw ConfigError(r.path("reconvert_weights_before_drift") + " must be true or false, got " + v->dump());
    c.reconvert_weights_before_drift = v->get<bool>();
  }
  if (auto* v = r.find("clip")) c.clip = WeightClipParameter::from_json(*v, r.path("clip"));
  if (auto* v = r.find("remap")) c.remap = WeightRemapParameter::from_json(*v, r.path("remap"));
  if (auto* v = r.find("modifier")) {
    c.modifier = WeightModifierParameter::from_json(*v, r.path("modifier"));
  }
  read_mappable(r, c);
  r.finish();
  c.validate(where);
  return c;
}

TileRecipe InferenceRPUConfig::tile_recipe() const {
  TileRecipe r;
  r.family = kFamily;
  r.tile_class = kTileClass;
  r.forward = forward;
  r.backward = backward;
  r.clip = clip;
  r.modifier = modifier;
  r.remap = remap;
  r.noise_model = noise_model;
  r.drift_compensation = drift_compensation;
  r.reconvert_weights_before_drift = reconvert_weights_before_drift;
  return r;
}

// ---- TorchInferenceRPUConfig ----

void TorchInferenceRPUConfig::validate(const std::string& where) const {
  forward.validate(where + ".forward");
  validate_lightning_clip(clip, where + ".clip");
  validate_lightning_modifier(modifier, where + ".modifier");
  check_tile_array_class(tile_array_class, where);
  validate_lightning_mapping(mapping, where + ".mapping");
  validate_lightning_pre_post(pre_post, where + ".pre_post");
}

nlohmann::json TorchInferenceRPUConfig::to_json() const {
  nlohmann::json j{{"forward", forward.to_json()},
                   {"clip", lightning_clip_json(clip)},
                   {"modifier", lightning_modifier_json(modifier)}};
  write_mappable(*this, j);
  return j;
}

TorchInferenceRPUConfig TorchInferenceRPUConfig::from_json(const nlohmann::json& j,
                                                           const std::string& where) {
  TorchInferenceRPUConfig c;
  config::ObjectReader r(j, where);
  check_family_key(r, kFamily);
  if (auto* v = r.find("forward")) c.forward = LightningIOParameters::from_json(*v, r.path("forward"));
  if (auto* v = r.find("clip")) c.clip = read_lightning_clip(*v, r.path("clip"));
  if (auto* v = r.find("modifier")) c.modifier = read_lightning_modifier(*v, r.path("modifier"));
  r.read("tile_array_class", c.tile_array_class);
  if (auto* v = r.find("mapping")) c.mapping = read_lightning_mapping(*v, r.path("mapping"));
  if (auto* v = r.find("pre_post")) c.pre_post = read_lightning_pre_post(*v, r.path("pre_post"));
  r.finish();
  c.validate(where);
  return c;
}

TileRecipe TorchInferenceRPUConfig::tile_recipe() const {
  TileRecipe r;
  r.family = kFamily;
  r.tile_class = kTileClass;
  r.forward = r.backward = perfect_io_parameters();  // the tiles only store the weights
  r.clip = clip;
  r.modifier = modifier;
  r.lightning = std::make_shared<const TorchInferenceRPUConfig>(*this);
  return r;
}

// ---- SingleRPUConfig and UnitCellRPUConfig (pulsed tiles) ----

namespace {

template <class Family>
void validate_pulsed(const Family& c, const std::string& where) {
  aimc::validate(c.forward, where + ".forward");
  aimc::validate(c.backward, where + ".backward");
  check_model_object(c.device, where, "device", false);
  make_device_model(c.device, where + ".device");  // every field checked
  c.update.validate(where + ".update");
  validate_mappable(c, where);
  check_input_range(c.pre_post, c.forward, where);
}

template <class Family>
nlohmann::json pulsed_to_json(const Family& c) {
  nlohmann::json j{{"device", full_model_json(c.device, make_device_model)},
                   {"forward", aimc::to_json(c.forward)},
                   {"backward", aimc::to_json(c.backward)},
                   {"update", c.update.to_json()}};
  write_mappable(c, j);
  return j;
}

template <class Family>
Family pulsed_from_json(const nlohmann::json& j, const std::string& where) {
  Family c;
  config::ObjectReader r(j, where);
  check_family_key(r, Family::kFamily);
  if (auto* v = r.find("device")) c.device = *v;
  if (auto* v = r.find("forward")) c.forward = io_parameters_from_json(*v, r.path("forward"));
  if (auto* v = r.find("backward")) c.backward = io_parameters_from_json(*v, r.path("backward"));
  if (auto* v = r.find("update")) c.update = UpdateParameters::from_json(*v, r.path("update"));
  read_mappable(r, c);
  r.finish();
  c.validate(where);
  return c;
}

// Pulsed tiles: the device on every weight and its update.
template <class Family>
TileRecipe pulsed_recipe(const Family& c) {
  TileRecipe r;
  r.family = Family::kFamily;
  r.tile_class = Family::kTileClass;
  r.forward = c.forward;
  r.backward = c.backward;
  r.device = c.device;
  r.update = c.update;
  return r;
}

}  // namespace

TileRecipe SingleRPUConfig::tile_recipe() const { return pulsed_recipe(*this); }
TileRecipe UnitCellRPUConfig::tile_recipe() const { return pulsed_recipe(*this); }
TileRecipe DigitalRankUpdateRPUConfig::tile_recipe() const { return pulsed_recipe(*this); }

void SingleRPUConfig::validate(const std::string& where) const {
  validate_pulsed(*this, where);
  const auto model = make_device_model(device, where + ".device");
  if (std::dynamic_pointer_cast<const CompoundDeviceModel>(model) ||
      std::dynamic_pointer_cast<const DigitalRankUpdateDeviceModel>(model))
    config::RangeCheck(where).fail("device", model->type(),
                                   "a single device (unit cells need UnitCellRPUConfig, "
                                   "MixedPrecisionCompound DigitalRankUpdateRPUConfig)");
}
nlohmann::json SingleRPUConfig::to_json() const { return pulsed_to_json(*this); }
SingleRPUConfig SingleRPUConfig::from_json(const nlohmann::json& j, const std::string& where) {
  return pulsed_from_json<SingleRPUConfig>(j, where);
}

void UnitCellRPUConfig::validate(const std::string& where) const {
  validate_pulsed(*this, where);
  if (!std::dynamic_pointer_cast<const CompoundDeviceModel>(make_device_model(device, where + ".device")))
    config::RangeCheck(where).fail("device", device.value("type", std::string("?")),
                                   "a unit cell (VectorUnitCell, ReferenceUnitCell, OneSidedUnitCell, TransferCompound, BufferedTransferCompound, ChoppedTransferCompound)");
}
nlohmann::json UnitCellRPUConfig::to_json() const { return pulsed_to_json(*this); }
UnitCellRPUConfig UnitCellRPUConfig::from_json(const nlohmann::json& j, const std::string& where) {
  return pulsed_from_json<UnitCellRPUConfig>(j, where);
}

void DigitalRankUpdateRPUConfig::validate(const std::string& where) const {
  validate_pulsed(*this, where);
  if (!std::dynamic_pointer_cast<const DigitalRankUpdateDeviceModel>(make_device_model(device, where + ".device")))
    config::RangeCheck(where).fail("device", device.value("type", std::string("?")),
                                   "a digital rank-update cell (MixedPrecisionCompound)");
}
nlohmann::json DigitalRankUpdateRPUConfig::to_json() const { return pulsed_to_json(*this); }
DigitalRankUpdateRPUConfig DigitalRankUpdateRPUConfig::from_json(const nlohmann::json& j, const std::string& where) {
  return pulsed_from_json<DigitalRankUpdateRPUConfig>(j, where);
}

// ---- RPUConfig ----

std::vector<std::string> rpu_config_families() {
  return {FloatingPointRPUConfig::kFamily, InferenceRPUConfig::kFamily, TorchInferenceRPUConfig::kFamily,
          SingleRPUConfig::kFamily, UnitCellRPUConfig::kFamily, DigitalRankUpdateRPUConfig::kFamily};
}

namespace {

std::string family_list() {
  std::string out;
  for (const auto& f : rpu_config_families()) out += (out.empty() ? "" : ", ") + f;
  return out;
}

}  // namespace

std::string RPUConfig::family() const {
  return std::visit([](const auto& c) { return std::string(std::decay_t<decltype(c)>::kFamily); },
                    config);
}

TileRecipe RPUConfig::tile_recipe() const {
  return std::visit([](const auto& c) { return c.tile_recipe(); }, config);
}

AnalogTileClass RPUConfig::tile_class() const {
  return std::visit([](const auto& c) { return std::decay_t<decltype(c)>::kTileClass; }, config);
}

const char* to_string(AnalogTileClass tile_class) {
  switch (tile_class) {
    case AnalogTileClass::FloatingPoint: return "TILE_CLASS_FLOATING_POINT";
    case AnalogTileClass::Inference: return "TILE_CLASS_INFERENCE";
    case AnalogTileClass::Analog: return "TILE_CLASS_ANALOG";
  }
  return "TILE_CLASS_UNKNOWN";
}

void RPUConfig::wrong_family(const char* wanted) const {
  throw ConfigError(std::string("RPUConfig: expected a ") + wanted + ", but it holds a " +
                    family());
}

void RPUConfig::validate() const {
  std::visit([](const auto& c) { c.validate(); }, config);
}

nlohmann::json RPUConfig::to_json() const {
  nlohmann::json j = std::visit([](const auto& c) { return c.to_json(); }, config);
  j["family"] = family();
  return j;
}

RPUConfig RPUConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) {
    throw ConfigError("RPUConfig: expected a JSON object with a \"family\" field, got " +
                      std::string(j.type_name()));
  }
  auto it = j.find("family");
  if (it == j.end() || !it->is_string()) {
    throw ConfigError("RPUConfig.family: missing or not a string; allowed: " + family_list());
  }
  const std::string family = it->get<std::string>();
  if (family == FloatingPointRPUConfig::kFamily) return FloatingPointRPUConfig::from_json(j);
  if (family == InferenceRPUConfig::kFamily) return InferenceRPUConfig::from_json(j);
  if (family == TorchInferenceRPUConfig::kFamily) return TorchInferenceRPUConfig::from_json(j);
  if (family == SingleRPUConfig::kFamily) return SingleRPUConfig::from_json(j);
  if (family == UnitCellRPUConfig::kFamily) return UnitCellRPUConfig::from_json(j);
  if (family == DigitalRankUpdateRPUConfig::kFamily) return DigitalRankUpdateRPUConfig::from_json(j);
  throw ConfigError("RPUConfig.family: unknown family \"" + family + "\"; allowed: " +
                    family_list());
}

RPUConfig RPUConfig::from_family(const std::string& family) {
  if (family == FloatingPointRPUConfig::kFamily) return FloatingPointRPUConfig{};
  if (family == InferenceRPUConfig::kFamily) return InferenceRPUConfig{};
  if (family == TorchInferenceRPUConfig::kFamily) return TorchInferenceRPUConfig{};
  if (family == SingleRPUConfig::kFamily) return SingleRPUConfig{};
  if (family == UnitCellRPUConfig::kFamily) return UnitCellRPUConfig{};
  if (family == DigitalRankUpdateRPUConfig::kFamily) return DigitalRankUpdateRPUConfig{};
  throw ConfigError("RPUConfig: unknown family \"" + family + "\"; allowed: " + family_list());
}

}  // namespace aimc
