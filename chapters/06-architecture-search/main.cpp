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

#include <cmath>
#include <iostream>
#include <optional>

#include "vaerepro/experiment.h"
#include "vaerepro/format.h"
#include "vaerepro/search.h"
#include "vaerepro/sweep.h"

using namespace vaerepro;

namespace {

// Seed 000 Table 7 (1000 epochs): the eleven structures.
// clang-format off
const std::vector<std::vector<int64_t>> kTable7 = {
    {50, 4}, {500, 4}, {500, 3}, {500, 2}, {500, 500, 5}, {500, 500, 4}, {500, 500, 3},
    {500, 500, 2}, {500, 100, 5}, {500, 100, 50, 10, 5}, {500, 100, 50, 10, 2}};
// clang-format on

// Seed 000's good model (section 5.2: R <= 120, K <= 10; eased, Table 6: 115, 11) and
// the upper bounds' own losses it was set against ([500, 500, 3]: 115.5 / 9.1;
// [500, 4]: 114.0 / 10.2), for thresholds relative to this run's.
const GoodModel kSeedGood{120, 10}, kSeedGoodEased{115, 11};
const ProbeMeasure kSeedReference{115.5, 9.1}, kSeedReferenceEased{114.0, 10.2};

/// The search's settings (the chapter's options that the flow reads).
struct SearchSettings {
  std::string thresholds, mode;
  int64_t repeats = 3;
  bool table7 = true;
  double samples = 0;
};

// [oracle]
/// A probe trains `widths` for the budget with the repeat-th seed and
/// measures the reconstruction loss and KL on the whole training set (seed
/// 000 reads them off its training log). Every probe is a sweep point
/// (sweep.h: ProbeSweep), keyed by the run's identity (device included) and
/// its own configuration, so repeated architectures train once.
nlohmann::json train_probe(const ChapterRun& run, const TrainingFlags& training,
                           const TensorData& data, int64_t total,
                           const std::vector<int64_t>& widths, int repeat,
                           const PointStaging& staging) {
  TrainOptions t = training_schedule(total, training.batch_size, 0);  // measured at the end
  t.label = run.info().program + " " + widths_to_string(widths) + " seed " + std::to_string(repeat);
  t.checkpoint = staging.checkpoint;  // a killed run resumes it
  const Architecture arch{std::vector<int64_t>(widths.begin(), widths.end() - 1), widths.back()};
  const auto model = VaeOptions(data.dim(), arch).activation(parse_activation(training.activation));
  auto [vae, result] = run.train_vae(ProbeSweep::name(widths, repeat), model,
                                     {training.optimizer, training.lr, 0.0}, data, t);
  const auto& last = result.curve.back();
  nlohmann::json point = ProbeMeasure{-last.train.log_likelihood, last.train.kl,
                                      result.train_seconds + result.eval_seconds}
                             .to_json();
  point.update({{"test", last.test.to_json()},
                {"train_seconds", result.train_seconds},
                {"samples_seen", result.samples_seen},
                {"step", result.step},
                {"device", run.identity().device}});
  return point;
}
// [oracle]

/// What the chapter's flow found; `complete` is false while planning found
/// probes still to train.
struct Findings {
  GoodModel good = kSeedGood, good_eased = kSeedGoodEased;
  bool seed_thresholds = false;
  std::string threshold_note = "seed 000's thresholds";
  nlohmann::json table7 = nlohmann::json::array();
  nlohmann::json searches = nlohmann::json::array();
  std::vector<Probe> probes;
  bool complete = true;
};

/// The chapter's experiment, written once: Table 7, the thresholds, and the
/// searches in both modes. While `probes` plans, it stops at the first
/// uncached probe of each independent part (each Table 7 structure, each
/// search), so the pending probes of one round can train at once.
Findings run_flow(ProbeRounds& probes, const ChapterRun& run, const SearchSettings& o,
                  const std::vector<int64_t>& shallow, const std::vector<int64_t>& deep,
                  const std::vector<int64_t>& eased) {
  Findings f;
  const Oracle oracle = probes.oracle();
  auto part = [&](const std::function<void()>& p) {
    if (!attempt(p)) f.complete = false;
  };
  namespace c6 = schema::ch06;
  for (const auto& w : o.table7 ? kTable7 : std::vector<std::vector<int64_t>>{}) {
    part([&] {
      const auto m = oracle(w, 0);
      f.table7.push_back({{schema::key::kArchitecture, widths_to_string(w)},
                          {c6::kReconstruction, m.reconstruction},
                          {schema::key::kKl, m.kl},
                          {c6::kElboLoss, m.reconstruction + m.kl},
                          {c6::kSeconds, m.seconds}});
    });
  }
  // Thresholds: the seed's, or scaled to this run's upper bounds as the
  // seed's were to its own. On MNIST under gray-bce the seed's absolute
  // thresholds apply to the same data and losses, whatever the budget (a
  // short budget then simply leaves fewer structures under them, which the
  // report says beside the budget).
  f.seed_thresholds =
      o.thresholds == "seed" || (o.thresholds == "auto" && run.dataset_name() == "mnist" &&
                                 run.protocol() == Protocol::kGrayBce);
  if (f.seed_thresholds && o.samples < 6e7) {
    f.threshold_note += " (R <= 120, K <= 10; eased 115, 11), applied at " + format_sci(o.samples) +
                        " training samples per probe, " + format_fixed(o.samples / 6e7 * 100.0, 2) +
                        "% of the seed's 1000 epochs (6e7): losses are higher this early, so fewer "
                        "structures meet them than at the seed's budget";
  }
  if (!f.seed_thresholds) {
    ProbeMeasure ref, ref_eased;
    part([&] { ref = oracle(deep, 0); });
    part([&] { ref_eased = oracle(eased, 0); });
    if (!f.complete) return f;  // the searches depend on the thresholds
    f.good = relative_good_model(ref, kSeedGood, kSeedReference);
    f.good_eased = relative_good_model(ref_eased, kSeedGoodEased, kSeedReferenceEased);
    f.threshold_note =
        "relative thresholds, NOT comparable with the seed's: R and K scaled to this run's " +
        widths_to_string(deep) + " (and, eased, " + widths_to_string(eased) +
        ") as the seed's were to its own (120 / 115.5 and 10 / 9.1; eased 115 / 114.0 "
        "and 11 / 10.2)";
  }
  const std::vector<std::string> modes = o.mode == "both"
                                             ? std::vector<std::string>{"seed", "noise-aware"}
                                             : std::vector<std::string>{o.mode};
  for (const auto& mode : modes) {
    for (const auto& [label, upper, g] :
         {std::tuple{"depth 2", shallow, f.good}, std::tuple{"depth 3", deep, f.good},
          std::tuple{"eased (Table 6)", eased, f.good_eased}}) {
      part([&, &label = label, &upper = upper, &g = g] {
        SearchOptions so;
        so.good = g;
        so.noise_aware = mode == "noise-aware";
        so.repeats = o.repeats;
        so.margin_reconstruction = 0.03 * g.max_reconstruction;  // within 3% of R
        so.margin_kl = 0.05 * g.max_kl;
        const auto r = minimal_architecture_search(oracle, upper, so);
        f.probes.insert(f.probes.end(), r.log.begin(), r.log.end());
        auto j = r.to_json();
        j[c6::kMode] = mode;
        j[c6::kSearch] = label;
        j[c6::kUpper] = widths_to_string(upper);
        j[c6::kGood] = g.to_json();
        f.searches.push_back(j);
        if (!probes.planning)
          std::cout << run.prefix() << mode << ", " << label << ": " << r.outcome << "\n";
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
      checks.push_back(schema::Check{
          "no depth-2 model is good (" + s["mode"].get<std::string>() + " mode)",
          "the depth-2 upper bound " + s["upper"].get<std::string>() + " is not a good model",
          !s["found"].get<bool>(), s["outcome"].get<std::string>()});
    }
  }
  checks.push_back(schema::Check{
      "the monotonicity assumption (Assumption 5.1) holds in the fresh probes",
      "no pair of probes where the architecture that is smaller in every width reconstructs better",
      violations == 0,
      std::to_string(violations) + " of " + std::to_string(pairs) +
          " comparable pairs violate it"});
  return checks;
}

class ArchitectureSearch : public Chapter {
 public:
  ChapterInfo info() const override {
    return {"chapter-06", "06-architecture-search",
            "The minimal-architecture search (seed 000 section 5, Algorithm 1)", "mnist",
            Protocol::kGrayBce};
  }

  void declare(OptionTable& o) override {
    // Seed 000's benchmark code: ReLU, Adagrad 1e-2.
    add_training_options(o, training_, true, 500, 100);
    o.add("upper-shallow", upper_shallow_, {"[16, 3]", "[500, 3]", "[500, 3]"},
          "depth-2 upper bound (seed 000 section 5.2: depth 2 first)");
    o.add("upper-deep", upper_deep_, {"[16, 16, 3]", "[500, 500, 3]", "[500, 500, 3]"},
          "depth-3 upper bound (seed 000 Table 3's start)");
    o.add("upper-eased", upper_eased_, {"[16, 4]", "[500, 4]", "[500, 4]"},
          "the eased search's upper bound (seed 000 Table 6's start, d <= 5)");
    o.add("thresholds", s_.thresholds, std::string("auto"),
          "seed (R = 120, K = 10; eased 115, 11) | relative (scaled to this run's upper bound, as "
          "the seed's were to its own) | auto (seed on MNIST under gray-bce, else relative)")
        .one_of({"seed", "relative", "auto"});
    o.add("mode", s_.mode, std::string("both"), "seed | noise-aware | both")
        .one_of({"seed", "noise-aware", "both"});
    o.add("repeats", s_.repeats, int64_t{3}, "seeds for a probe near a threshold, noise-aware mode")
        .range(2, 100);
    o.add("table7", table7_, {"false", "true", "true"},
          "also train seed 000 Table 7's eleven structures (true | false)")
        .one_of({"true", "false"});
    // quick: two epochs, a reduced budget stated in the results; full: the seed's 1000 epochs.
    o.add("samples", s_.samples, {500.0, 1.2e5, 6e7}, "training samples per probe")
        .range(1, 1e12)
        .key("");
    declare_probe_modes(o, modes_, s_.repeats);
  }

  void validate() override {
    shallow_ = parse_search_widths(upper_shallow_, "upper-shallow");
    deep_ = parse_search_widths(upper_deep_, "upper-deep");
    eased_ = parse_search_widths(upper_eased_, "upper-eased");
    s_.table7 = table7_ == "true";
  }

  nlohmann::json run(ChapterRun& run) override {
    const TensorData data = run.tensors(training_.max_train, training_.max_test);
    const auto total = static_cast<int64_t>(std::llround(s_.samples));
    const PointSweep sweep(run);
    const ProbeSweep probes(sweep,
                            {{"samples", total},
                             {"activation", training_.activation},
                             {"optimizer", training_.optimizer},
                             {"lr", training_.lr},
                             {"batch_size", training_.batch_size},
                             {"max_train", training_.max_train}},
                            [&](const std::vector<int64_t>& w, int r, const PointStaging& s) {
                              return train_probe(run, training_, data, total, w, r, s);
                            });
    ProbeRounds rounds = probes.rounds(static_cast<int>(s_.repeats));
    // [parallel-probes]
    // `make chapter-06-probes JOBS=N` runs rounds: list the probes that can
    // train now (each Table 7 structure, the references, each search's next
    // probe), train them as parallel jobs, repeat until none is pending; the
    // chapter run then assembles them without training.
    auto flow = [&] { return run_flow(rounds, run, s_, shallow_, deep_, eased_); };
    if (run_probe_mode(modes_, rounds, flow, probes)) return nullptr;
    // [parallel-probes]
    auto& config = run.config();
    config[schema::ch06::kConfigSamplesPerProbe] = total;
    config[schema::ch06::kConfigMeasuredOn] = "the whole training set at the end";
    run.begin(data.to_json(),
              run.samples_budget(total, 6e7, "probe",
                                 "seed 000 Definition 5.1: 1000 epochs, 6e7 samples per probe",
                                 "seed 000: 1000 epochs, 6e7"));
    const Findings f = flow();

    // The noise: how often does a smaller architecture reconstruct better?
    const std::vector<Probe> distinct = distinct_probes(f.probes);
    const auto [pairs, violations] = monotonicity_violations(distinct);
    namespace c6 = schema::ch06;
    return {{c6::kTable7, f.table7},
            {c6::kSearches, f.searches},
            {c6::kMonotonicity,
             {{c6::kPairs, pairs}, {c6::kViolations, violations}, {c6::kProbes, distinct.size()}}},
            {c6::kProbesTrained, rounds.trained()},
            {c6::kProbesReused, rounds.reused()},
            {c6::kThresholds, f.seed_thresholds ? c6::kThresholdsSeed : "relative"},
            {"good", f.good.to_json()},
            {"good_eased", f.good_eased.to_json()},
            {c6::kThresholdNote, f.threshold_note},
            {schema::key::kChecks, compute_checks(f, pairs, violations)}};
  }

 private:
  TrainingFlags training_{"relu", "adagrad", 0.01};
  SearchSettings s_;
  std::string upper_shallow_, upper_deep_, upper_eased_, table7_;
  ProbeModes modes_;
  std::vector<int64_t> shallow_, deep_, eased_;
};

}  // namespace

int main(int argc, char** argv) {
  return chapter_main<ArchitectureSearch>(argc, argv);
}
