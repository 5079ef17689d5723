#pragma once
/// \file time_ledger.h
/// Where a run's time goes: the process's wall time split by stage
/// ("training", "whole-set evaluation", "log p(x) estimates", "HMC",
/// "figures", ...), so a chapter's run.json and the report say what a
/// profile spends its minutes on (README, "What the profiles cost").
///
/// Stages nest and are exclusive: while a stage runs inside another (the
/// whole-set evaluations inside training), only the inner one is charged.
/// Time outside every stage is the run's "other" (data, set-up, writing).
///
/// The ledger is one per process on purpose, like a profiler's counters: the
/// library's loops and estimators charge it where they run, and the chapter
/// runtime reads it once at the end, so no chapter threads a clock through
/// its calls. Stages are entered from the thread that drives the run (the
/// intra-op threads never touch it); a stage entered from another thread is
/// not charged.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro {

class TimeLedger {
 public:
  using Clock = std::chrono::steady_clock;

  /// The process's ledger.
  static TimeLedger& process();

  /// Enters `stage` (charging the time so far to the stage it interrupts).
  void enter(const std::string& stage, Clock::time_point now = Clock::now());
  /// Leaves the innermost stage (resuming the one it interrupted).
  void leave(Clock::time_point now = Clock::now());

  /// Seconds charged to `stage` so far (the running stage included up to `now`).
  double seconds(const std::string& stage, Clock::time_point now = Clock::now()) const;

  /// {"stage": seconds, ...} for every stage entered (the running one
  /// counted up to `now`).
  nlohmann::json to_json(Clock::time_point now = Clock::now()) const;

  /// Whether the calling thread charges this ledger: the first thread that
  /// asks after construction or reset() does, every other does not.
  bool claim();

  /// Forgets everything (tests; a `--seeds` run starts each seed afresh).
  void reset();

 private:
  struct Entry {
    std::string stage;
    double seconds = 0;
  };
  Entry& entry(const std::string& stage);
  void charge(Clock::time_point now);

  std::vector<Entry> entries_;  // first-entered order
  std::vector<size_t> stack_;   // indices into entries_
  Clock::time_point since_{};   // when the top of the stack was last charged
  std::thread::id owner_{};
  bool has_owner_ = false;
};

/// Charges its lifetime to `stage` in the process's ledger.
class StageTimer {
 public:
  explicit StageTimer(const std::string& stage);
  ~StageTimer();
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  bool active_;
};

/// The stage names the library charges (so the report reads the same words).
namespace stage {
inline constexpr const char* kTraining = "training";
inline constexpr const char* kEvaluation = "whole-set evaluations";
inline constexpr const char* kLogMarginal = "log p(x) estimates";
inline constexpr const char* kHmc = "HMC";
inline constexpr const char* kSampling = "sampling (the prior)";
inline constexpr const char* kFigures = "figures";
}  // namespace stage

}  // namespace vaerepro
