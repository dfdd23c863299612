// gnuplot plots (see gnuplot.h).
#include "tools/cli/gnuplot.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace aimc::cli {

namespace fs = std::filesystem;

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;  // "" is the current directory
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return {};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string gnuplot_output_preamble(const std::string& png_abs) {
  // Run by hand, the script draws the PNG itself; aimc sets its own terminal
  // and a temporary name (aimc_output), renamed into place once drawn.
  return "if (!exists('aimc_output')) set terminal png size 900,600; aimc_output = " + gnuplot_quote(png_abs) +
         "\nset output aimc_output\n";
}

bool render_png(const std::string& gnuplot, const std::string& script_path, const std::string& png) {
  const std::string terminals[] = {"set terminal pngcairo size 900,600 font ',11'",
                                   "set terminal png size 900,600"};
  const std::string png_tmp = fs::absolute(png).string() + ".tmp";
  for (const std::string& term : terminals) {
    const std::string cmd = shell_quote(gnuplot) + " -e " + shell_quote(term) + " -e " +
                            shell_quote("aimc_output = " + gnuplot_quote(png_tmp)) + " " + shell_quote(script_path) +
                            " >/dev/null 2>&1";
    std::error_code ec;
    if (std::system(cmd.c_str()) == 0 && fs::exists(png_tmp, ec) && fs::file_size(png_tmp, ec) > 0) {
      fs::rename(png_tmp, png, ec);
      if (!ec) return true;
    }
    fs::remove(png_tmp, ec);
  }
  return false;
}

}  // namespace aimc::cli
