// The journal of an `aimc drift --csv F` run, F.partial: what makes a killed
// run resumable. JSON lines: the first identifies the run (DriftRunId: every
// input that shapes the numbers or the CSV); each further line is one
// finished (model, repeat) with its accuracy at every time, appended and
// fsync'd as that repeat finishes (DurableAppender). Numbers are written as
// text that reads back as the same double, so a resumed run's
// CSV has the same bytes as an uninterrupted one. The file is removed once
// the CSV is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/cli/drift_common.h"    // exact
#include "tools/cli/file_identity.h"  // ContentHash, file_content_hash

namespace aimc::cli {

struct DriftJournalModel {
  std::string label;
  std::string checkpoint;  // its path, for messages (its content identifies it)
  std::uint64_t checkpoint_bytes = 0;
  std::string checkpoint_hash;
};

// What a run's results depend on. Not in it: --threads (the results do not
// depend on it), --json and --plot (outputs only), the dataset's path (its
// content is), the --rpu-config spelling (its resolved config is).
struct DriftRunId {
  std::string version;  // aimc's: another build may differ in the last bit
  std::vector<DriftJournalModel> models;
  nlohmann::json rpu_config;  // the resolved --rpu-config; null: the checkpoints' own
  std::vector<double> times;  // seconds
  std::int64_t repeats = 0;
  std::uint64_t seed = 0;
  std::int64_t test_samples = 0;
  std::string test_hash;  // of the test images' and labels' bytes
};

// One finished (model, repeat): its accuracy at every time.
struct DriftRepeat {
  std::int64_t model = 0;
  std::int64_t repeat = 0;
  std::vector<double> accuracy;
};

// CSV.partial.
std::string drift_journal_path(const std::string& csv);

// The first line and a repeat's line, each with its newline.
std::string drift_journal_header(const DriftRunId& id);
std::string drift_journal_line(const DriftRunId& id, const DriftRepeat& repeat);

// A repeat's line (without its newline) read back and checked against the
// run (model and repeat in range, the model's label, one accuracy in [0, 1]
// per time): IoError "WHERE..." naming what is wrong. Also how `mpirun aimc
// drift` hands a worker rank's repeat to rank 0.
DriftRepeat parse_drift_journal_line(const DriftRunId& id, const std::string& line, const std::string& where);

// The finished repeats in the journal at path, checked against the run id:
// UsageError naming the first option (or checkpoint, or the test set) that
// differs from the run that wrote it; IoError naming the line for a line
// that is not a valid repeat of that run (or a repeat given twice). A last
// line without its newline (a kill while it was written) is dropped and
// counted in dropped_partial_lines.
std::vector<DriftRepeat> read_drift_journal(const std::string& path, const DriftRunId& id,
                                            int& dropped_partial_lines);

}  // namespace aimc::cli
