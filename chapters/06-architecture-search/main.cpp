/// \page chapter06 Chapter 6: the minimal-architecture search
///
/// **Claim** (seed 000 section 5, appendix 7.3-7.4, Tables 3, 6, 7): with a
/// "good model" defined as reconstruction <= 120 and KL <= 10 after 1000
/// epochs (gray-level MNIST in BCE), no depth-2 model is good, and the binary
/// search of Algorithm 1 from [500, 500, 3] finds the minimal architecture
/// [324, 284, 3]; with d <= 5, reconstruction <= 115 and KL <= 11 (Table 6),
/// [400, 4]. Table 7 lists eleven structures' losses.
///
/// **Made robust to noise**: the seed's own log is not monotone (width 282
/// scored 141.4, width 283 124.7). The search runs twice: as the seed wrote it
/// (one probe decides) and noise-aware (a probe near a threshold is repeated
/// over several seeds and decided on the mean); the chapter counts how often
/// the monotonicity assumption fails in the fresh probes. Every probe is a
/// cached point (OUT/.points/06-architecture-search/), so repeated
/// architectures train once. The search itself (src/vaerepro/search.cpp) asks
/// an oracle:
/// \snippet 06-architecture-search/main.cpp oracle
///
/// Probes are independent runs. `make chapter-06-probes JOBS=N` trains them
/// as parallel jobs, in rounds of the probes that can train now (each Table 7
/// structure, the references, each search's next probe), and the chapter run
/// then assembles them; the searches' decisions are those of the sequential
/// algorithm:
/// \snippet 06-architecture-search/main.cpp parallel-probes
///
/// Results land in results/06-architecture-search/ (layout: chapters/README.md).

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/search.h"

using namespace vaerepro;

namespace {

// Seed 000 Table 7 (1000 epochs): the eleven structures.
const std::vector<std::vector<int64_t>> kTable7 = {
    {50, 4}, {500, 4}, {500, 3}, {500, 2}, {500, 500, 5}, {500, 500, 4}, {500, 500, 3}, {500, 500, 2},
    {500, 100, 5}, {500, 100, 50, 10, 5}, {500, 100, 50, 10, 2}};

/// The search's settings (the chapter's options that the flow reads).
struct SearchSettings {
  std::string thresholds, mode;
  int64_t repeats = 3;
  bool table7 = true;
  double samples = 0;
};

/// Thrown by the oracle while planning: the probe is not cached yet.
struct PendingProbe {};

/// The chapter's oracle: a probe trains `widths` for the budget with the
/// repeat-th seed and measures the reconstruction loss and KL on the whole
/// training set (seed 000 reads them off its training log). Every probe is a
/// cached point, keyed by the run's identity (device included) and its own
/// configuration. While planning, an uncached probe is recorded and
/// PendingProbe thrown instead of training it.
struct ProbeService {
  const ChapterRun& run;
  const SearchSettings& o;
  const TrainingFlags& training;
  const TensorData& data;
  int64_t total;
  PointStore store;
  bool planning = false;
  std::vector<std::string> pending;  ///< tokens, in the order first asked
  int trained = 0, reused = 0;

  nlohmann::json config(const std::vector<int64_t>& widths, int repeat) const {
    return {{"widths", widths}, {"repeat", repeat}, {"samples", total}, {"activation", training.activation},
            {"optimizer", training.optimizer}, {"lr", training.lr}, {"batch_size", training.batch_size},
            {"max_train", training.max_train}};
  }
  static std::string name(const std::vector<int64_t>& widths, int repeat) {
    return "probe-" + widths_to_string(widths) + "-r" + std::to_string(repeat);
  }

  // [oracle]
  ProbeMeasure train(const std::vector<int64_t>& widths, int repeat) {
    const auto cfg = config(widths, repeat);
    TrainOptions t;
    t.total_samples = total;
    t.batch_size = training.batch_size;
    t.label = run.info().program + " " + widths_to_string(widths) + " seed " + std::to_string(repeat);
    t.checkpoint = point_checkpoint(run.setup(), store, name(widths, repeat), cfg);  // a killed run resumes it
    const std::string staging = store.begin(name(widths, repeat), cfg);
    const Architecture arch{std::vector<int64_t>(widths.begin(), widths.end() - 1), widths.back()};
    auto [vae, result] = run.train_vae(name(widths, repeat),
                                       VaeOptions(data.dim(), arch).activation(parse_activation(training.activation)),
                                       {training.optimizer, training.lr, 0.0}, data, t);
    const auto& last = result.curve.back().train;
    ProbeMeasure m{-last.log_likelihood, last.kl, result.train_seconds + result.eval_seconds};
    store.commit(staging, name(widths, repeat), cfg,
                 {{"reconstruction", m.reconstruction}, {"kl", m.kl}, {"seconds", m.seconds},
                  {"test", result.curve.back().test.to_json()}, {"train_seconds", result.train_seconds},
                  {"samples_seen", result.samples_seen}, {"step", result.step}, {"device", run.identity().device}});
    remove_point_checkpoint(t.checkpoint);
    ++trained;
    std::cout << run.prefix() << widths_to_string(widths) << " (seed " << repeat << "): reconstruction "
              << m.reconstruction << ", KL " << m.kl << "\n";
    return m;
  }

