// WeightRemapParameter validation and JSON round trip.
#include "layers/config/weight_remap.h"

#include <array>

#include "layers/config/json_fields.h"

namespace aimc {

namespace {

constexpr std::array<config::EnumName<WeightRemapType>, 3> kRemapTypes{{
    {WeightRemapType::None, "NONE", "None"},
    {WeightRemapType::LayerwiseSymmetric, "LAYERWISE_SYMMETRIC", "LayerwiseSymmetric"},
    {WeightRemapType::ChannelwiseSymmetric, "CHANNELWISE_SYMMETRIC", "ChannelwiseSymmetric"},
}};

std::span<const config::EnumName<WeightRemapType>> remap_table() { return kRemapTypes; }

}  // namespace

const char* to_string(WeightRemapType value) { return config::enum_to_name(value, remap_table()); }

void WeightRemapParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.greater("remapped_wmax", remapped_wmax, 0.0);
  c.at_least("max_scale_range", max_scale_range, 0.0);
  c.at_least("max_scale_ref", max_scale_ref, 0.0);
}

nlohmann::json WeightRemapParameter::to_json() const {
  nlohmann::json j;
  j["remapped_wmax"] = config::float_to_json(remapped_wmax);
  j["max_scale_range"] = config::float_to_json(max_scale_range);
  j["max_scale_ref"] = config::float_to_json(max_scale_ref);
  j["type"] = to_string(type);
  return j;
}

WeightRemapParameter WeightRemapParameter::from_json(const nlohmann::json& j,
                                                     const std::string& where) {
  WeightRemapParameter p;
  config::ObjectReader r(j, where);
  r.read("remapped_wmax", p.remapped_wmax);
  r.read("max_scale_range", p.max_scale_range);
  r.read("max_scale_ref", p.max_scale_ref);
  r.read_enum("type", p.type, remap_table());
  r.finish();
  p.validate(where);
  return p;
}

}  // namespace aimc
