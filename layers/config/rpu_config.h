// RPU configuration families (aihwkit's RPUConfig classes) and the tagged
// holder RPUConfig that carries one of them through JSON ({"family": ...}).
//   FloatingPointRPUConfig  — digital tile (mapping, pre_post)
//   InferenceRPUConfig      — analog forward with hardware-aware training
//                             (aihwkit's InferenceTile conventions)
//   TorchInferenceRPUConfig — lightning-style analog forward (REFERENCE.md §4,
//                             aihwkit-lightning conventions)
// The inference device models (noise_model, drift_compensation) are kept as
// JSON objects {"type": name, ...} until their C++ structs exist.
// Presets and resolve_rpu_config are in layers/config/presets.h.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/analog/io_parameters.h"
#include "layers/config/io_parameters_json.h"
#include "layers/config/lightning_config.h"
#include "layers/config/mapping.h"
#include "layers/config/pre_post.h"
#include "layers/config/update_parameters.h"
#include "layers/config/weight_clip.h"
#include "layers/config/weight_modifier.h"
#include "layers/config/weight_remap.h"

namespace aimc {

// Each family: validate(where) throws ConfigError naming where.field; to_json()
// writes every field (without "family"); from_json() takes missing fields from
// the defaults, rejects unknown fields and wrong types, accepts an optional
// "family" key equal to the family's own name, and validates the result.

// What a family's tiles are (aihwkit's TILE_CLASS_FLOATING_POINT /
// TILE_CLASS_INFERENCE / TILE_CLASS_ANALOG): exact digital tiles, analog
// forward with digitally trained weights, or weights on pulsed devices.
enum class AnalogTileClass { FloatingPoint, Inference, Analog };
// "TILE_CLASS_FLOATING_POINT", "TILE_CLASS_INFERENCE", "TILE_CLASS_ANALOG".
const char* to_string(AnalogTileClass tile_class);

struct TorchInferenceRPUConfig;

// What a family's tiles are, as AnalogCore builds them: each family fills
// its own recipe (tile_recipe()), so the code that builds tiles never asks
// which family it holds. The recipe holds copies: it outlives its config.
struct TileRecipe {
  const char* family = "";
  AnalogTileClass tile_class = AnalogTileClass::FloatingPoint;
  // The tiles' forward and backward MVMs (exact for digital tiles and for
  // lightning tiles, which only store the weights).
  IOParameters forward, backward;
  // Hardware-aware training's weight transforms (type NONE where the family has none).
  WeightClipParameter clip;
  WeightModifierParameter modifier;
  WeightRemapParameter remap;
  // TILE_CLASS_INFERENCE with programmable devices (InferenceRPUConfig): the
  // inference device model and the drift compensation (null: none).
  std::optional<nlohmann::json> noise_model;
  nlohmann::json drift_compensation;
  bool reconvert_weights_before_drift = false;
  // The lightning-style forward replaces the tiles' MVM (TorchInferenceRPUConfig).
  std::shared_ptr<const TorchInferenceRPUConfig> lightning;
  // TILE_CLASS_ANALOG: the device model of every weight and its pulses.
  std::optional<nlohmann::json> device;
  UpdateParameters update;
};

struct FloatingPointRPUConfig {
  static constexpr const char* kFamily = "FloatingPointRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::FloatingPoint;

  // aihwkit's tile_array_class: "TileModuleArray" maps a layer larger than
  // mapping.max_input_size / max_output_size onto a grid of tiles; "" (JSON
  // null) keeps every layer on one tile of its full size.
  std::string tile_array_class = "TileModuleArray";
  MappingParameter mapping;
  PrePostProcessingParameter pre_post;

  TileRecipe tile_recipe() const;
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static FloatingPointRPUConfig from_json(const nlohmann::json& j,
                                          const std::string& where = kFamily);
};

// aihwkit's InferenceRPUConfig.backward default: IOParameters(is_perfect=True).
IOParameters perfect_io_parameters();

struct InferenceRPUConfig {
  static constexpr const char* kFamily = "InferenceRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::Inference;

