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
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "vaerepro/chapter.h"
#include "vaerepro/format.h"
#include "vaerepro/points.h"
#include "vaerepro/search.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace vaerepro;

namespace {

constexpr const char* kSlug = "06-architecture-search";
constexpr const char* kProgram = "chapter-06";

// Seed 000 Table 7 (1000 epochs): the eleven structures.
const std::vector<std::vector<int64_t>> kTable7 = {
    {50, 4}, {500, 4}, {500, 3}, {500, 2}, {500, 500, 5}, {500, 500, 4}, {500, 500, 3}, {500, 500, 2},
    {500, 100, 5}, {500, 100, 50, 10, 5}, {500, 100, 50, 10, 2}};

struct Options {
  TrainingFlags training{"relu", "adagrad", 0.01};  // seed 000's benchmark code: ReLU, Adagrad 1e-2
  std::string upper_shallow = "[500, 3]";     // seed 000 section 5.2: depth 2 first
  std::string upper_deep = "[500, 500, 3]";   // seed 000 Table 3's start
  std::string upper_eased = "[500, 4]";       // seed 000 Table 6's start (d <= 5)
  std::string thresholds = "auto";            // seed | relative | auto
  std::string mode = "both";                  // seed | noise-aware | both
  int repeats = 3;
  bool table7 = true;
  double samples = 0;                         // per probe (profile)
};

void apply_profile(const std::string& profile, Options& o) {
  if (profile == "smoke") {
    o.samples = 500;
    o.training.max_train = 500;
    o.training.max_test = 100;
    o.upper_deep = "[16, 16, 3]";
    o.upper_shallow = "[16, 3]";
    o.upper_eased = "[16, 4]";
    o.table7 = false;
  } else if (profile == "quick") {  // a reduced budget, stated in the results
    o.samples = 1.2e5;  // two epochs
  } else {
    o.samples = 6e7;  // seed 000: 1000 epochs
  }
}

std::vector<int64_t> parse_widths(const std::string& text, const std::string& option) {
  try {
    const auto a = parse_architecture(text);
    auto w = a.hidden;
    w.push_back(a.latent);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i + 1] > w[i]) {
        throw std::invalid_argument("'" + text + "' breaks h_{i+1} <= h_i (seed 000 Assumption 5.1)");
      }
    }
    return w;
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + option + ": " + e.what());
  }
}

/// A probe's name on the command line and in `make` targets: "500-500-3.r0".
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
    if (used != token.size() - dot - 2 || repeat < 0 || widths.empty()) throw std::invalid_argument("repeat");
  } catch (const std::exception&) {
    throw UsageError("--only-probe '" + token + "' is not a probe: write the widths joined by '-' and the seed "
                     "index, e.g. 500-500-3.r0 (chapter-06 --list-probes prints the ones pending)");
  }
  return {widths, repeat};
}

/// Thrown by the oracle while planning: the probe is not cached yet.
struct PendingProbe {};

/// The chapter's oracle: a probe trains `widths` for the budget with the
/// repeat-th seed and measures the reconstruction loss and KL on the whole
/// training set (seed 000 reads them off its training log). Every probe is a
/// cached point. While planning, an uncached probe is recorded and
/// PendingProbe thrown instead of training it.
struct ProbeService {
  const Options& o;
  const ChapterSetup& setup;
  const TensorData& data;
  Activation activation;
  int64_t total;
  PointStore store;
  bool planning = false;
  std::vector<std::string> pending;  ///< tokens, in the order first asked
  int trained = 0, reused = 0;

  nlohmann::json config(const std::vector<int64_t>& widths, int repeat) const {
    return {{"widths", widths}, {"repeat", repeat}, {"samples", total},
            {"activation", to_string(activation)}, {"optimizer", o.training.optimizer},
            {"lr", o.training.lr}, {"batch_size", o.training.batch_size},
            {"dataset", setup.dataset_name}, {"protocol", to_string(setup.protocol)},
            {"max_train", o.training.max_train}, {"seed", setup.common.seed}};
  }
  static std::string name(const std::vector<int64_t>& widths, int repeat) {
    return "probe-" + widths_to_string(widths) + "-r" + std::to_string(repeat);
  }

