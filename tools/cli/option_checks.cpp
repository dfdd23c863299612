// Checks of command-line values (see option_checks.h).
#include "tools/cli/option_checks.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "engine/error.h"
#include "tools/data/idx.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string quote_value(const std::string& text) {
  return text.size() <= 40 ? text : text.substr(0, 37) + "...";
}

CLI::Validator real_range(double lo, double hi, Ends ends) {
  const std::string interval = std::string(ends == Ends::kOpenLow ? "(" : "[") + number(lo) + ", " + number(hi) +
                               (ends == Ends::kOpenHigh ? ")" : "]");
  return CLI::Validator(
      [lo, hi, ends, interval](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
        const bool parsed = !text.empty() && end == text.c_str() + text.size();
        const bool inside = std::isfinite(v) && (ends == Ends::kOpenLow ? v > lo : v >= lo) &&
                            (ends == Ends::kOpenHigh ? v < hi : v <= hi);
        if (!parsed || !inside) return "must be a finite number in " + interval + " (got " + quote_value(text) + ")";
        return {};
      },
      interval);
}

CLI::Option* add_sample_limit(CLI::App& cmd, const std::string& flag, std::int64_t& n, const std::string& split) {
  return cmd
      .add_option(flag, n,
                  "Use only the first N " + split + " samples (0: all)")
      ->check(integer_range<std::int64_t>(0, data::kMaxSamples));
}

void check_output_file(const std::string& flag, const std::string& path) {
  const std::string what = flag + " " + path + ": ";
  if (path.empty()) throw UsageError(flag + ": the output path is empty");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) throw UsageError(what + "is a directory; give a file name");
  const bool exists = fs::exists(st);
  if (exists && !fs::is_regular_file(st))
    throw UsageError(what + "exists and is not a regular file (a FIFO, device or socket)");
  const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  if (!fs::is_directory(parent, ec)) throw UsageError(what + "the directory " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    throw UsageError(what + "the directory " + parent.string() + " is not writable");
  if (exists && ::access(path.c_str(), W_OK) != 0) throw UsageError(what + "the file is not writable");
}

}  // namespace aimc::cli
