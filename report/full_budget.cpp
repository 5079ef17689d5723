/// \file full_budget.cpp
/// Chapter 1 at KW2013's budget: a full-profile run kept apart from the
/// quick one (results-full/, `make chapter-01-full`), read from its run.json
/// and metrics.json and set beside KW2013 Fig. 2's test bound at 1e8
/// samples. Reads only; says plainly when there is no such run, or when one
/// stopped before completing.

#include <cmath>
#include <filesystem>
#include <sstream>

#include "common.h"
#include "vaerepro/schema/metrics.h"
#include "vaerepro/schema/run_record.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {

std::string fixed(double v, int precision) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(precision);
  os << v;
  return os.str();
}

std::string hours_minutes(double s) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  const long m = std::lround(s / 60);
  std::ostringstream os;
  if (m >= 60)
    os << m / 60 << " h " << m % 60 << " min";
  else
    os << m << " min";
  return os.str();
}

bool has_checkpoints(const fs::path& full, const std::string& slug) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(full / ".checkpoints" / slug, ec)) {
    if (fs::exists(e.path() / "in-progress.json", ec)) return true;
  }
  return false;
}

}  // namespace

std::string render_full_budget_ch01(const Paths& paths, const json& published) {
  namespace c1 = schema::ch01;
  namespace k = schema::key;
  namespace rk = schema::run_key;
  const fs::path full = paths.full_results;
  const fs::path dir = full / c1::kSlug;
  std::ostringstream os;
  const std::string how =
      "`make chapter-01-full` trains the Nz = 20 model at the full profile (1e8 samples, KW2013's "
      "budget; "
      "about an hour on 2 quiet CPU cores, minutes on a GPU) into " +
      md(full.string()) + "/, apart from these results, and the report then shows it here";
  json run, metrics;
  try {
    run = read_json(dir / "run.json");
    metrics = read_json(dir / "metrics.json");
  } catch (const std::exception&) {
    if (has_checkpoints(full, c1::kSlug)) {
      os << "::: {.status}\n**A full-budget run is under way or stopped before completing** (its "
            "checkpoints are in "
         << md(full.string())
         << "/.checkpoints/): when it has stopped, `make chapter-01-full` resumes it.\n:::\n\n";
    } else {
      os << "*No full-budget run yet.* " << how << ".\n\n";
    }
    return os.str();
  }
  if (run.value(rk::kStatus, std::string()) != schema::run_status::kComplete) {
    os << "::: {.status}\n**The run in " << md(dir.string()) << " is not complete** (status "
       << md(run.value(rk::kStatus, std::string("?"))) << "): " << how << ".\n:::\n\n";
    return os.str();
  }
  const json kw = published.at("kw2013_fig2");
  const json rt = run.value(rk::kRuntime, json::object());
  const json data = run.value(rk::kData, json::object());
  const std::string dataset = run.contains(rk::kDataset) ? str(run[rk::kDataset], rk::kName) : "?";
  const std::string protocol =
      run.contains(rk::kProtocol) ? str(run[rk::kProtocol], rk::kName) : "?";
  const bool comparable = dataset == kw.value("dataset", "mnist") && protocol == "binarized";
  os << "A run of the **" << md(str(run, rk::kProfile)) << "** profile on **" << md(dataset)
     << "** (" << md(protocol) << " protocol, seed " << run.value(rk::kSeed, 0) << ", "
     << md(str(run, rk::kDevice)) << ", "
     << (rt.contains("intra_op_threads") ? rt["intra_op_threads"].dump() : std::string("?"))
     << " threads; made "
     << md(run.value(rk::kProvenance, json::object()).value(rk::kDateUtc, std::string("?")))
     << ", commit "
     << md(run.value(rk::kProvenance, json::object()).value(rk::kGitCommit, std::string("?")))
     << "), kept in " << md(dir.string()) << "/. The bounds are over the whole sets ("
     << data.value("train_examples", 0) << " training, " << data.value("test_examples", 0)
     << " test examples); log p(x) is importance-sampled on the first test points.";
  if (!comparable) {
    os << " **Not comparable with KW2013's numbers**: they are MNIST under a binarised likelihood.";
  }
  os << "\n\n| Nz | training samples | training time | train ELBO | test ELBO | log p(x) (K, "
        "points) | KW2013 test, "
        "1e8 | test ELBO - KW2013 |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& m : metrics.value(c1::kModels, json::array())) {
    const std::string nz = std::to_string(m.value(c1::kNz, 0));
    const json fin = m.value(k::kFinal, json::object());
    const double train =
        fin.contains(k::kTrain) ? number(fin[k::kTrain], k::kElbo, std::nan("")) : std::nan("");
    const double test =
        fin.contains(k::kTest) ? number(fin[k::kTest], k::kElbo, std::nan("")) : std::nan("");
    std::string lpx = "not estimated";
    const json mg = m.value(c1::kMarginal, json());
    if (mg.is_object() && mg.contains(c1::kLogPx)) {
      const json e = mg[c1::kLogPx];
      lpx = fixed(number(e, k::kMean, std::nan("")), 2) + " +- " +
            fixed(number(e, k::kStandardErrorData, std::nan("")), 2) +
            " (K = " + std::to_string(mg.value(c1::kK, 0)) + ", " +
            std::to_string(e.value(k::kExamples, 0)) + ")";
    }
    const json kwv = kw.at("values").value(nz, json::object());
    const double kw_test = number(kwv, "test", std::nan(""));
    os << "| " << nz << " | " << sci(number(m, k::kSamplesSeen, std::nan(""))) << " | "
       << hours_minutes(number(m, k::kTrainSeconds, std::nan(""))) << " | " << fixed(train, 2)
       << " | " << fixed(test, 2) << " | " << lpx << " | " << fixed(kw_test, 1) << " | "
       << (comparable ? fixed(test - kw_test, 2) : std::string("not comparable")) << " |\n";
  }
  os << "\nKW2013's value is read off its Fig. 2 (about +-0.5 nat); the whole run took "
     << hours_minutes(number(run, rk::kWallSeconds, std::nan("")))
     << " of wall time in its last process"
     << " (a resumed run counts from its resumption; its training time above is the model's "
        "own).\n\n";
  return os.str();
}

}  // namespace vaerepro::report
