// Reading a JSON-lines file (see json_lines.h).
#include "tools/cli/json_lines.h"

#include <fstream>
#include <iterator>

#include "engine/error.h"

namespace aimc::cli {

JsonLines read_json_lines(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read the " + what);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError("cannot read the " + what);
  JsonLines out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      out.dropped_partial_lines = 1;  // written up to a kill
      break;
    }
    out.lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  // The header is written whole (atomically) before any record.
  if (out.lines.empty()) throw IoError(what + " line 1: no header (the file is empty or cut short)");
  return out;
}

nlohmann::json parse_json_line(const std::string& line, const std::string& where) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number beyond double (1e400).
    throw IoError(where + "not JSON (" + e.what() + ")");
  }
}

}  // namespace aimc::cli