  ProbeMeasure operator()(const std::vector<int64_t>& widths, int repeat) {
    // A finished probe is reused (--force: unless it finished before this run).
    if (auto p = reusable_point(run.setup(), store, name(widths, repeat), config(widths, repeat))) {
      ++reused;
      return {(*p)["reconstruction"].get<double>(), (*p)["kl"].get<double>(), (*p)["seconds"].get<double>()};
    }
    if (planning) {
      // A repeat is asked for only near a threshold, and then all of them
      // (search.h): they go into the same round.
      for (int r = repeat; r < (repeat == 0 ? 1 : o.repeats); ++r) {
        const auto token = probe_token(widths, r);
        if (r > repeat && reusable_point(run.setup(), store, name(widths, r), config(widths, r))) continue;
        if (std::find(pending.begin(), pending.end(), token) == pending.end()) pending.push_back(token);
      }
      throw PendingProbe{};
    }
    return train(widths, repeat);
  }
  // [oracle]
};

/// What the chapter's flow found; `complete` is false while planning found
/// probes still to train.
struct Findings {
  GoodModel good{120, 10}, good_eased{115, 11};  // seed 000 section 5.2, Table 6
  bool seed_thresholds = false;
  std::string threshold_note = "seed 000's thresholds";
  nlohmann::json table7 = nlohmann::json::array();
  nlohmann::json searches = nlohmann::json::array();
  std::vector<Probe> probes;
  bool complete = true;
};

/// The chapter's experiment, written once: Table 7, the thresholds, and the
/// searches in both modes. With a planning oracle it stops at the first
/// uncached probe of each independent part (each Table 7 structure, each
/// search), so the pending probes of one round can train at once.
Findings run_flow(ProbeService& probes, const SearchSettings& o, const std::vector<int64_t>& shallow,
                  const std::vector<int64_t>& deep, const std::vector<int64_t>& eased) {
  Findings f;
  const Oracle oracle = [&](const std::vector<int64_t>& w, int r) { return probes(w, r); };
  auto attempt = [&](const std::function<void()>& part) {
    try {
      part();
    } catch (const PendingProbe&) {
      f.complete = false;
    }
  };
  if (o.table7) {
    for (const auto& w : kTable7) {
      attempt([&] {
        const auto m = oracle(w, 0);
        f.table7.push_back({{"architecture", widths_to_string(w)}, {"reconstruction", m.reconstruction}, {"kl", m.kl},
                            {"elbo_loss", m.reconstruction + m.kl}, {"seconds", m.seconds}});
      });
    }
  }
  // Thresholds: the seed's, or scaled to this run's upper bounds as the
  // seed's were to its own ([500, 500, 3]: 115.5 / 9.1 -> 120 / 10;
  // [500, 4]: 114.0 / 10.2 -> 115 / 11).
  // On MNIST under gray-bce the seed's absolute thresholds apply to the same
  // data and losses, whatever the budget (a short budget then simply leaves
  // fewer structures under them, which the report says beside the budget).
  f.seed_thresholds = o.thresholds == "seed" ||
                      (o.thresholds == "auto" && probes.run.dataset_name() == "mnist" &&
                       probes.run.protocol() == Protocol::kGrayBce);
  if (f.seed_thresholds && o.samples < 6e7) {
    f.threshold_note += " (R <= 120, K <= 10; eased 115, 11), applied at " + format_sci(o.samples) +
                        " training samples per probe, " + format_fixed(o.samples / 6e7 * 100.0, 2) +
                        "% of the seed's 1000 epochs (6e7): losses are higher this early, so fewer structures "
                        "meet them than at the seed's budget";
  }
  if (!f.seed_thresholds) {
    bool known = true;
    ProbeMeasure ref, ref_eased;
    attempt([&] { ref = oracle(deep, 0); });
    attempt([&] { ref_eased = oracle(eased, 0); });
    known = f.complete;
    if (!known) return f;  // the searches depend on the thresholds
    f.good = {ref.reconstruction * 120.0 / 115.5, ref.kl * 10.0 / 9.1};
    f.good_eased = {ref_eased.reconstruction * 115.0 / 114.0, ref_eased.kl * 11.0 / 10.2};
    f.threshold_note = "relative thresholds, NOT comparable with the seed's: R and K scaled to this run's " +
                       widths_to_string(deep) + " (and, eased, " + widths_to_string(eased) +
                       ") as the seed's were to its own (120 / 115.5 and 10 / 9.1; eased 115 / 114.0 and 11 / 10.2)";
  }
  const std::vector<std::string> modes = o.mode == "both" ? std::vector<std::string>{"seed", "noise-aware"}
                                                          : std::vector<std::string>{o.mode};
  for (const auto& mode : modes) {
    for (const auto& [label, upper, g] : {std::tuple{"depth 2", shallow, f.good}, std::tuple{"depth 3", deep, f.good},
                                          std::tuple{"eased (Table 6)", eased, f.good_eased}}) {
      attempt([&, &label = label, &upper = upper, &g = g] {
        SearchOptions so;
        so.good = g;
        so.noise_aware = mode == "noise-aware";
        so.repeats = o.repeats;
        so.margin_reconstruction = 0.03 * g.max_reconstruction;  // within 3% of R
        so.margin_kl = 0.05 * g.max_kl;
        const auto r = minimal_architecture_search(oracle, upper, so);
        for (const auto& p : r.log) f.probes.push_back(p);
        auto j = r.to_json();
        j["mode"] = mode;
        j["search"] = label;
        j["upper"] = widths_to_string(upper);
        j["good"] = {{"max_reconstruction", g.max_reconstruction}, {"max_kl", g.max_kl}};
        f.searches.push_back(j);
        if (!probes.planning) std::cout << probes.run.prefix() << mode << ", " << label << ": " << r.outcome << "\n";
      });
    }
  }
  return f;
}

/// The verdicts: no depth-2 model is good, and the monotonicity assumption in the fresh probes.
nlohmann::json compute_checks(const Findings& f, int64_t pairs, int64_t violations) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& s : f.searches) {
    if (s["search"] == "depth 2") {
      checks.push_back({{"claim", "no depth-2 model is good (" + s["mode"].get<std::string>() + " mode)"},
                        {"criterion", "the depth-2 upper bound " + s["upper"].get<std::string>() + " is not a good model"},
                        {"holds", !s["found"].get<bool>()},
                        {"detail", s["outcome"].get<std::string>()}});
    }
  }
  checks.push_back({{"claim", "the monotonicity assumption (Assumption 5.1) holds in the fresh probes"},
                    {"criterion", "no pair of probes where the architecture that is smaller in every width reconstructs better"},
                    {"holds", violations == 0},
                    {"detail", std::to_string(violations) + " of " + std::to_string(pairs) + " comparable pairs violate it"}});
  return checks;
}

