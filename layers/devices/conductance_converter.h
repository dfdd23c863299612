// ConductanceConverter: how a tile's weights become device conductances and
// back (REFERENCE.md section 5, aihwkit's inference/converter). A converter
// maps the n weights of one tile to num_devices() conductance planes
// g[k·n + i] (µS) plus a few per-tile parameters (e.g. the scale ratio
// µS per weight unit), and maps conductances back to weights with those
// parameters. Converters are plug-ins: a registry by type name builds one
// from JSON (make_conductance_converter).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc {

class ConductanceConverter {
 public:
  virtual ~ConductanceConverter() = default;

  // The registry name ("SinglePairConductanceConverter", ...).
  virtual std::string type() const = 0;
  // Every parameter plus "type".
  virtual nlohmann::json to_json() const = 0;

  // Conductance planes per weight (2 for a differential pair).
  virtual int num_devices() const = 0;
  // Per-tile parameters kept between conversions (fixed count per converter).
  virtual int num_params() const = 0;
  // Conductance range (µS).
  virtual float g_max() const = 0;
  virtual float g_min() const = 0;

  // w[n] -> g[num_devices()·n] (µS) and params[num_params()].
  virtual void to_conductances(const float* w, std::int64_t n, float* g, float* params) const = 0;
  // g[num_devices()·n], params -> w[n].
  virtual void to_weights(const float* g, std::int64_t n, const float* params, float* w) const = 0;

  // The same maps on a GPU through their CUDA twins (kernels/cuda/
  // device_noise.cu), for a tile programmed there: w_device, g and w are
  // device arrays; the per-tile params (host) come from w_host, a host copy
  // of the weights (max|W| is one scan, the conductances n·num_devices()
  // element maps). The CPU's bits where the kernels compute as the host does.
  // False (the default): no kernels, the tile programs on the host.
  virtual bool runs_on_gpu() const { return false; }
  virtual void to_conductances_cuda(const float* w_host, const float* w_device, std::int64_t n, float* g,
                                    float* params) const;
  virtual void to_weights_cuda(const float* g, std::int64_t n, const float* params, float* w) const;
};

using ConductanceConverterFactory =
    std::function<std::shared_ptr<ConductanceConverter>(const nlohmann::json& j, const std::string& where)>;

// Builds a converter from {"type": name, ...}; null means the default
// SinglePairConductanceConverter. ConfigError (naming `where`) for an unknown
// type (listing the known ones) or a bad field.
std::shared_ptr<ConductanceConverter> make_conductance_converter(const nlohmann::json& j, const std::string& where);
// Adds a converter type (a plug-in); ConfigError if the name is taken.
void register_conductance_converter(const std::string& type, ConductanceConverterFactory factory);
std::vector<std::string> conductance_converter_types();

}  // namespace aimc
