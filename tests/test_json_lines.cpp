// tools/cli/json_lines.h: the reader shared by the drift journal and the
// sweep's results file: complete lines, a cut-off last line dropped and
// counted, errors naming the file and the line.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "engine/error.h"
#include "tools/cli/json_lines.h"

namespace fs = std::filesystem;
using aimc::cli::parse_json_line;
using aimc::cli::read_json_lines;

namespace {

std::string write(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::temp_directory_path() / ("aimc_json_lines_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

// The message of the IoError that f throws ("" if none).
template <class F>
std::string io_error(F f) {
  try {
    f();
  } catch (const aimc::IoError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("read_json_lines: complete lines in order; a cut-off last line dropped and counted") {
  const std::string whole = write("whole", "{\"h\":1}\n{\"a\":2}\n\n{\"b\":3}\n");
  const auto r = read_json_lines(whole, "test file");
  REQUIRE(r.lines.size() == 4);
  CHECK(r.lines[0] == "{\"h\":1}");
  CHECK(r.lines[1] == "{\"a\":2}");
  CHECK(r.lines[2].empty());  // an empty line is a line (its parser refuses it, naming it)
  CHECK(r.lines[3] == "{\"b\":3}");
  CHECK(r.dropped_partial_lines == 0);

  const std::string cut = write("cut", "{\"h\":1}\n{\"a\":2}\n{\"b\":");
  const auto c = read_json_lines(cut, "test file");
  REQUIRE(c.lines.size() == 2);
  CHECK(c.lines[1] == "{\"a\":2}");
  CHECK(c.dropped_partial_lines == 1);
  // Bytes of any value, a NUL included, stay in their line.
  const std::string nul = write("nul", std::string("{\"h\":\"a\0b\"}\n", 12));
  CHECK(read_json_lines(nul, "test file").lines.at(0).size() == 11);
  for (const auto& p : {whole, cut, nul}) fs::remove(p);
}

TEST_CASE("read_json_lines: no complete header line, or no file, is an IoError naming the file") {
  const std::string empty = write("empty", "");
  CHECK(io_error([&] { read_json_lines(empty, "drift journal X"); }) ==
        "drift journal X line 1: no header (the file is empty or cut short)");
  const std::string half = write("half", "{\"kind\":\"aimc");
  CHECK(io_error([&] { read_json_lines(half, "results file Y"); }) ==
        "results file Y line 1: no header (the file is empty or cut short)");
  CHECK(io_error([&] { read_json_lines(empty + ".missing", "results file Z"); }) == "cannot read the results file Z");
  for (const auto& p : {empty, half}) fs::remove(p);
}

TEST_CASE("parse_json_line: JSON back, or an IoError starting with where it was") {
  CHECK(parse_json_line("{\"a\":[1,2.5]}", "w: ")["a"][1] == 2.5);
  const std::string msg = io_error([] { parse_json_line("{\"a\":", "results file F line 3: "); });
  CHECK(msg.rfind("results file F line 3: not JSON (", 0) == 0);
  CHECK(io_error([] { parse_json_line("", "L: "); }).rfind("L: not JSON (", 0) == 0);
  // A number beyond double is nlohmann's out_of_range, not a parse_error: an
  // IoError too (found by fuzz_json_lines; it ended the program before).
  const std::string big = io_error([] { parse_json_line("{\"accuracy\":1e400}", "J line 2: "); });
  CHECK(big.rfind("J line 2: not JSON (", 0) == 0);
  CHECK(big.find("number overflow") != std::string::npos);
}
