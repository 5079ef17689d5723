/// \file chapter02.cpp
/// The report's chapter 2: the marginal-likelihood curves for the small and
/// the large training set over KW2013's digitised Fig. 3, the estimators side
/// by side, the overfitting verdicts.

#include <cmath>
#include <limits>
#include <tuple>
#include <iomanip>
#include <sstream>

#include "common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {
std::string pm(const json& est) {  // "-143.2 +- 0.3" (data standard error)
  if (!est.is_object() || !est.contains(schema::key::kMean)) return "n/a";
  return fmt1(est[schema::key::kMean]) + " &plusmn; " +
         fmt1(est.value(schema::key::kStandardErrorData, json()));
}

namespace k = schema::key;
namespace c2 = schema::ch02;
namespace cfg = schema::config_key;

/// What every section of chapter 2 reads: the run (read once), KW2013's
/// digitised Fig. 3 and its published values. Each section renders one
/// placeholder of the chapter's template.
struct Sections : ChapterSections {
  explicit Sections(const RenderContext& c)
      : ChapterSections(c),
        kw(c.published.at("kw2013_fig3")),
        kw_curves(read_kw_curves(options, outcome)),
        models(view.metrics.at(c2::kModels)),
        k_final(view.metrics.at(c2::kKFinal).dump()),
        comparable(view.dataset == kw.value("dataset", "mnist") && view.protocol == "binarized") {}

  /// KW2013's digitised Fig. 3; empty, with a warning, when unreadable.
  static json read_kw_curves(const Options& options, Outcome& outcome) {
    json kw_curves = json::object();
    try {
      kw_curves = read_json(fs::path(options.paths.published) / "kw2013_fig3.json").at("curves");
    } catch (const std::exception& e) {
      outcome.warnings.push_back(std::string("KW2013 Fig. 3 curves unavailable: ") + e.what());
    }
    return kw_curves;
  }

  std::string setup_table() const;
  std::string protocol_match() const;
  std::string curves_figure() const;
  std::string estimates_table() const;
  void add_fidelity_row(const json& m, const std::string& n, const char* split, const json& iw,
                        const json& kwv) const;

  const json kw;  ///< KW2013 Fig. 3's published values
  const json
      kw_curves;  ///< "Ntrain=N" -> {"AEVB train", "AEVB test"}: [[millions of samples, log p(x)]]
  const json& models;
  const std::string k_final;  ///< the largest K of the importance-sampled estimates
  /// KW2013's setting: MNIST, binarised.
  const bool comparable;
};

std::string Sections::setup_table() const {
  std::ostringstream os;
  os << setup_table_head(view);
  os << "| model | " << md(str(config, cfg::kArchitecture)) << ", "
     << md(str(config, cfg::kActivation)) << ", Bernoulli decoder; " << md(str(config, cfg::kInit))
     << " |\n";
  const json opt = config.value(cfg::kOptimizer, json::object());
  os << "| optimizer | " << md(str(opt, cfg::kOptimizerName)) << ", learning rate "
     << md(str(opt, cfg::kLr)) << ", weight decay " << md(str(opt, cfg::kWeightDecay))
     << ", minibatch " << md(str(config, cfg::kBatchSize)) << " |\n";
  os << "| estimates | on the first " << md(str(config, c2::kConfigEvalExamples))
     << " points of each set; along training K = " << md(str(config, c2::kConfigKCurve))
     << "; final K = " << md(str(config, c2::kConfigKFinal)) << "; HMC on the first "
     << md(str(config, c2::kConfigHmcExamples)) << " points |\n\n"
     << prov;
  return os.str();
}

std::string Sections::protocol_match() const {
  std::ostringstream os;
  os << "- **Dataset:** " << (dataset == "mnist" ? "matches" : "differs")
     << ". KW2013 used MNIST; this run used " << md(dataset) << "."
     << (dataset == "mnist" ? ""
                            : " The fresh estimates cannot be compared with the paper's; only the "
                              "shapes of the curves and the verdicts can.")
     << "\n";
  os << "- **Binarisation:** " << (protocol == "binarized" ? "unknown" : "differs")
     << ". KW2013 do not say how MNIST was binarised; this run used " << md(protocol) << ".\n";
  os << "- **Budget:** " << (budget.provisional ? "differs" : "matches") << ". "
     << (budget.paper.empty() ? std::string("KW2013 trained for about 6e7 samples")
                              : md(budget.paper))
     << "; this run: " << md(budget.text) << ".\n";
  os << "- **Estimator:** KW2013's curves use their HMC-based estimator; here both it and the "
        "importance-sampled bound are computed.\n";
  return os.str();
}