  // Analog MVM of the forward pass (training and inference).
  IOParameters forward;
  // Backward pass (d -> Wᵀd); perfect by default as in aihwkit.
  IOParameters backward = perfect_io_parameters();
  // Inference device model (programming noise, drift, read noise): {"type": ...}.
  nlohmann::json noise_model = nlohmann::json{{"type", "PCMLikeNoiseModel"}};
  // Drift compensation {"type": ...}, or null for none.
  nlohmann::json drift_compensation = nlohmann::json{{"type", "GlobalDriftCompensation"}};
  // How drift_analog_weights reaches the conductances (layers/tiles/
  // tile_programming.h): false drifts each programmed device with its own
  // exponent (physical); true converts the programmed weights to
  // conductances again first, as aihwkit does.
  bool reconvert_weights_before_drift = false;
  WeightClipParameter clip;
  WeightRemapParameter remap;
  WeightModifierParameter modifier;
  // aihwkit's tile_array_class: "TileModuleArray" maps a layer larger than
  // mapping.max_input_size / max_output_size onto a grid of tiles; "" (JSON
  // null) keeps every layer on one tile of its full size.
  std::string tile_array_class = "TileModuleArray";
  MappingParameter mapping;
  PrePostProcessingParameter pre_post;

  // Also checks: noise_model / drift_compensation shapes; input range enabled
  // => forward.inp_bound == 1; manage_output_clipping => forward noise and
  // bound management NONE and not is_perfect.
  TileRecipe tile_recipe() const;
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static InferenceRPUConfig from_json(const nlohmann::json& j,
                                      const std::string& where = kFamily);
};

// aihwkit-lightning 2.1's TorchInferenceRPUConfig, with lightning's defaults
// (layers/config/lightning_config.h): every forward nonideality off, no input
// range, no tile split. Fields of aihwkit's IOParameters that lightning
// lacks are rejected, naming the field; those of the modifier, clip and input
// range are accepted only at aihwkit's defaults.
struct TorchInferenceRPUConfig {
  static constexpr const char* kFamily = "TorchInferenceRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::Inference;

  LightningIOParameters forward;
  WeightClipParameter clip = lightning_clip_defaults();
  // Lightning's modifier types only; enable_during_test is turned off (with a
  // warning) when a layer is built, as lightning does.
  WeightModifierParameter modifier;
  // aihwkit's tile_array_class: "TileModuleArray" maps a layer larger than
  // mapping.max_input_size / max_output_size onto a grid of tiles; "" (JSON
  // null) keeps every layer on one tile of its full size.
  std::string tile_array_class = "TileModuleArray";
  // max_input_size -1: no split (lightning). max_output_size (not in
  // lightning) splits the outputs too, each tile with its own max|W|; -1: off.
  MappingParameter mapping = lightning_mapping_defaults();
  PrePostProcessingParameter pre_post;

  TileRecipe tile_recipe() const;
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static TorchInferenceRPUConfig from_json(const nlohmann::json& j,
                                           const std::string& where = kFamily);
};

// The fields the pulsed families share (their tiles learn on the devices):
// the forward and backward MVMs, the pulses of the update, the tile mapping.
struct PulsedRPUConfigFields {
  IOParameters forward;
  IOParameters backward;
  UpdateParameters update;
  // aihwkit's tile_array_class: "TileModuleArray" maps a layer larger than
  // mapping.max_input_size / max_output_size onto a grid of tiles; "" (JSON
  // null) keeps every layer on one tile of its full size.
  std::string tile_array_class = "TileModuleArray";
  MappingParameter mapping;
  PrePostProcessingParameter pre_post;
};

// aihwkit's SingleRPUConfig (its default for analog layers): every weight is
// one pulsed device (layers/devices/pulsed/pulsed_device.h) that learns by
// the pulsed update (AnalogSGD); forward and backward are noisy analog MVMs.
struct SingleRPUConfig : PulsedRPUConfigFields {
  static constexpr const char* kFamily = "SingleRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::Analog;

  // The device model {"type": "ConstantStepDevice", ...} (layers/devices/tile_device.h).
  nlohmann::json device = nlohmann::json{{"type", "ConstantStepDevice"}};

  TileRecipe tile_recipe() const;
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static SingleRPUConfig from_json(const nlohmann::json& j, const std::string& where = kFamily);
};

// aihwkit's UnitCellRPUConfig: every weight is a compound cell of several
// devices (layers/devices/compound/compound_device.h: VectorUnitCell,
// ReferenceUnitCell, TransferCompound, ...), learning by the pulsed update.
// aihwkit's default device (the abstract UnitCell) cannot build a tile;
// aimc's default is a VectorUnitCell of two ConstantStepDevices.
struct UnitCellRPUConfig : PulsedRPUConfigFields {
  static constexpr const char* kFamily = "UnitCellRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::Analog;

