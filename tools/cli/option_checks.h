// Checks of command-line values, shared by every subcommand so each flag is
// refused the same way: numeric flags through a CLI11 validator that parses
// the text itself (so overflow, nan and inf never reach the variable) and
// states its range in --help; output files before any work starts.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>

namespace aimc::cli {

// Ranges of flags that several subcommands share (documented in their --help).
inline constexpr std::int64_t kMaxEpochs = 10000;     // --epochs, --step-size
inline constexpr std::int64_t kMaxBatchSize = 65536;  // --batch-size

// The offending text as quoted in a message: at most 40 characters.
std::string quote_value(const std::string& text);

// An integer flag in [lo, hi]; anything else (not an integer, out of range,
// too large for 64 bits) is refused with "must be an integer between LO and
// HI (got TEXT)". The range shows in --help.
template <class T>
CLI::Validator integer_range(T lo, T hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        T v{};
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || ptr != end || v < lo || v > hi)
          return "must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi) + " (got " +
                 quote_value(text) + ")";
        return {};
      },
      range);
}

// Which ends of a real interval are excluded.
enum class Ends { kClosed, kOpenLow, kOpenHigh };

// A finite real flag in the interval [lo, hi] (ends as given); nan, inf and
// anything outside are refused with "must be a finite number in (LO, HI]
// (got TEXT)". The interval shows in --help.
CLI::Validator real_range(double lo, double hi, Ends ends = Ends::kClosed);

// --limit-train / --limit-test: use only the first N samples of a split,
// 0 to the IDX reader's limit, 0 meaning all (the same on every subcommand).
CLI::Option* add_sample_limit(CLI::App& cmd, const std::string& flag, std::int64_t& n, const std::string& split);

// An output file named by flag: refused (UsageError naming the flag and the
// path) unless its directory exists and is writable and the path is not a
// directory or another non-regular file. Call before any work starts.
void check_output_file(const std::string& flag, const std::string& path);

}  // namespace aimc::cli
