// Fuzz target: the JSON-lines reader of the drift journal and the sweep's
// results file (tools/cli/json_lines.h), then the parser on every line it
// returns. Beyond "aimc errors only", the reader's contract is checked: the
// complete lines, each followed by a newline, are the file's first bytes,
// and a cut-off last line is counted exactly when the file does not end in
// one. A broken contract aborts (a finding).
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "tools/cli/json_lines.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = aimc::fuzz::input_file(data, size, ".jsonl");
  aimc::fuzz::expect_aimc_errors_only([&] {
    const aimc::cli::JsonLines read = aimc::cli::read_json_lines(path, "fuzz file");
    std::string joined;
    for (const std::string& line : read.lines) {
      if (line.find('\n') != std::string::npos) std::abort();
      joined += line + '\n';
    }
    if (bytes.compare(0, joined.size(), joined) != 0) std::abort();
    const bool partial = joined.size() < bytes.size();
    if (read.dropped_partial_lines != (partial ? 1 : 0)) std::abort();
    if (partial && bytes.find('\n', joined.size()) != std::string::npos) std::abort();
    for (std::size_t i = 0; i < read.lines.size(); ++i)
      aimc::fuzz::expect_aimc_errors_only(
          [&] { (void)aimc::cli::parse_json_line(read.lines[i], "fuzz file line " + std::to_string(i + 1) + ": "); });
  });
  return 0;
}