  nlohmann::json device = nlohmann::json{
      {"type", "VectorUnitCell"},
      {"unit_cell_devices", {{{"type", "ConstantStepDevice"}}, {{"type", "ConstantStepDevice"}}}}};

  TileRecipe tile_recipe() const;
  // Also checks that device is a compound (a unit cell).
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static UnitCellRPUConfig from_json(const nlohmann::json& j, const std::string& where = kFamily);
};

// aihwkit's DigitalRankUpdateRPUConfig: the rank update is computed
// digitally and moved onto the analog devices in whole steps
// (MixedPrecisionCompound). aihwkit's default device (the abstract
// DigitalRankUpdateCell) cannot build a tile; aimc's default is a
// MixedPrecisionCompound on a ConstantStepDevice.
struct DigitalRankUpdateRPUConfig : PulsedRPUConfigFields {
  static constexpr const char* kFamily = "DigitalRankUpdateRPUConfig";
  static constexpr AnalogTileClass kTileClass = AnalogTileClass::Analog;

  nlohmann::json device =
      nlohmann::json{{"type", "MixedPrecisionCompound"}, {"device", {{"type", "ConstantStepDevice"}}}};

  TileRecipe tile_recipe() const;
  // Also checks that device is a digital rank-update cell.
  void validate(const std::string& where = kFamily) const;
  nlohmann::json to_json() const;
  static DigitalRankUpdateRPUConfig from_json(const nlohmann::json& j, const std::string& where = kFamily);
};

using RPUConfigVariant = std::variant<FloatingPointRPUConfig, InferenceRPUConfig, TorchInferenceRPUConfig,
                                      SingleRPUConfig, UnitCellRPUConfig, DigitalRankUpdateRPUConfig>;

// One configuration of any family. JSON: the family's fields plus
// "family": "InferenceRPUConfig" (required when reading).
struct RPUConfig {
  RPUConfigVariant config = InferenceRPUConfig{};

  RPUConfig() = default;
  RPUConfig(FloatingPointRPUConfig c) : config(std::move(c)) {}   // NOLINT: implicit on purpose
  RPUConfig(InferenceRPUConfig c) : config(std::move(c)) {}       // NOLINT
  RPUConfig(TorchInferenceRPUConfig c) : config(std::move(c)) {}  // NOLINT
  RPUConfig(SingleRPUConfig c) : config(std::move(c)) {}          // NOLINT
  RPUConfig(UnitCellRPUConfig c) : config(std::move(c)) {}        // NOLINT
  RPUConfig(DigitalRankUpdateRPUConfig c) : config(std::move(c)) {}  // NOLINT

  // The family name ("InferenceRPUConfig", ...).
  std::string family() const;
  // What the family's tiles are.
  AnalogTileClass tile_class() const;
  // How its tiles are built (each family's tile_recipe()).
  TileRecipe tile_recipe() const;
  template <class T>
  bool holds() const {
    return std::holds_alternative<T>(config);
  }
  // The held family; throws ConfigError naming both families if it is another.
  template <class T>
  const T& get() const {
    if (!holds<T>()) wrong_family(T::kFamily);
    return std::get<T>(config);
  }
  template <class T>
  T& get() {
    if (!holds<T>()) wrong_family(T::kFamily);
    return std::get<T>(config);
  }

  void validate() const;
  nlohmann::json to_json() const;
  // Needs a "family" string naming one of rpu_config_families().
  static RPUConfig from_json(const nlohmann::json& j);
  // The defaults of a family; throws ConfigError listing the families.
  static RPUConfig from_family(const std::string& family);

 private:
  [[noreturn]] void wrong_family(const char* wanted) const;
};

// {"FloatingPointRPUConfig", "InferenceRPUConfig", "TorchInferenceRPUConfig", "SingleRPUConfig",
//  "UnitCellRPUConfig", "DigitalRankUpdateRPUConfig"}.
std::vector<std::string> rpu_config_families();

}  // namespace aimc