class ArchitectureSearch : public Chapter {
 public:
  ChapterInfo info() const override {
    return {"chapter-06", "06-architecture-search", "The minimal-architecture search (seed 000 section 5, Algorithm 1)",
            "mnist", Protocol::kGrayBce};
  }

  void declare(OptionTable& o) override {
    add_training_options(o, training_, true, 500, 100);  // seed 000's benchmark code: ReLU, Adagrad 1e-2
    o.add("upper-shallow", upper_shallow_, {"[16, 3]", "[500, 3]", "[500, 3]"},
          "depth-2 upper bound (seed 000 section 5.2: depth 2 first)");
    o.add("upper-deep", upper_deep_, {"[16, 16, 3]", "[500, 500, 3]", "[500, 500, 3]"},
          "depth-3 upper bound (seed 000 Table 3's start)");
    o.add("upper-eased", upper_eased_, {"[16, 4]", "[500, 4]", "[500, 4]"},
          "the eased search's upper bound (seed 000 Table 6's start, d <= 5)");
    o.add("thresholds", s_.thresholds, std::string("auto"),
          "seed (R = 120, K = 10; eased 115, 11) | relative (scaled to this run's upper bound, as the seed's were to "
          "its own) | auto (seed on MNIST under gray-bce, else relative)")
        .one_of({"seed", "relative", "auto"});
    o.add("mode", s_.mode, std::string("both"), "seed | noise-aware | both").one_of({"seed", "noise-aware", "both"});
    o.add("repeats", s_.repeats, int64_t{3}, "seeds for a probe near a threshold, noise-aware mode").range(2, 100);
    o.add("table7", table7_, {"false", "true", "true"}, "also train seed 000 Table 7's eleven structures (true | false)")
        .one_of({"true", "false"});
    // quick: two epochs, a reduced budget stated in the results; full: the seed's 1000 epochs.
    o.add("samples", s_.samples, {500.0, 1.2e5, 6e7}, "training samples per probe").range(1, 1e12).key("");
    o.flag("list-probes", list_probes_,
           "print the probes that can train now, independently of each other (lines 'pending-probe TOKEN'), and stop")
        .key("");
    o.add("only-probe", only_probe_, std::string(), "train one probe into the cache and stop, e.g. 500-500-3.r0 (for make -j)")
        .key("");
  }

