// Drawing a PNG with gnuplot, when it is installed: quoting for the shell
// and gnuplot, and rendering a script that draws to `aimc_output` (the
// script sets its own terminal and output when run by hand).
#pragma once

#include <string>

namespace aimc::cli {

// The full path of an executable found on PATH, or "".
std::string find_on_path(const std::string& name);

// A single-quoted shell word.
std::string shell_quote(const std::string& s);

// A string literal for gnuplot (single quotes; '' escapes a quote).
std::string gnuplot_quote(const std::string& s);

// The first line of a script render_png runs: without aimc_output (run by
// hand) it sets a PNG terminal and draws to png_abs itself.
std::string gnuplot_output_preamble(const std::string& png_abs);

// Runs gnuplot (found at `gnuplot`) on script_path with a PNG terminal
// (pngcairo where gnuplot has it, else png) drawing to png.tmp, then renames
// that onto png: true when the PNG was drawn. Never throws.
bool render_png(const std::string& gnuplot, const std::string& script_path, const std::string& png);

}  // namespace aimc::cli
