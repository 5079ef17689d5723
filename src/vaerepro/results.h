#pragma once
/// \file results.h
/// Writing a run's results so that a killed or failed run never leaves
/// something that looks complete. The layout is documented in
/// chapters/README.md.
///
/// A chapter run writes into `results/.staging/SLUG-PID/`. On success,
/// `finish()` writes run.json with "status": "complete" last and renames the
/// staging folder to `results/SLUG/`; a previous complete result is swapped
/// out in one atomic step (renameat2 RENAME_EXCHANGE) and then deleted, so
/// `results/SLUG/` always holds one complete result. On failure, `fail()` moves it to
/// `results/SLUG.failed/` with "status": "failed" and the message. A run
/// killed outright leaves only its staging folder, which readers ignore.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro {

/// Writes `text` to `path` atomically (temporary file, fsync, rename, fsync
/// of the folder, so that it also survives a power loss). Throws
/// std::runtime_error naming the path and the system error on failure.
///
/// Fault injection (tests): when the environment variable
/// VAEREPRO_FAULT_WRITE holds a substring of `path` (and, if
/// VAEREPRO_FAULT_WRITE_CONTAINS is set, `text` contains it, or one of its
/// '|'-separated alternatives), the write
/// fails half-way (half the bytes written to the temporary file) as a real
/// I/O error (a full disk) would.
void write_file_atomic(const std::string& path, const std::string& text);

/// Fault injection (tests): when the environment variable
/// VAEREPRO_FAULT_KILL equals `name`, the process kills itself (SIGKILL)
/// here, as a power loss or `kill -9` at that moment would. Points: "swap"
/// (RunWriter, between the two steps of replacing a result).
void fault_point(const std::string& name);

/// Removes what killed processes left beside `path`: files or folders named
/// `path` + `marker` + PID (e.g. ".tmp." from write_file_atomic, ".staging-"
/// from PointStore) whose process no longer exists.
void remove_stale_leftovers(const std::string& path, const std::string& marker);

/// Formats a double for CSV/JSON with enough digits to round-trip.
std::string format_number(double v);

/// Provenance of a run: who made it, with what, when.
struct Provenance {
  std::string git_commit;  ///< "abc1234" (+ "-dirty" when the tree had changes)
  std::string date_utc;    ///< ISO 8601 start time
  std::string host;
  std::string command_line;
  nlohmann::json to_json() const;
};

/// Collects the provenance of this process (git of the source tree, time,
/// host, argv).
Provenance collect_provenance(int argc, char** argv);

/// One run's output folder, staged until finished.
class RunWriter {
 public:
  /// Creates results_root/.staging/SLUG-PID/ and writes a run.json with
  /// "status": "running". Staging folders of this slug left by processes
  /// that no longer exist (killed runs) are removed first. Throws std::runtime_error when the
  /// folder cannot be created or written (naming it).
  RunWriter(std::string results_root, std::string slug);
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  /// Absolute path of `relative` inside the staging folder (parents created).
  std::string path(const std::string& relative) const;
  void write_json(const std::string& relative, const nlohmann::json& j) const;
  /// A CSV with a header row; every row must have as many cells as the header.
  void write_csv(const std::string& relative, const std::vector<std::string>& header,
                 const std::vector<std::vector<double>>& rows) const;

  /// Marks the run complete (run.json last) and moves it to results/SLUG/.
  /// Returns the final folder.
  std::string finish(nlohmann::json run);
  /// Marks the run failed with `message` and moves it to results/SLUG.failed/.
  std::string fail(nlohmann::json run, const std::string& message);
  /// Removes the staging folder: the run is neither complete nor failed
  /// (interrupted to be resumed, or nothing to do).
  void abandon();

  const std::string& staging_dir() const { return staging_; }
  const std::string& final_dir() const { return final_; }

 private:
  std::string move_to(const std::string& target);
  std::string root_;
  std::string slug_;
  std::string staging_;
  std::string final_;
  bool done_ = false;
};

}  // namespace vaerepro