  // [oracle]
  ProbeMeasure train(const std::vector<int64_t>& widths, int repeat) {
    const auto cfg = config(widths, repeat);
    // A probe in training checkpoints (a killed run resumes it).
    const auto checkpoint = point_checkpoint(setup, store, name(widths, repeat), cfg);
    const std::string staging = store.begin(name(widths, repeat), cfg);
    torch::manual_seed(static_cast<uint64_t>(setup.common.seed * 1000003 + repeat * 7919 + config_hash(cfg).size()));
    Architecture arch{std::vector<int64_t>(widths.begin(), widths.end() - 1), widths.back()};
    Vae vae(VaeOptions(data.dim(), arch).activation(activation));
    vae->to(setup.device);
    auto opt = make_optimizer(vae->parameters(), {o.training.optimizer, o.training.lr, 0.0});
    TrainOptions t;
    t.total_samples = total;
    t.batch_size = o.training.batch_size;
    t.label = std::string(kProgram) + " " + widths_to_string(widths) + " seed " + std::to_string(repeat);
    t.checkpoint = checkpoint;
    auto result = train_vae(*vae, *opt, data, t);
    const auto& last = result.curve.back().train;
    ProbeMeasure m{-last.log_likelihood, last.kl, result.train_seconds + result.eval_seconds};
    store.commit(staging, name(widths, repeat), cfg,
                 {{"reconstruction", m.reconstruction}, {"kl", m.kl}, {"seconds", m.seconds},
                  {"test", result.curve.back().test.to_json()}, {"train_seconds", result.train_seconds},
                  {"samples_seen", result.samples_seen}, {"step", result.step},
                  {"device", setup.device.is_cuda() ? "cuda" : "cpu"}});
    remove_point_checkpoint(checkpoint);
    ++trained;
    std::cout << kProgram << ": " << widths_to_string(widths) << " (seed " << repeat << "): reconstruction "
              << m.reconstruction << ", KL " << m.kl << "\n";
    return m;
  }

  ProbeMeasure operator()(const std::vector<int64_t>& widths, int repeat) {
    // A finished probe is reused (--force: unless it finished before this run).
    if (auto p = reusable_point(setup, store, name(widths, repeat), config(widths, repeat))) {
      ++reused;
      return {(*p)["reconstruction"].get<double>(), (*p)["kl"].get<double>(), (*p)["seconds"].get<double>()};
    }
    if (planning) {
      // A repeat is asked for only near a threshold, and then all of them
      // (search.h): they go into the same round.
      for (int r = repeat; r < (repeat == 0 ? 1 : o.repeats); ++r) {
        const auto token = probe_token(widths, r);
        if (r > repeat && reusable_point(setup, store, name(widths, r), config(widths, r))) continue;
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
Findings run_flow(ProbeService& probes, const Options& o, const std::vector<int64_t>& shallow,
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
                      (o.thresholds == "auto" && probes.setup.dataset_name == "mnist" &&
                       probes.setup.protocol == Protocol::kGrayBce);
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
        if (!probes.planning) std::cout << kProgram << ": " << mode << ", " << label << ": " << r.outcome << "\n";
      });
    }
  }
  return f;
}

