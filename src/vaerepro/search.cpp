#include "vaerepro/search.h"

#include <stdexcept>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "vaerepro/cli.h"
#include "vaerepro/models.h"
#include "vaerepro/schema/metrics.h"

namespace vaerepro {

std::string widths_to_string(const std::vector<int64_t>& widths) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < widths.size(); ++i) os << (i ? ", " : "") << widths[i];
  os << ']';
  return os.str();
}

nlohmann::json Probe::to_json() const {
  namespace k = schema::key;
  namespace c6 = schema::ch06;
  return {{k::kArchitecture, widths_to_string(widths)},
          {"widths", widths},
          {c6::kReconstruction, reconstruction},
          {k::kKl, kl},
          {c6::kReconstructionSe, reconstruction_se},
          {c6::kKlSe, kl_se},
          {c6::kRepeats, repeats},
          {c6::kGood, good},
          {c6::kSeconds, seconds},
          {c6::kNote, note}};
}

nlohmann::json SearchResult::to_json() const {
  nlohmann::json probes = nlohmann::json::array();
  for (const auto& p : log) probes.push_back(p.to_json());
  namespace c6 = schema::ch06;
  return {{c6::kLog, probes},
          {c6::kFound, found},
          {"widths", widths},
          {schema::key::kArchitecture, found ? widths_to_string(widths) : std::string()},
          {c6::kOutcome, outcome}};
}

namespace {

class Searcher {
 public:
  Searcher(const Oracle& oracle, const SearchOptions& o) : oracle_(oracle), o_(o) {}

  /// Is `w` good? Probes it (once, or repeatedly near a threshold), logs it.
  bool good(const std::vector<int64_t>& w) {
    Probe p;
    p.widths = w;
    std::vector<ProbeMeasure> runs = {oracle_(w, 0)};
    const bool near =
        std::abs(runs[0].reconstruction - o_.good.max_reconstruction) < o_.margin_reconstruction ||
        std::abs(runs[0].kl - o_.good.max_kl) < o_.margin_kl;
    if (o_.noise_aware && near) {
      for (int r = 1; r < o_.repeats; ++r) runs.push_back(oracle_(w, r));
      p.note = "repeated over " + std::to_string(o_.repeats) +
               " seeds: near a threshold; decided on the mean";
    }
    double sr = 0, sk = 0, qr = 0, qk = 0;
    for (const auto& m : runs) {
      sr += m.reconstruction;
      sk += m.kl;
      qr += m.reconstruction * m.reconstruction;
      qk += m.kl * m.kl;
      p.seconds += m.seconds;
    }
    const double n = static_cast<double>(runs.size());
    p.repeats = static_cast<int>(runs.size());
    p.reconstruction = sr / n;
    p.kl = sk / n;
    if (n > 1) {
      p.reconstruction_se =
          std::sqrt(std::max(0.0, (qr - n * p.reconstruction * p.reconstruction) / (n - 1)) / n);
      p.kl_se = std::sqrt(std::max(0.0, (qk - n * p.kl * p.kl) / (n - 1)) / n);
    }
    p.good = p.reconstruction <= o_.good.max_reconstruction && p.kl <= o_.good.max_kl;
    log_.push_back(p);
    return p.good;
  }

  /// Seed 000's Binary_search(left, right, H, i): the smallest width at index
  /// i that is good, assuming monotonicity; `fallback` when none is.
  int64_t binary_search(int64_t left, int64_t right, std::vector<int64_t> h, size_t i,
                        int64_t fallback) {
    int64_t ans = fallback;
    while (left <= right) {
      const int64_t mid = (left + right) / 2;
      h[i] = mid;
      if (good(h)) {
        right = mid - 1;
        ans = mid;
      } else {
        left = mid + 1;
      }
    }
    return ans;
  }

  std::vector<Probe> log_;

 private:
  const Oracle& oracle_;
  const SearchOptions& o_;
};

}  // namespace

SearchResult minimal_architecture_search(const Oracle& oracle, const std::vector<int64_t>& upper,
                                         const SearchOptions& options) {
  SearchResult r;
  if (upper.empty()) throw std::invalid_argument("the upper bound needs at least the latent size");
  for (size_t i = 0; i + 1 < upper.size(); ++i) {
    if (upper[i + 1] > upper[i]) {
      throw std::invalid_argument("the upper bound " + widths_to_string(upper) +
                                  " breaks h_{i+1} <= h_i (seed 000 Assumption 5.1)");
    }
  }
  Searcher s(oracle, options);
  if (!s.good(upper)) {
    r.log = s.log_;
    r.outcome =
        "the upper bound " + widths_to_string(upper) +
        " is not a good model, so (by monotonicity) no architecture below it at this depth is";
    return r;
  }
  std::vector<int64_t> h = upper;
  const size_t n = h.size();
  h[n - 1] = s.binary_search(1, upper[n - 1], h, n - 1, upper[n - 1]);
  for (size_t k = n - 1; k-- > 0;) h[k] = s.binary_search(h[k + 1], upper[k], h, k, upper[k]);
  r.log = s.log_;
  r.found = true;
  r.widths = h;
  r.outcome = "minimal architecture " + widths_to_string(h) + " after " +
              std::to_string(r.log.size()) + " probes";
  return r;
}

