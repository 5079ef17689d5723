#include "vaerepro/sweep.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace fs = std::filesystem;

namespace vaerepro {

void declare_point_modes(OptionTable& options, PointModes& modes, const std::string& only_help) {
  options.add("only-point", modes.only, std::string(), only_help).key("");
  options
      .flag("list-points", modes.list,
            "print the points not yet trained for this configuration (lines 'pending-point "
            "NAME', for --only-point), and stop")
      .key("");
  options.check([&modes] {
    if (modes.list && !modes.only.empty()) {
      throw UsageError("--list-points and --only-point exclude each other");
    }
  });
}

void declare_probe_modes(OptionTable& options, ProbeModes& modes, const int64_t& repeats) {
  options
      .flag("list-probes", modes.list,
            "print the probes that can train now, independently of each other (lines "
            "'pending-probe TOKEN'), and stop")
      .key("");
  options
      .add("only-probe", modes.only, std::string(),
           "train one probe into the cache and stop, e.g. 500-500-3.r0 (for make -j)")
      .key("");
  options.check([&modes, &repeats] {
    if (modes.list && !modes.only.empty()) {
      throw UsageError("--list-probes and --only-probe exclude each other");
    }
    modes.request.reset();
    if (modes.only.empty()) return;
    modes.request = parse_probe_token(modes.only);
    parse_search_widths(widths_to_string(modes.request->first), "only-probe");  // h_{i+1} <= h_i
    require_range("only-probe's seed index", modes.request->second, 0,
                  static_cast<double>(repeats - 1));
  });
}

bool run_probe_mode(const ProbeModes& modes, ProbeRounds& rounds, const std::function<void()>& plan,
                    const ProbeSweep& probes) {
  if (modes.list) {
    rounds.planning = true;
    plan();
    rounds.planning = false;
    for (const auto& t : rounds.pending()) std::cout << "pending-probe " << t << "\n";
    return true;
  }
  if (!modes.request) return false;
  const auto& [widths, repeat] = *modes.request;
  rounds(widths, repeat);
  std::cout << probes.prefix() << "probe " << probe_token(widths, repeat) << " is in "
            << probes.dir(widths, repeat) << "\n";
  return true;
}

PointSweep::PointSweep(ChapterRun& run) : run_(run), store_(run.point_store()) {}

std::optional<nlohmann::json> PointSweep::reusable(const std::string& name,
                                                   const nlohmann::json& config) const {
  return reusable_point(run_.setup(), store_, name, config);
}

nlohmann::json PointSweep::obtain(const SweepPoint& p) const {
  // A finished point is reused (--force trains it again); one in training checkpoints.
  const auto checkpoint = point_checkpoint(run_.setup(), store_, p.name, p.config);
  if (auto cached = reusable(p.name, p.config)) {
    std::cout << run_.prefix() << p.name << ": reusing " << store_.dir(p.name, p.config) << "\n";
    return *cached;
  }
  const std::string staging = store_.begin(p.name, p.config);
  nlohmann::json point = p.train(PointStaging{staging, checkpoint});
  store_.commit(staging, p.name, p.config, std::move(point));
  remove_point_checkpoint(checkpoint);
  return *store_.load(p.name, p.config);
}

nlohmann::json PointSweep::assemble(const SweepPoint& p) const {
  nlohmann::json point = obtain(p);
  const std::string rel = "points/" + p.name;
  fs::create_directories(run_.writer().path(rel));
  fs::copy(store_.dir(p.name, p.config), run_.writer().path(rel),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  point[schema::key::kDir] = rel;
  point[schema::key::kPointConfigHash] = store_.hash(p.config);
  return point;
}

bool PointSweep::run_mode(const PointModes& modes, const std::vector<SweepPoint>& points,
                          const std::string& example) const {
  if (modes.list) {  // for a scheduler: what is left to train (scripts/slurm_points.sh)
    for (const auto& p : points) {
      if (!reusable(p.name, p.config)) std::cout << "pending-point " << p.name << "\n";
    }
    return true;
  }
  if (modes.only.empty()) return false;
  for (const auto& p : points) {
    const bool alias = std::find(p.aliases.begin(), p.aliases.end(), modes.only) != p.aliases.end();
    if (modes.only != p.name && !alias) continue;
    obtain(p);
    std::cout << run_.prefix() << "point " << p.name << " is in " << store_.dir(p.name, p.config)
              << "\n";
    return true;
  }
  throw UsageError("--only-point '" + modes.only + "' is not a point of this sweep (e.g. " +
                   example + ")");
}

std::string ProbeSweep::name(const std::vector<int64_t>& widths, int repeat) {
  return "probe-" + widths_to_string(widths) + "-r" + std::to_string(repeat);
}

nlohmann::json ProbeSweep::config(const std::vector<int64_t>& widths, int repeat) const {
  nlohmann::json c = config_;
  c["widths"] = widths;
  c["repeat"] = repeat;
  return c;
}

std::optional<ProbeMeasure> ProbeSweep::cached(const std::vector<int64_t>& widths,
                                               int repeat) const {
  if (auto p = sweep_.reusable(name(widths, repeat), config(widths, repeat))) {
    return ProbeMeasure::from_json(*p);
  }
  return std::nullopt;
}

ProbeMeasure ProbeSweep::train(const std::vector<int64_t>& widths, int repeat) const {
  const SweepPoint point{
      name(widths, repeat),
      config(widths, repeat),
      [&](const PointStaging& staging) { return train_(widths, repeat, staging); },
      {}};
  const ProbeMeasure m = ProbeMeasure::from_json(sweep_.obtain(point));
  std::cout << sweep_.prefix() << widths_to_string(widths) << " (seed " << repeat
            << "): reconstruction " << m.reconstruction << ", KL " << m.kl << "\n";
  return m;
}

std::string ProbeSweep::dir(const std::vector<int64_t>& widths, int repeat) const {
  return sweep_.store().dir(name(widths, repeat), config(widths, repeat));
}

ProbeRounds ProbeSweep::rounds(int repeats) const {
  return ProbeRounds([this](const std::vector<int64_t>& w, int r) { return cached(w, r); },
                     [this](const std::vector<int64_t>& w, int r) { return train(w, r); }, repeats);
}

}  // namespace vaerepro
