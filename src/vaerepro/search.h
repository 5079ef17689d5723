#pragma once
/// \file search.h
/// Seed 000's minimal-architecture search (section 5, Definitions 4.1 and
/// 5.1, Algorithm 1), against an oracle interface so that the search is
/// tested without training, in two modes: the seed's exact algorithm (one
/// probe decides) and a noise-aware one (probes near a threshold are repeated
/// over several seeds and decided on the mean).
///
/// Widths follow Definition 4.1: `[h1, ..., hn]`, hn the latent size.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro {

/// What one training run of an architecture measured.
struct ProbeMeasure {
  double reconstruction = 0;  ///< loss after the budget (seed: gray-level BCE)
  double kl = 0;
  double seconds = 0;
  /// {"reconstruction", "kl", "seconds"}, as a cached probe stores it.
  nlohmann::json to_json() const;
  /// The inverse of to_json (other keys ignored; doubles round-trip).
  static ProbeMeasure from_json(const nlohmann::json& j);
};

/// Trains (or looks up) `widths` with the `repeat`-th seed.
using Oracle = std::function<ProbeMeasure(const std::vector<int64_t>& widths, int repeat)>;

/// Definition 5.1's "good model": reconstruction <= R and KL <= K.
struct GoodModel {
  double max_reconstruction = 120;  ///< seed 000 section 5.1
  double max_kl = 10;
  /// {"max_reconstruction", "max_kl"}.
  nlohmann::json to_json() const;
};

struct SearchOptions {
  GoodModel good;
  bool noise_aware = false;
  int repeats = 3;                   ///< seeds for a probe near a threshold (noise-aware mode)
  double margin_reconstruction = 3;  ///< "near": within this of R ...
  double margin_kl = 0.5;            ///< ... or of K
};

/// One probe of the search log (seed 000 Table 3).
struct Probe {
  std::vector<int64_t> widths;
  double reconstruction = 0, kl = 0;        ///< the mean over repeats
  double reconstruction_se = 0, kl_se = 0;  ///< standard errors (0 for one run)
  int repeats = 1;
  bool good = false;
  double seconds = 0;
  std::string note;  ///< e.g. "repeated: near the threshold"
  nlohmann::json to_json() const;
};

struct SearchResult {
  std::vector<Probe> log;
  bool found = false;
  std::vector<int64_t> widths;  ///< the minimal architecture (when found)
  std::string outcome;          ///< in words
  nlohmann::json to_json() const;
};

/// Algorithm 1 for a fixed depth: given an upper bound m (checked first: if
/// it is not good, there is nothing to search), h_n = Binary_search(1, m_n),
/// then for i = n-1 .. 1, h_i = Binary_search(h_{i+1}, m_i), each probe with
/// the widths found so far and the upper bound elsewhere. The constraint
/// h_{i+1} <= h_i of Assumption 5.1 is the lower end of each search.
SearchResult minimal_architecture_search(const Oracle& oracle, const std::vector<int64_t>& upper,
                                         const SearchOptions& options);

/// Among probes of equal depth, the pairs where one architecture is at most
/// the other in every width (and differs): Assumption 5.1 says the smaller has
/// the larger reconstruction loss. Returns {pairs compared, pairs violating}.
std::pair<int, int> monotonicity_violations(const std::vector<Probe>& probes);

/// The probes of `probes` with distinct widths (the first of each), ordered by
/// widths: what monotonicity_violations compares when searches share probes.
std::vector<Probe> distinct_probes(const std::vector<Probe>& probes);

/// Thresholds relative to a run's own reference model, scaled as the paper's
/// were to its own: R = run_ref.R * paper.R / paper_ref.R, likewise K (seed
/// 000: [500, 500, 3] measured 115.5 / 9.1 under R = 120, K = 10).
GoodModel relative_good_model(const ProbeMeasure& run_ref, const GoodModel& paper,
                              const ProbeMeasure& paper_ref);

/// Thrown by a planning ProbeRounds: the probe asked for is not cached yet.
struct PendingProbe {};

/// An oracle over a cache of probes that plans as well as trains, so that
/// the probes of a sequential search can train as parallel jobs in rounds:
/// while `planning`, a probe not in the cache is recorded as pending and
/// PendingProbe thrown instead of training it; the flow that asked stops
/// there (attempt()), the other independent parts go on. Repeats are asked
/// for only near a threshold, and then all of them (minimal_architecture_search
/// asks r = 1, ..., repeats - 1 after r = 0), so a pending repeat brings the
/// uncached repeats after it into the same round.
class ProbeRounds {
 public:
  using Lookup =
      std::function<std::optional<ProbeMeasure>(const std::vector<int64_t>& widths, int repeat)>;
  /// `cached`: the finished probe, or nothing (no side effects); `train`:
  /// trains it (into the cache); `repeats`: SearchOptions::repeats.
  ProbeRounds(Lookup cached, Oracle train, int repeats)
      : cached_(std::move(cached)), train_(std::move(train)), repeats_(repeats) {}

  bool planning = false;
  ProbeMeasure operator()(const std::vector<int64_t>& widths, int repeat);
  /// This object as an Oracle (it must outlive the oracle).
  Oracle oracle() {
    return [this](const std::vector<int64_t>& w, int r) { return (*this)(w, r); };
  }
  /// probe_token()s of the pending probes, in the order first asked.
  const std::vector<std::string>& pending() const { return pending_; }
  int trained() const { return trained_; }  ///< probes trained
  int reused() const { return reused_; }    ///< answers from the cache (every ask counts)

 private:
  Lookup cached_;
  Oracle train_;
  int repeats_;
  std::vector<std::string> pending_;
  int trained_ = 0, reused_ = 0;
};

/// Runs `part` of a flow over a planning ProbeRounds: false when it stopped
/// at a pending probe (PendingProbe), true when it ran through.
bool attempt(const std::function<void()>& part);

std::string widths_to_string(const std::vector<int64_t>& widths);

/// An upper bound given on the command line ("[500, 500, 3]") as widths
/// h_1 >= ... >= h_d (seed 000 Assumption 5.1). Throws UsageError naming `option`.
std::vector<int64_t> parse_search_widths(const std::string& text, const std::string& option);

/// A probe's name on the command line and in `make` targets: "500-500-3.r0"
/// (the widths, then the index of its seed).
std::string probe_token(const std::vector<int64_t>& widths, int repeat);
/// The inverse of probe_token; a UsageError for --only-probe says how to write one.
std::pair<std::vector<int64_t>, int> parse_probe_token(const std::string& token);

}  // namespace vaerepro
