// MappingParameter validation and JSON round trip.
#include "layers/config/mapping.h"

#include "layers/config/json_fields.h"

namespace aimc {

void MappingParameter::validate(const std::string& where, int min_size) const {
  const config::RangeCheck c(where);
  c.at_least("weight_scaling_omega", weight_scaling_omega, 0.0);
  c.at_least("max_input_size", max_input_size, min_size);
  c.at_least("max_output_size", max_output_size, min_size);
}

nlohmann::json MappingParameter::to_json() const {
  nlohmann::json j;
  j["digital_bias"] = digital_bias;
  j["weight_scaling_omega"] = config::float_to_json(weight_scaling_omega);
  j["weight_scaling_columnwise"] = weight_scaling_columnwise;
  j["weight_scaling_lr_compensation"] = weight_scaling_lr_compensation;
  j["learn_out_scaling"] = learn_out_scaling;
  j["out_scaling_columnwise"] = out_scaling_columnwise;
  j["max_input_size"] = max_input_size;
  j["max_output_size"] = max_output_size;
  return j;
}

MappingParameter MappingParameter::from_json(const nlohmann::json& j, const std::string& where) {
  return from_json(j, where, MappingParameter{}, 0);
}

MappingParameter MappingParameter::from_json(const nlohmann::json& j, const std::string& where,
                                            const MappingParameter& defaults, int min_size) {
  MappingParameter m = defaults;
  config::ObjectReader r(j, where);
  r.read("digital_bias", m.digital_bias);
  r.read("weight_scaling_omega", m.weight_scaling_omega);
  r.read("weight_scaling_columnwise", m.weight_scaling_columnwise);
  r.read("weight_scaling_lr_compensation", m.weight_scaling_lr_compensation);
  r.read("learn_out_scaling", m.learn_out_scaling);
  r.read("out_scaling_columnwise", m.out_scaling_columnwise);
  r.read("max_input_size", m.max_input_size);
  r.read("max_output_size", m.max_output_size);
  r.finish();
  m.validate(where, min_size);
  return m;
}

}  // namespace aimc