int run(int argc, char** argv) {
  CommonOptions common;
  Options o;
  std::string only_probe;
  bool list_probes = false;
  auto generic = generic_options(common);
  po::options_description experiment("Experiment (defaults depend on --profile)");
  add_training_flags(experiment, o.training, true);
  experiment.add_options()
      ("upper-shallow", po::value(&o.upper_shallow), "depth-2 upper bound ([500, 3])")
      ("upper-deep", po::value(&o.upper_deep), "depth-3 upper bound, Table 3 ([500, 500, 3])")
      ("upper-eased", po::value(&o.upper_eased), "the eased search's upper bound, Table 6 ([500, 4])")
      ("thresholds", po::value(&o.thresholds), "seed (R = 120, K = 10; eased 115, 11) | relative (scaled to this run's "
                                               "upper bound, as the seed's were to its own) | auto (seed on MNIST under gray-bce, else relative)")
      ("mode", po::value(&o.mode), "seed | noise-aware | both (both)")
      ("repeats", po::value(&o.repeats), "seeds for a probe near a threshold, noise-aware mode (3)")
      ("table7", po::value(&o.table7), "also train seed 000 Table 7's eleven structures (true)")
      ("samples", po::value(&o.samples), "training samples per probe (smoke 500, quick 1.2e5, full 6e7)")
      ("list-probes", po::bool_switch(&list_probes),
       "print the probes that can train now, independently of each other (lines 'pending-probe TOKEN'), and stop")
      ("only-probe", po::value(&only_probe), "train one probe into the cache and stop, e.g. 500-500-3.r0 (for make -j)");
  if (!parse_chapter_command_line(argc, argv,
                                  "chapter-06: seed 000's minimal-architecture search (Algorithm 1), made robust to noise\n"
                                  "usage: chapter-06 [options]",
                                  generic, experiment, [&](const std::string& profile) { apply_profile(profile, o); })) {
    return 0;
  }
  const auto shallow = parse_widths(o.upper_shallow, "upper-shallow");
  const auto deep = parse_widths(o.upper_deep, "upper-deep");
  const auto eased = parse_widths(o.upper_eased, "upper-eased");
  if (o.thresholds != "seed" && o.thresholds != "relative" && o.thresholds != "auto") {
    throw UsageError("--thresholds '" + o.thresholds + "' is not one of: seed, relative, auto");
  }
  if (o.mode != "seed" && o.mode != "noise-aware" && o.mode != "both") {
    throw UsageError("--mode '" + o.mode + "' is not one of: seed, noise-aware, both");
  }
  require_range("repeats", o.repeats, 2, 100);
  require_range("samples", o.samples, 1, 1e12);
  if (list_probes && !only_probe.empty()) throw UsageError("--list-probes and --only-probe exclude each other");
  std::optional<std::pair<std::vector<int64_t>, int>> probe_request;
  if (!only_probe.empty()) {
    probe_request = parse_probe_token(only_probe);
    parse_widths(widths_to_string(probe_request->first), "only-probe");  // h_{i+1} <= h_i
    require_range("only-probe's seed index", probe_request->second, 0, o.repeats - 1);
  }
  const Activation activation = validate_training_flags(o.training);

  const ChapterSetup setup = start_chapter(kProgram, kSlug, common, Protocol::kGrayBce, "mnist", argc, argv);
  torch::manual_seed(static_cast<uint64_t>(common.seed));
  const TensorData data = prepare_tensors(setup.dataset, setup.protocol, setup.device, o.training.max_train, o.training.max_test);
  const auto total = static_cast<int64_t>(std::llround(o.samples));
  ProbeService probes{o, setup, data, activation, total, PointStore(common.out, kSlug, setup.dataset.fingerprint)};

  // [parallel-probes]
  // `make chapter-06-probes JOBS=N` runs rounds: list the probes that can
  // train now (each Table 7 structure, the references, each search's next
  // probe), train them as parallel jobs, repeat until none is pending; the
  // chapter run then assembles them without training.
  if (list_probes) {
    probes.planning = true;
    run_flow(probes, o, shallow, deep, eased);
    for (const auto& t : probes.pending) std::cout << "pending-probe " << t << "\n";
    return 0;
  }
  if (probe_request) {
    const auto& [widths, repeat] = *probe_request;
    probes(widths, repeat);
    std::cout << kProgram << ": probe " << probe_token(widths, repeat) << " is in "
              << probes.store.dir(ProbeService::name(widths, repeat), probes.config(widths, repeat)) << "\n";
    return 0;
  }
  // [parallel-probes]

  RunWriter writer(common.out, kSlug);
  nlohmann::json run = setup.run_json("The minimal-architecture search (seed 000 section 5, Algorithm 1)");
  writer.write_json("run.json", run);
  return run_staged(writer, run, kProgram, [&]() -> int {
    const auto t_start = std::chrono::steady_clock::now();
    // A finished run of these options is not redone (--force: it is).
    const RunCheckpoints checkpoints(
        setup, {{"upper_shallow", o.upper_shallow}, {"upper_deep", o.upper_deep}, {"upper_eased", o.upper_eased},
                {"thresholds", o.thresholds}, {"mode", o.mode}, {"repeats", o.repeats}, {"table7", o.table7},
                {"samples", total}, {"activation", to_string(activation)}, {"optimizer", o.training.optimizer},
                {"lr", o.training.lr}, {"batch_size", o.training.batch_size}, {"max_train", o.training.max_train},
                {"max_test", o.training.max_test}});
    if (!checkpoints.start(writer)) return 0;
    const Findings f = run_flow(probes, o, shallow, deep, eased);
    run["data"] = data.to_json();
    run["config"] = {{"upper_shallow", widths_to_string(shallow)}, {"upper_deep", widths_to_string(deep)},
                     {"upper_eased", widths_to_string(eased)}, {"thresholds", f.seed_thresholds ? "seed" : "relative"},
                     {"good", {{"max_reconstruction", f.good.max_reconstruction}, {"max_kl", f.good.max_kl}}},
                     {"good_eased", {{"max_reconstruction", f.good_eased.max_reconstruction}, {"max_kl", f.good_eased.max_kl}}},
                     {"threshold_note", f.threshold_note}, {"mode", o.mode}, {"repeats", o.repeats},
                     {"activation", to_string(activation)}, {"optimizer", {{"name", o.training.optimizer}, {"lr", o.training.lr}}},
                     {"batch_size", o.training.batch_size}, {"samples_per_probe", total}, {"measured_on", "the whole training set at the end"}};
    run["budget"] = "each probe sees " + std::to_string(total) + " training samples (seed 000: 1000 epochs, 6e7)";
    writer.write_json("run.json", run);

    // The noise: how often does a smaller architecture reconstruct better?
    std::map<std::vector<int64_t>, Probe> unique;
    for (const auto& p : f.probes) unique.emplace(p.widths, p);
    std::vector<Probe> distinct;
    for (const auto& [w, p] : unique) distinct.push_back(p);
    const auto [pairs, violations] = monotonicity_violations(distinct);

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
    nlohmann::json metrics = {{"table7", f.table7},
                              {"searches", f.searches},
                              {"monotonicity", {{"pairs", pairs}, {"violations", violations}, {"probes", distinct.size()}}},
                              {"probes_trained", probes.trained},
                              {"probes_reused", probes.reused},
                              {"thresholds", f.seed_thresholds ? "seed" : "relative"},
                              {"threshold_note", f.threshold_note},
                              {"checks", checks},
                              {"checks_budget", {{"provisional", total < 6e7}, {"note", "seed 000: 1000 epochs per probe"}}}};
    finish_chapter(writer, run, metrics, kProgram, t_start, &checkpoints);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return run_program(kProgram, argc, argv, run);
}
