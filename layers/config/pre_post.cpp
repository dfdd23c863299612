// InputRangeParameter / PrePostProcessingParameter validation and JSON round trip.
#include "layers/config/pre_post.h"

#include "layers/config/json_fields.h"

namespace aimc {

void InputRangeParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.greater("init_value", init_value, 0.0);
  c.at_least("init_from_data", init_from_data, 0.0);
  c.greater("init_std_alpha", init_std_alpha, 0.0);
  c.at_least("decay", decay, 0.0);
  c.in_closed("input_min_percentage", input_min_percentage, 0.0, 1.0);
  c.in_closed("output_min_percentage", output_min_percentage, 0.0, 1.0);
  c.at_least("gradient_scale", gradient_scale, 0.0);
}

nlohmann::json InputRangeParameter::to_json() const {
  using config::float_to_json;
  nlohmann::json j;
  j["enable"] = enable;
  j["learn_input_range"] = learn_input_range;
  j["init_value"] = float_to_json(init_value);
  j["init_from_data"] = init_from_data;
  j["init_std_alpha"] = float_to_json(init_std_alpha);
  j["decay"] = float_to_json(decay);
  j["input_min_percentage"] = float_to_json(input_min_percentage);
  j["manage_output_clipping"] = manage_output_clipping;
  j["output_min_percentage"] = float_to_json(output_min_percentage);
  j["gradient_scale"] = float_to_json(gradient_scale);
  j["gradient_relative"] = gradient_relative;
  j["calibration_info"] =
      calibration_info.empty() ? nlohmann::json(nullptr) : nlohmann::json(calibration_info);
  return j;
}

InputRangeParameter InputRangeParameter::from_json(const nlohmann::json& j,
                                                   const std::string& where) {
  InputRangeParameter p;
  config::ObjectReader r(j, where);
  r.read("enable", p.enable);
  r.read("learn_input_range", p.learn_input_range);
  r.read("init_value", p.init_value);
  r.read("init_from_data", p.init_from_data);
  r.read("init_std_alpha", p.init_std_alpha);
  r.read("decay", p.decay);
  r.read("input_min_percentage", p.input_min_percentage);
  r.read("manage_output_clipping", p.manage_output_clipping);
  r.read("output_min_percentage", p.output_min_percentage);
  r.read("gradient_scale", p.gradient_scale);
  r.read("gradient_relative", p.gradient_relative);
  r.read("calibration_info", p.calibration_info);
  r.finish();
  p.validate(where);
  return p;
}

void PrePostProcessingParameter::validate(const std::string& where) const {
  input_range.validate(where + ".input_range");
}

nlohmann::json PrePostProcessingParameter::to_json() const {
  return nlohmann::json{{"input_range", input_range.to_json()}};
}

PrePostProcessingParameter PrePostProcessingParameter::from_json(const nlohmann::json& j,
                                                                 const std::string& where) {
  PrePostProcessingParameter p;
  config::ObjectReader r(j, where);
  if (const nlohmann::json* v = r.find("input_range")) {
    p.input_range = InputRangeParameter::from_json(*v, r.path("input_range"));
  }
  r.finish();
  return p;
}

}  // namespace aimc
