// WeightClipParameter validation and JSON round trip.
#include "layers/config/weight_clip.h"

#include <array>

#include "layers/config/json_fields.h"

namespace aimc {

namespace {

constexpr std::array<config::EnumName<WeightClipType>, 5> kClipTypes{{
    {WeightClipType::None, "NONE", "None"},
    {WeightClipType::FixedValue, "FIXED_VALUE", "FixedValue"},
    {WeightClipType::LayerGaussian, "LAYER_GAUSSIAN", "LayerGaussian"},
    {WeightClipType::AverageChannelMax, "AVERAGE_CHANNEL_MAX", "AverageChannelMax"},
    {WeightClipType::LayerGaussianPerChannel, "LAYER_GAUSSIAN_PER_CHANNEL",
     "LayerGaussianPerChannel"},
}};

std::span<const config::EnumName<WeightClipType>> clip_table() { return kClipTypes; }

}  // namespace

const char* to_string(WeightClipType value) { return config::enum_to_name(value, clip_table()); }

void WeightClipParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.finite("fixed_value", fixed_value);
  if (type == WeightClipType::FixedValue && !(fixed_value > 0.0f)) {
    c.fail("fixed_value", config::format_number(fixed_value), "> 0 when type is FIXED_VALUE");
  }
  // sigma is read only by the LAYER_GAUSSIAN types (aihwkit-lightning's
  // default is -1, "set it before use").
  if (type == WeightClipType::LayerGaussian || type == WeightClipType::LayerGaussianPerChannel) {
    c.greater("sigma", sigma, 0.0);
  } else {
    c.finite("sigma", sigma);
  }
}

nlohmann::json WeightClipParameter::to_json() const {
  nlohmann::json j;
  j["fixed_value"] = config::float_to_json(fixed_value);
  j["sigma"] = config::float_to_json(sigma);
  j["type"] = to_string(type);
  return j;
}

WeightClipParameter WeightClipParameter::from_json(const nlohmann::json& j,
                                                   const std::string& where) {
  WeightClipParameter p;
  config::ObjectReader r(j, where);
  r.read("fixed_value", p.fixed_value);
  r.read("sigma", p.sigma);
  r.read_enum("type", p.type, clip_table());
  r.finish();
  p.validate(where);
  return p;
}

}  // namespace aimc
