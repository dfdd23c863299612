// The drift compensations of drift_compensation.h.
#include "layers/devices/drift_compensation.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/json_fields.h"
#include "layers/devices/registry.h"

namespace aimc {
namespace {

constexpr float kMinReadout = 1e-4f;  // aihwkit's clamp of the readout

// Σ_i |Y_ij| per output column j, in double, rows in order (the layout the
// CUDA twin cuda::column_abs_sums computes).
std::vector<double> column_abs_sums(const float* y, std::int64_t in, std::int64_t out) {
  std::vector<double> sum(static_cast<std::size_t>(out), 0.0);
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t j = 0; j < out; ++j) sum[j] += std::fabs(y[i * out + j]);
  return sum;
}

// max(mean |Y|, 1e-4) over all of Y [in, out].
std::vector<float> global_readout(const std::vector<double>& sums, std::int64_t in, std::int64_t out) {
  double total = 0.0;
  for (double s : sums) total += s;
  const double mean = in * out > 0 ? total / static_cast<double>(in * out) : 0.0;
  return {std::max(static_cast<float>(mean), kMinReadout)};
}

class GlobalDriftCompensation : public DriftCompensation {
 public:
  std::string type() const override { return "GlobalDriftCompensation"; }
  std::int64_t readout_size(std::int64_t) const override { return 1; }
  std::vector<float> readout_from_sums(const std::vector<double>& sums, std::int64_t in,
                                       std::int64_t out) const override {
    return global_readout(sums, in, out);
  }
};

class GlobalDriftCompensationWithExactReference : public GlobalDriftCompensation {
 public:
  std::string type() const override { return "GlobalDriftCompensationWithExactReference"; }
  bool exact_reference() const override { return true; }
};

class PerColumnDriftCompensation : public DriftCompensation {
 public:
  std::string type() const override { return "PerColumnDriftCompensation"; }
  std::int64_t readout_size(std::int64_t out) const override { return out; }
  std::vector<float> readout_from_sums(const std::vector<double>& sum, std::int64_t in,
                                       std::int64_t out) const override {
    std::vector<float> m(static_cast<std::size_t>(out));
    for (std::int64_t j = 0; j < out; ++j)
      m[j] = std::max(static_cast<float>(in > 0 ? sum[j] / static_cast<double>(in) : 0.0), kMinReadout);
    return m;
  }
};

}  // namespace

std::vector<float> DriftCompensation::readout(const float* y, std::int64_t in, std::int64_t out) const {
  return readout_from_sums(column_abs_sums(y, in, out), in, out);
}

namespace {

// A factory for a compensation without parameters: {"type": name} only.
template <class T>
DriftCompensationFactory plain() {
  return [](const nlohmann::json& j, const std::string& where) -> std::shared_ptr<DriftCompensation> {
    config::ObjectReader r(j, where);
    r.find("type");
    r.finish();
    return std::make_shared<T>();
  };
}

devices::Registry<DriftCompensationFactory>& registry() {
  static devices::Registry<DriftCompensationFactory> r(
      "drift compensation",
      {{"GlobalDriftCompensation", plain<GlobalDriftCompensation>()},
       {"GlobalDriftCompensationWithExactReference", plain<GlobalDriftCompensationWithExactReference>()},
       {"PerColumnDriftCompensation", plain<PerColumnDriftCompensation>()}});
  return r;
}

}  // namespace

std::shared_ptr<DriftCompensation> make_drift_compensation(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  return registry().get(j, where)(j, where);
}

void register_drift_compensation(const std::string& type, DriftCompensationFactory factory) {
  registry().add(type, std::move(factory));
}

std::vector<std::string> drift_compensation_types() { return registry().names(); }

}  // namespace aimc
