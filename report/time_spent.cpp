/// \file time_spent.cpp
/// The performance appendix's "where the time went": each chapter's last run
/// (results/NN-*/run.json `time_spent`, written by the chapter runtime from
/// src/vaerepro/time_ledger.h) split into training, whole-set evaluations,
/// log p(x) estimates, HMC, the prior's sampling and figures. Reads only.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include "common.h"
#include "vaerepro/schema/run_record.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {

// The library's stage names (time_ledger.h), in the order a run meets them.
const std::vector<std::string> kStageOrder = {
    "training", "whole-set evaluations", "log p(x) estimates",
    "HMC",      "sampling (the prior)",  "figures"};

// In minutes, or in seconds when every run is shorter than two minutes.
std::string amount(double s, bool in_seconds) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  if (in_seconds) {
    os.precision(s < 10 ? 1 : 0);
    os << s;
  } else {
    os.precision(s < 6000 ? 1 : 0);
    os << s / 60;
  }
  return os.str();
}

struct TimedRun {
  std::string slug, profile, dataset, threads;
  double wall = 0;
  std::map<std::string, double> stages;
};

std::vector<TimedRun> read_timed_runs(const fs::path& results) {
  std::vector<TimedRun> runs;
  std::error_code ec;
  if (!fs::is_directory(results, ec)) return runs;
  for (const auto& e : fs::directory_iterator(results, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 3 || !std::isdigit(static_cast<unsigned char>(name[0])) || name[2] != '-')
      continue;
    try {
      namespace k = schema::run_key;
      const json run = read_json(e.path() / "run.json");
      if (run.value(k::kStatus, std::string()) != schema::run_status::kComplete) continue;
      if (!run.contains(k::kTimeSpent) || !run[k::kTimeSpent].is_object()) continue;
      TimedRun t;
      t.slug = name;
      t.profile = str(run, k::kProfile);
      t.dataset = run.contains(k::kDataset) ? str(run[k::kDataset], k::kName) : "?";
      const json rt = run.value(k::kRuntime, json::object());
      t.threads = rt.contains("intra_op_threads") ? rt["intra_op_threads"].dump() : "?";
      t.wall = number(run, k::kWallSeconds, std::nan(""));
      for (const auto& [stage, seconds] : run[k::kTimeSpent].items()) {
        if (seconds.is_number()) t.stages[stage] = seconds.get<double>();
      }
      runs.push_back(std::move(t));
    } catch (const std::exception&) {
      // An unreadable run is the chapter's own section's to report.
    }
  }
  std::sort(runs.begin(), runs.end(),
            [](const TimedRun& a, const TimedRun& b) { return a.slug < b.slug; });
  return runs;
}

}  // namespace

std::string render_time_spent(const Paths& paths) {
  const auto runs = read_timed_runs(paths.results);
  std::ostringstream os;
  os << "## Where each chapter's time went\n\n";
  if (runs.empty()) {
    os << "::: {.status}\n**No chapter run here recorded its time by stage yet** (runs made before "
          "the "
          "chapters kept a time ledger do not). Rerun a chapter (`make chapter-01`) to see "
          "it.\n:::\n\n";
    return os.str();
  }
  std::vector<std::string> stages = kStageOrder;
  for (const auto& r : runs) {
    for (const auto& [s, v] : r.stages) {
      if (std::find(stages.begin(), stages.end(), s) == stages.end()) stages.push_back(s);
    }
  }
  stages.erase(std::remove_if(stages.begin(), stages.end(),
                              [&](const std::string& s) {
                                return std::none_of(
                                    runs.begin(), runs.end(),
                                    [&](const TimedRun& r) { return r.stages.count(s) > 0; });
                              }),
               stages.end());
  double longest = 0;
  for (const auto& r : runs) longest = std::max(longest, std::isfinite(r.wall) ? r.wall : 0.0);
  const bool in_seconds = longest < 120;
  auto minutes = [&](double v) { return amount(v, in_seconds); };
  os << "Each chapter's last complete run in this results folder, in "
     << (in_seconds ? "seconds" : "minutes")
     << " of wall time (this process only: "
        "a run resumed after a stop counts from its resumption, and sweep points or probes trained "
        "by "
        "earlier runs or by separate point jobs are read from their cache, not counted). A stage "
        "inside "
        "another (the whole-set evaluations and estimates made during training) is charged to the "
        "inner "
        "one only; *other* is the rest (reading the data, set-up, writing results).\n\n";
  os << "| chapter | profile | dataset | threads | wall |";
  for (const auto& s : stages) os << " " << md(s) << " |";
  os << " other |\n|---|---|---|---|---|";
  for (size_t i = 0; i <= stages.size(); ++i) os << "---|";
  os << "\n";
  double total = 0;
  bool same_profile = true;
  for (const auto& r : runs) {
    double charged = 0;
    os << "| " << md(r.slug) << " | " << md(r.profile) << " | " << md(r.dataset) << " | "
       << r.threads << " | " << minutes(r.wall) << " |";
    for (const auto& s : stages) {
      const auto it = r.stages.find(s);
      if (it == r.stages.end()) {
        os << " |";
        continue;
      }
      charged += it->second;
      os << " " << minutes(it->second) << " |";
    }
    os << " " << minutes(std::max(0.0, r.wall - charged)) << " |\n";
    if (std::isfinite(r.wall)) total += r.wall;
    same_profile = same_profile && r.profile == runs.front().profile;
  }
  os << "\nAll " << runs.size() << " runs together: " << minutes(total)
     << (in_seconds ? " seconds" : " minutes")
     << (same_profile ? " (profile " + md(runs.front().profile) + ")" : " (mixed profiles)")
     << ".\n\n";
  return os.str();
}

}  // namespace vaerepro::report