/// Two panels: the smallest and the largest training set.
std::string Sections::curves_figure() const {
  Plot plot;
  plot.name = "ch02-curves";
  plot.size_svg = "1000,430";
  plot.size_pdf = "9in,3.9in";
  std::ostringstream data, script;
  int index = 0;
  auto block = [&](const std::vector<std::pair<double, double>>& pts) {
    for (const auto& [x, y] : pts) data << std::setprecision(10) << x << ' ' << y << '\n';
    data << "\n\n";
    return index++;
  };
  std::vector<std::string> panels;
  for (const auto& m : models) {
    const int64_t n = m.at(c2::kNTrain).get<int64_t>();
    std::vector<std::pair<double, double>> tr, te;
    for (const auto& p : m.at(k::kCurve)) {
      if (!p.contains(k::kExtra)) continue;
      tr.emplace_back(p.at(k::kSamplesSeen).get<double>(),
                      p.at(k::kExtra).at(k::kTrain).at(k::kMean).get<double>());
      te.emplace_back(p.at(k::kSamplesSeen).get<double>(),
                      p.at(k::kExtra).at(k::kTest).at(k::kMean).get<double>());
    }
    if (tr.empty()) continue;
    std::ostringstream cmd;
    const int itr = block(tr), ite = block(te);
    cmd << "set title 'N = " << n << " training points'\nplot datafile index " << itr
        << " with linespoints lw 2 pt 7 ps 0.5 lc rgb '#1f77b4' title 'fresh train', datafile "
           "index "
        << ite << " with linespoints lw 2 dt 2 pt 7 ps 0.5 lc rgb '#d62728' title 'fresh test'";
    const std::string key = "Ntrain=" + std::to_string(n);
    if (kw_curves.contains(key)) {
      for (const char* which : {"AEVB train", "AEVB test"}) {
        std::vector<std::pair<double, double>> pts;
        for (const auto& p : kw_curves[key].value(which, json::array())) {
          pts.emplace_back(p[0].get<double>() * 1e6, p[1].get<double>());  // millions -> samples
        }
        if (pts.empty()) continue;
        cmd << ", datafile index " << block(pts) << " with lines lw 1.5 "
            << (std::string(which) == "AEVB test" ? "dt 2 " : "")
            << "lc rgb '#777777' title 'KW2013 " << (which + 5) << " (MNIST, D)'";
      }
    }
    panels.push_back(cmd.str());
  }
  script << "set logscale x\nset format x '10^{%L}'\nset grid lc rgb '#dddddd'\nset key bottom "
            "right font ',8'\n"
         << "set xlabel 'training samples seen'\nset ylabel 'log p(x) estimate (nats)'\n"
         << "set multiplot layout 1," << std::max<size_t>(1, panels.size())
         << " title 'Importance-sampled estimate (K = "
         << gnuplot_text(str(config, c2::kConfigKCurve)) << ") on the first "
         << gnuplot_text(str(config, c2::kConfigEvalExamples)) << " points: fresh ("
         << gnuplot_text(dataset) << ", " << gnuplot_text(protocol)
         << ") and KW2013 Fig. 3 (MNIST, digitised)'\n";
  for (const auto& p : panels) script << p << "\n";
  script << "unset multiplot\n";
  plot.data = data.str();
  plot.script = script.str();
  std::ostringstream os;
  if (panels.empty()) {
    os << "*No curve to draw: the run recorded no estimates along training.*\n";
  } else {
    os << plotted_figure(
        plot,
        "The estimated marginal log-likelihood of the training points (solid) and test points "
        "(dashed) "
        "against training samples seen, for the small and the large training set; in gray KW2013's "
        "digitised AEVB curves (their HMC-based estimator, MNIST).",
        options, outcome, "100%",
        "*The figure could not be drawn (gnuplot failed); the numbers are in " + md(st.dir) +
            "/curves/.*\n");
  }
  os << "\n" << prov;
  return os.str();
}

