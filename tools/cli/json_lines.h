// Reading a JSON-lines file that one writer appends to (the drift journal,
// drift_journal.h; a sweep's results file, sweep_results.h): the complete
// lines, and whether the last one was cut off (a kill while it was written;
// that record runs again), so a resumed run never trips on it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc::cli {

struct JsonLines {
  std::vector<std::string> lines;  // every line that ends in a newline, without it
  int dropped_partial_lines = 0;   // 1 when the file ends in a line without its newline (not in `lines`)
};

// The lines of the file at path. `what` names the file in errors ("drift
// journal PATH", "results file PATH"): IoError "cannot read the WHAT" when it
// cannot be read, "WHAT line 1: no header (...)" when no line is complete.
JsonLines read_json_lines(const std::string& path, const std::string& what);

// One line parsed: IoError "WHERE not JSON (...)".
nlohmann::json parse_json_line(const std::string& line, const std::string& where);

}  // namespace aimc::cli