  void validate() override {
    shallow_ = parse_search_widths(upper_shallow_, "upper-shallow");
    deep_ = parse_search_widths(upper_deep_, "upper-deep");
    eased_ = parse_search_widths(upper_eased_, "upper-eased");
    s_.table7 = table7_ == "true";
    if (list_probes_ && !only_probe_.empty()) throw UsageError("--list-probes and --only-probe exclude each other");
    if (!only_probe_.empty()) {
      probe_request_ = parse_probe_token(only_probe_);
      parse_search_widths(widths_to_string(probe_request_->first), "only-probe");  // h_{i+1} <= h_i
      require_range("only-probe's seed index", probe_request_->second, 0, static_cast<double>(s_.repeats - 1));
    }
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(training_.max_train, training_.max_test);
    const auto total = static_cast<int64_t>(std::llround(s_.samples));
    ProbeService probes{run, s_, training_, data, total, run.point_store()};
    // [parallel-probes]
    // `make chapter-06-probes JOBS=N` runs rounds: list the probes that can
    // train now (each Table 7 structure, the references, each search's next
    // probe), train them as parallel jobs, repeat until none is pending; the
    // chapter run then assembles them without training.
    if (list_probes_) {
      probes.planning = true;
      run_flow(probes, s_, shallow_, deep_, eased_);
      for (const auto& t : probes.pending) std::cout << "pending-probe " << t << "\n";
      return nullptr;
    }
    if (probe_request_) {
      const auto& [widths, repeat] = *probe_request_;
      probes(widths, repeat);
      std::cout << run.prefix() << "probe " << probe_token(widths, repeat) << " is in "
                << probes.store.dir(ProbeService::name(widths, repeat), probes.config(widths, repeat)) << "\n";
      return nullptr;
    }
    // [parallel-probes]
    auto& config = run.config();
    config["samples_per_probe"] = total;
    config["measured_on"] = "the whole training set at the end";
    run.begin(data.to_json(), "each probe sees " + std::to_string(total) + " training samples (seed 000: 1000 epochs, 6e7)");
    const Findings f = run_flow(probes, s_, shallow_, deep_, eased_);

    // The noise: how often does a smaller architecture reconstruct better?
    std::map<std::vector<int64_t>, Probe> unique;
    for (const auto& p : f.probes) unique.emplace(p.widths, p);
    std::vector<Probe> distinct;
    for (const auto& [w, p] : unique) distinct.push_back(p);
    const auto [pairs, violations] = monotonicity_violations(distinct);
    return {{"table7", f.table7},
            {"searches", f.searches},
            {"monotonicity", {{"pairs", pairs}, {"violations", violations}, {"probes", distinct.size()}}},
            {"probes_trained", probes.trained},
            {"probes_reused", probes.reused},
            {"thresholds", f.seed_thresholds ? "seed" : "relative"},
            {"good", {{"max_reconstruction", f.good.max_reconstruction}, {"max_kl", f.good.max_kl}}},
            {"good_eased", {{"max_reconstruction", f.good_eased.max_reconstruction}, {"max_kl", f.good_eased.max_kl}}},
            {"threshold_note", f.threshold_note},
            {"checks", compute_checks(f, pairs, violations)},
            {"checks_budget", {{"provisional", total < 6e7}, {"note", "seed 000: 1000 epochs per probe"}}}};
  }

 private:
  TrainingFlags training_{"relu", "adagrad", 0.01};
  SearchSettings s_;
  std::string upper_shallow_, upper_deep_, upper_eased_, table7_, only_probe_;
  bool list_probes_ = false;
  std::vector<int64_t> shallow_, deep_, eased_;
  std::optional<std::pair<std::vector<int64_t>, int>> probe_request_;
};

}  // namespace

int main(int argc, char** argv) { return chapter_main<ArchitectureSearch>(argc, argv); }