/// The estimators side by side, final models.
std::string Sections::estimates_table() const {
  std::ostringstream os;
  os << "| N | set | ELBO | K = 1 | K = 50 | K = " << k_final
     << " | HMC (first points) | K = " << k_final << " on the same points | KW2013 ("
     << md(kw.value("status", "?")) << ") | fresh minus KW2013 |\n"
     << "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& m : models) {
    const std::string n = m.at(c2::kNTrain).dump();
    for (const char* split : {k::kTrain, k::kTest}) {
      const json f = m.at(k::kFinal).at(split);
      const json iw = f.at(c2::kImportanceSampled);
      const json kwv = kw.at("values").value(n, json::object());
      const json hmc = f.value(c2::kHmc, json::object());
      std::string diff = "not compared";
      if (comparable && kwv.contains(split)) {
        const double d = iw.at(k_final).at(k::kMean).get<double>() - kwv[split].get<double>();
        diff = (d >= 0 ? "+" : "") + fmt1(d);
      }
      add_fidelity_row(m, n, split, iw, kwv);
      os << "| " << n << " | " << split << " | " << fmt1(f.at(k::kElbo).at(k::kElbo)) << " | "
         << pm(iw.value("1", json())) << " | " << pm(iw.value("50", json())) << " | "
         << pm(iw.at(k_final)) << " | "
         << (hmc.is_object() && hmc.contains(k::kMean)
                 ? pm(hmc) + " (" + hmc.value(k::kExamples, json()).dump() +
                       " points, acceptance " + fmt1(100 * hmc.value(c2::kAcceptance, 0.0)) + "%)"
                 : std::string("not run"))
         << " | "
         << (hmc.is_object() && hmc.contains(c2::kImportanceSampledSameExamples)
                 ? pm(hmc[c2::kImportanceSampledSameExamples])
                 : "")
         << " | " << fmt1(kwv.value(split, json())) << " | " << diff << " |\n";
    }
  }
  os << "\nNats per datapoint, mean over the points &plusmn; its standard error over points "
        "(sampling of the data; "
        "the Monte Carlo error of each estimate is smaller and recorded in the results). The "
        "importance-sampled "
        "estimate is a lower bound on log p(x) in expectation and tightens as K grows; the "
        "HMC-based estimator is "
        "not a bound. "
     << (comparable ? "The difference is the fresh K = " + k_final +
                          " estimate minus KW2013's final value. "
                    : "**Not compared**: this run used " + md(dataset) + " with the " +
                          md(protocol) + " protocol; KW2013's numbers are for MNIST. ")
     << "KW2013: " << md(kw.value("source", "")) << "; " << md(kw.value("quantity", ""))
     << "; status " << md(kw.value("status", "?")) << ".\n\n"
     << prov;
  return os.str();
}

/// The fidelity row of the final model `m` (training-set size `n`) on
/// `split`: KW2013's curve at the fresh budget (their HMC-based estimator).
void Sections::add_fidelity_row(const json& m, const std::string& n, const char* split,
                                const json& iw, const json& kwv) const {
  // The fidelity row: KW2013's curve at the fresh budget (their HMC-based estimator).
  const double seen = m.at(k::kSamplesSeen).get<double>();
  std::vector<std::pair<double, double>> pts;
  const std::string key = "Ntrain=" + n;
  if (kw_curves.contains(key)) {
    for (const auto& p : kw_curves[key].value(std::string("AEVB ") + split, json::array())) {
      pts.emplace_back(p[0].get<double>() * 1e6, p[1].get<double>());
    }
  }
  const double kw_same = interpolate_log_x(pts, seen);
  const std::string nn = n, sp = split, kf = k_final;
  const Spread fresh = over_seeds(st, [nn, sp, kf](const json& mm) {
    for (const auto& mo : mm.at(c2::kModels)) {
      if (mo.at(c2::kNTrain).dump() == nn) {
        return mo.at(k::kFinal).at(sp).at(c2::kImportanceSampled).at(kf).at(k::kMean).get<double>();
      }
    }
    return std::numeric_limits<double>::quiet_NaN();
  });
  FidelityRow row;
  row.chapter = "02";
  row.source = "KW2013 Fig. 3";
  row.status = kw.value("status", "?");
  row.quantity = std::string("log p(x), ") + split + ", N = " + n + " (first " +
                 str(config, c2::kConfigEvalExamples) + " points)";
  row.data = md(dataset) + ", " + md(protocol) +
             " (paper: MNIST, not stated); fresh K = " + k_final + " IS, paper HMC";
  const double paper_budget = number(kwv, "budget_samples", 6e7);
  row.budget =
      sci(seen) + " (paper: its curve at the same samples; " + sci(paper_budget) + " at its end)";
  row.published =
      (std::isfinite(kw_same) ? fmt1(kw_same) : std::string("off the digitised curve")) + " (" +
      fmt1(kwv.value(split, json())) + " at " + sci(paper_budget) + ")";
  row.fresh = spread_text(fresh, true);
  curve_verdict(row, fresh, kw_same, comparable,
                md(dataset) + ", " + md(protocol) + " against MNIST estimates",
                number(iw.at(k_final), k::kStandardErrorData, 0.0));
  ctx.outcome.fidelity.push_back(row);
}

}  // namespace

Vars render_marginal_likelihood(const RenderContext& ctx) {
  const Sections c(ctx);
  Vars v;
  v["setup_table"] = c.setup_table();
  v["protocol_match"] = c.protocol_match();
  v["curves_figure"] = c.curves_figure();
  v["estimates_table"] = c.estimates_table();
  v["verdicts"] = verdicts_md(c.view, ctx.slug) + seed_verdicts_md(c.st) + "\n" + c.prov;
  return v;
}

}  // namespace vaerepro::report
