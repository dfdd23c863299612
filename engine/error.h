// Error types thrown by the aimc library. Library code never exits or aborts
// on bad input: it throws one of these with a message that names the problem.
#pragma once

#include <stdexcept>
#include <string>

namespace aimc {

// Base class of every error aimc throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A configuration value is out of its allowed range or malformed.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Tensor shapes do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file is missing, truncated or corrupt.
class IoError : public Error {
 public:
  using Error::Error;
};

// A value is invalid (NaN, wrong dtype, out of range argument).
class ValueError : public Error {
 public:
  using Error::Error;
};

// The requested device (CUDA) is not available or a device call failed.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// Bad command-line usage (tools/).
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace aimc
