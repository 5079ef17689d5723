#pragma once
/// \file sweep.h
/// A chapter's sweep as data (points.h), on the chapter runtime: each point
/// is trained once into the run's point store and reused after; a point can
/// train alone (`--only-point NAME`, for `make -j` or a scheduler), the
/// points still to train can be listed (`--list-points`), and a recorded run
/// assembles the points into its folder, training only what is missing.
///
/// \code
///   PointSweep sweep(run);
///   if (sweep.run_mode(modes_, points, "beta=1")) return nullptr;  // before begin()
///   run.begin(...);
///   for (const auto& p : points) metrics.push_back(sweep.assemble(p));
/// \endcode

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vaerepro/experiment.h"
#include "vaerepro/search.h"

namespace vaerepro {

/// The modes of a sweep chapter that record nothing.
struct PointModes {
  std::string only;   ///< --only-point: train this point into the store and stop
  bool list = false;  ///< --list-points: print the points not yet trained and stop
};

/// Declares --only-point (its help: `only_help`, e.g. "train one point and
/// stop: beta=B") and --list-points, neither recorded in the configuration
/// (they do not change what is trained), and that they exclude each other.
void declare_point_modes(OptionTable& options, PointModes& modes, const std::string& only_help);

/// The modes of a search chapter (search.h) that record nothing.
struct ProbeModes {
  bool list = false;  ///< --list-probes: print the probes that can train now and stop
  std::string only;   ///< --only-probe TOKEN: train this probe into the cache and stop
  std::optional<std::pair<std::vector<int64_t>, int>> request;  ///< `only`, parsed
};

/// Declares --list-probes and --only-probe (a probe_token, e.g. 500-500-3.r0,
/// whose widths must be a search's, h_{i+1} <= h_i, and whose seed index is
/// below `repeats`), neither recorded in the configuration, which exclude
/// each other.
void declare_probe_modes(OptionTable& options, ProbeModes& modes, const int64_t& repeats);

/// The modes before begin(): with modes.list, runs `plan` (the chapter's
/// flow over `rounds`, which plans meanwhile) and prints "pending-probe
/// TOKEN" for each probe that can train now; with modes.request, asks
/// `rounds` for that probe (training it unless cached) and prints where it
/// is in `probes`. True when a mode ran: the chapter returns then.
class ProbeSweep;
bool run_probe_mode(const ProbeModes& modes, ProbeRounds& rounds, const std::function<void()>& plan,
                    const ProbeSweep& probes);

/// Where a point being trained writes.
struct PointStaging {
  std::string dir;               ///< its staging folder: its files go here
  CheckpointOptions checkpoint;  ///< its training checkpoint (a killed run resumes from it)
};

/// One point: its name (its folder and its seed), its configuration (the
/// cache key, with the run's identity) and how it is trained.
struct SweepPoint {
  std::string name;
  nlohmann::json config;
  /// Trains the point, writes its files into the staging folder and returns
  /// its point.json.
  std::function<nlohmann::json(const PointStaging&)> train;
  std::vector<std::string> aliases;  ///< other names --only-point accepts ("beta=5")
};

/// The points of one chapter run, in its point store (ChapterRun::point_store).
class PointSweep {
 public:
  explicit PointSweep(ChapterRun& run);
  const PointStore& store() const { return store_; }
  /// "chapter-03: " for messages.
  std::string prefix() const { return run_.prefix(); }

  /// The finished point to reuse (reusable_point: --force retrains), or nothing.
  std::optional<nlohmann::json> reusable(const std::string& name,
                                         const nlohmann::json& config) const;
  /// The point's point.json: the cached one ("NAME: reusing DIR"), or trained
  /// now (resuming its checkpoint), committed into the store and read back.
  nlohmann::json obtain(const SweepPoint& point) const;
  /// obtain(), then the point's folder copied into the run's points/NAME
  /// (after begin()); the point.json returned has "dir" and "config_hash".
  nlohmann::json assemble(const SweepPoint& point) const;

  /// The modes before begin(): with modes.list, prints "pending-point NAME"
  /// for each point not yet reusable; with modes.only, trains the first point
  /// of that name (or alias) and says where it is, or throws UsageError
  /// (suggesting `example`). True when a mode ran: the chapter returns then.
  bool run_mode(const PointModes& modes, const std::vector<SweepPoint>& points,
                const std::string& example) const;

 private:
  ChapterRun& run_;
  PointStore store_;
};

/// The probes of a search (search.h) as sweep points: the probe of `widths`
/// with the repeat-th seed is the point "probe-WIDTHS-rREPEAT" whose
/// configuration is `config` with "widths" and "repeat", and whose point.json
/// carries its ProbeMeasure (ProbeMeasure::to_json) beside what else `train`
/// records.
class ProbeSweep {
 public:
  /// Trains the probe into its staging folder; returns its point.json.
  using Train = std::function<nlohmann::json(const std::vector<int64_t>& widths, int repeat,
                                             const PointStaging& staging)>;
  ProbeSweep(const PointSweep& sweep, nlohmann::json config, Train train)
      : sweep_(sweep), config_(std::move(config)), train_(std::move(train)) {}

  static std::string name(const std::vector<int64_t>& widths, int repeat);
  nlohmann::json config(const std::vector<int64_t>& widths, int repeat) const;
  /// The finished probe (--force: unless it finished before this run), or nothing.
  std::optional<ProbeMeasure> cached(const std::vector<int64_t>& widths, int repeat) const;
  /// Trains the probe (PointSweep::obtain) and says what it measured.
  ProbeMeasure train(const std::vector<int64_t>& widths, int repeat) const;
  /// Its folder in the point store.
  std::string dir(const std::vector<int64_t>& widths, int repeat) const;
  /// A ProbeRounds over these probes (this object must outlive it).
  ProbeRounds rounds(int repeats) const;
  std::string prefix() const { return sweep_.prefix(); }

 private:
  const PointSweep& sweep_;
  nlohmann::json config_;
  Train train_;
};

}  // namespace vaerepro