nlohmann::json GoodModel::to_json() const {
  return {{schema::ch06::kMaxReconstruction, max_reconstruction}, {schema::ch06::kMaxKl, max_kl}};
}

nlohmann::json ProbeMeasure::to_json() const {
  return {{"reconstruction", reconstruction}, {"kl", kl}, {"seconds", seconds}};
}

ProbeMeasure ProbeMeasure::from_json(const nlohmann::json& j) {
  return {j.at("reconstruction").get<double>(), j.at("kl").get<double>(),
          j.at("seconds").get<double>()};
}

std::vector<Probe> distinct_probes(const std::vector<Probe>& probes) {
  std::map<std::vector<int64_t>, Probe> unique;
  for (const auto& p : probes) unique.emplace(p.widths, p);
  std::vector<Probe> out;
  for (const auto& [w, p] : unique) out.push_back(p);
  return out;
}

GoodModel relative_good_model(const ProbeMeasure& run_ref, const GoodModel& paper,
                              const ProbeMeasure& paper_ref) {
  return {run_ref.reconstruction * paper.max_reconstruction / paper_ref.reconstruction,
          run_ref.kl * paper.max_kl / paper_ref.kl};
}

ProbeMeasure ProbeRounds::operator()(const std::vector<int64_t>& widths, int repeat) {
  if (auto m = cached_(widths, repeat)) {
    ++reused_;
    return *m;
  }
  if (planning) {
    for (int r = repeat; r < (repeat == 0 ? 1 : repeats_); ++r) {
      if (r > repeat && cached_(widths, r)) continue;
      const auto token = probe_token(widths, r);
      if (std::find(pending_.begin(), pending_.end(), token) == pending_.end()) {
        pending_.push_back(token);
      }
    }
    throw PendingProbe{};
  }
  ++trained_;
  return train_(widths, repeat);
}

bool attempt(const std::function<void()>& part) {
  try {
    part();
    return true;
  } catch (const PendingProbe&) {
    return false;
  }
}

std::pair<int, int> monotonicity_violations(const std::vector<Probe>& probes) {
  int pairs = 0, bad = 0;
  for (size_t a = 0; a < probes.size(); ++a) {
    for (size_t b = 0; b < probes.size(); ++b) {
      const auto& x = probes[a].widths;
      const auto& y = probes[b].widths;
      if (a == b || x.size() != y.size() || x == y) continue;
      bool le = true;
      for (size_t i = 0; i < x.size(); ++i) le = le && x[i] <= y[i];
      if (!le) continue;
      ++pairs;  // x is smaller: its reconstruction loss should be at least y's
      if (probes[a].reconstruction < probes[b].reconstruction) ++bad;
    }
  }
  return {pairs, bad};
}

std::vector<int64_t> parse_search_widths(const std::string& text, const std::string& option) {
  try {
    const auto a = parse_architecture(text);
    auto w = a.hidden;
    w.push_back(a.latent);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i + 1] > w[i]) {
        throw std::invalid_argument("'" + text +
                                    "' breaks h_{i+1} <= h_i (seed 000 Assumption 5.1)");
      }
    }
    return w;
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + option + ": " + e.what());
  }
}

std::string probe_token(const std::vector<int64_t>& widths, int repeat) {
  std::string t;
  for (size_t i = 0; i < widths.size(); ++i) t += (i ? "-" : "") + std::to_string(widths[i]);
  return t + ".r" + std::to_string(repeat);
}

std::pair<std::vector<int64_t>, int> parse_probe_token(const std::string& token) {
  const auto dot = token.rfind(".r");
  std::vector<int64_t> widths;
  int repeat = -1;
  try {
    if (dot == std::string::npos) throw std::invalid_argument("no .rR");
    std::stringstream ws(token.substr(0, dot));
    for (std::string w; std::getline(ws, w, '-');) {
      size_t used = 0;
      widths.push_back(std::stoll(w, &used));
      if (used != w.size() || widths.back() < 1) throw std::invalid_argument("width");
    }
    size_t used = 0;
    repeat = std::stoi(token.substr(dot + 2), &used);
    if (used != token.size() - dot - 2 || repeat < 0 || widths.empty())
      throw std::invalid_argument("repeat");
  } catch (const std::exception&) {
    throw UsageError("--only-probe '" + token +
                     "' is not a probe: write the widths joined by '-' and the seed "
                     "index, e.g. 500-500-3.r0 (chapter-06 --list-probes prints the ones pending)");
  }
  return {widths, repeat};
}

}  // namespace vaerepro
