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
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro {

/// What one training run of an architecture measured.
struct ProbeMeasure {
  double reconstruction = 0;  ///< loss after the budget (seed: gray-level BCE)
  double kl = 0;
  double seconds = 0;
};

/// Trains (or looks up) `widths` with the `repeat`-th seed.
using Oracle = std::function<ProbeMeasure(const std::vector<int64_t>& widths, int repeat)>;

/// Definition 5.1's "good model": reconstruction <= R and KL <= K.
struct GoodModel {
  double max_reconstruction = 120;  ///< seed 000 section 5.1
  double max_kl = 10;
};

struct SearchOptions {
  GoodModel good;
  bool noise_aware = false;
  int repeats = 3;                ///< seeds for a probe near a threshold (noise-aware mode)
  double margin_reconstruction = 3;  ///< "near": within this of R ...
  double margin_kl = 0.5;            ///< ... or of K
};

/// One probe of the search log (seed 000 Table 3).
struct Probe {
  std::vector<int64_t> widths;
  double reconstruction = 0, kl = 0;  ///< the mean over repeats
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
