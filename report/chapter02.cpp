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
  if (!est.is_object() || !est.contains("mean")) return "n/a";
  return fmt1(est["mean"]) + " &plusmn; " + fmt1(est.value("standard_error_data", json()));
}
}  // namespace

Vars render_marginal_likelihood(const RenderContext& ctx) {
  const ChapterState& st = ctx.state;
  const Options& options = ctx.options;
  Outcome& outcome = ctx.outcome;
  const auto [run, metrics, prov, dataset, protocol, config] = run_view(st);
  const json kw = ctx.published.at("kw2013_fig3");
  json kw_curves = json::object();
  try {
    kw_curves = read_json(fs::path(options.paths.published) / "kw2013_fig3.json").at("curves");
  } catch (const std::exception& e) {
    outcome.warnings.push_back(std::string("KW2013 Fig. 3 curves unavailable: ") + e.what());
  }
  const json& models = metrics.at("models");
  const std::string k_final = metrics.at("k_final").dump();
  const bool comparable = dataset == kw.value("dataset", "mnist") && protocol == "binarized";
  Vars v;

  {
    std::ostringstream os;
    os << setup_table_head(run);
    os << "| model | " << md(str(config, "architecture")) << ", " << md(str(config, "activation"))
       << ", Bernoulli decoder; " << md(str(config, "init")) << " |\n";
    const json opt = config.value("optimizer", json::object());
    os << "| optimizer | " << md(str(opt, "name")) << ", learning rate " << md(str(opt, "lr")) << ", weight decay "
       << md(str(opt, "weight_decay")) << ", minibatch " << md(str(config, "batch_size")) << " |\n";
    os << "| estimates | on the first " << md(str(config, "eval_examples")) << " points of each set; along training K = "
       << md(str(config, "k_curve")) << "; final K = " << md(str(config, "k_final")) << "; HMC on the first "
       << md(str(config, "hmc_examples")) << " points |\n\n"
       << prov;
    v["setup_table"] = os.str();
  }
  {
    std::ostringstream os;
    os << "- **Dataset:** " << (dataset == "mnist" ? "matches" : "differs") << ". KW2013 used MNIST; this run used "
       << md(dataset) << "." << (dataset == "mnist" ? "" : " The fresh estimates cannot be compared with the paper's; only the shapes of the curves and the verdicts can.") << "\n";
    os << "- **Binarisation:** " << (protocol == "binarized" ? "unknown" : "differs")
       << ". KW2013 do not say how MNIST was binarised; this run used " << md(protocol) << ".\n";
    os << "- **Budget:** KW2013 trained for about " << sci(6e7) << " samples; this run: " << md(str(run, "budget")) << ".\n";
    os << "- **Estimator:** KW2013's curves use their HMC-based estimator; here both it and the importance-sampled bound are computed.\n";
    v["protocol_match"] = os.str();
  }

  // Two panels: the smallest and the largest training set.
  {
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
      const int64_t n = m.at("n_train").get<int64_t>();
      std::vector<std::pair<double, double>> tr, te;
      for (const auto& p : m.at("curve")) {
        if (!p.contains("extra")) continue;
        tr.emplace_back(p.at("samples_seen").get<double>(), p.at("extra").at("train").at("mean").get<double>());
        te.emplace_back(p.at("samples_seen").get<double>(), p.at("extra").at("test").at("mean").get<double>());
      }
      if (tr.empty()) continue;
      std::ostringstream cmd;
      const int itr = block(tr), ite = block(te);
      cmd << "set title 'N = " << n << " training points'\nplot datafile index " << itr
          << " with linespoints lw 2 pt 7 ps 0.5 lc rgb '#1f77b4' title 'fresh train', datafile index " << ite
          << " with linespoints lw 2 dt 2 pt 7 ps 0.5 lc rgb '#d62728' title 'fresh test'";
      const std::string key = "Ntrain=" + std::to_string(n);
      if (kw_curves.contains(key)) {
        for (const char* which : {"AEVB train", "AEVB test"}) {
          std::vector<std::pair<double, double>> pts;
          for (const auto& p : kw_curves[key].value(which, json::array())) {
            pts.emplace_back(p[0].get<double>() * 1e6, p[1].get<double>());  // millions -> samples
          }
          if (pts.empty()) continue;
          cmd << ", datafile index " << block(pts) << " with lines lw 1.5 "
              << (std::string(which) == "AEVB test" ? "dt 2 " : "") << "lc rgb '#777777' title 'KW2013 "
              << (which + 5) << " (MNIST, D)'";
        }
      }
      panels.push_back(cmd.str());
    }
    script << "set logscale x\nset format x '10^{%L}'\nset grid lc rgb '#dddddd'\nset key bottom right font ',8'\n"
           << "set xlabel 'training samples seen'\nset ylabel 'log p(x) estimate (nats)'\n"
           << "set multiplot layout 1," << std::max<size_t>(1, panels.size()) << " title 'Importance-sampled estimate (K = "
           << gnuplot_text(str(config, "k_curve")) << ") on the first " << gnuplot_text(str(config, "eval_examples"))
           << " points: fresh (" << gnuplot_text(dataset) << ", " << gnuplot_text(protocol)
           << ") and KW2013 Fig. 3 (MNIST, digitised)'\n";
    for (const auto& p : panels) script << p << "\n";
    script << "unset multiplot\n";
    plot.data = data.str();
    plot.script = script.str();
    std::ostringstream os;
    if (panels.empty()) {
      os << "*No curve to draw: the run recorded no estimates along training.*\n";
    } else {
      os << plotted_figure(plot, "The estimated marginal log-likelihood of the training points (solid) and test points (dashed) "
                      "against training samples seen, for the small and the large training set; in gray KW2013's "
                      "digitised AEVB curves (their HMC-based estimator, MNIST).", options, outcome, "100%", "*The figure could not be drawn (gnuplot failed); the numbers are in " + md(st.dir) + "/curves/.*\n");
    }
    os << "\n" << prov;
    v["curves_figure"] = os.str();
  }

  // The estimators side by side, final models.
  {
    std::ostringstream os;
    os << "| N | set | ELBO | K = 1 | K = 50 | K = " << k_final << " | HMC (first points) | K = " << k_final
       << " on the same points | KW2013 (" << md(kw.value("status", "?")) << ") | fresh minus KW2013 |\n"
       << "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& m : models) {
      const std::string n = m.at("n_train").dump();
      for (const char* split : {"train", "test"}) {
        const json f = m.at("final").at(split);
        const json iw = f.at("importance_sampled");
        const json kwv = kw.at("values").value(n, json::object());
        const json hmc = f.value("hmc", json::object());
        std::string diff = "not compared";
        if (comparable && kwv.contains(split)) {
          const double d = iw.at(k_final).at("mean").get<double>() - kwv[split].get<double>();
          diff = (d >= 0 ? "+" : "") + fmt1(d);
        }
        {
          // The fidelity row: KW2013's curve at the fresh budget (their HMC-based estimator).
          const double seen = m.at("samples_seen").get<double>();
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
            for (const auto& mo : mm.at("models")) {
              if (mo.at("n_train").dump() == nn) return mo.at("final").at(sp).at("importance_sampled").at(kf).at("mean").get<double>();
            }
            return std::numeric_limits<double>::quiet_NaN();
          });
          FidelityRow row;
          row.chapter = "02";
          row.source = "KW2013 Fig. 3";
          row.status = kw.value("status", "?");
          row.quantity = std::string("log p(x), ") + split + ", N = " + n + " (first " + str(config, "eval_examples") + " points)";
          row.data = md(dataset) + ", " + md(protocol) + " (paper: MNIST, not stated); fresh K = " + k_final +
                     " IS, paper HMC";
          const double paper_budget = number(kwv, "budget_samples", 6e7);
          row.budget = sci(seen) + " (paper: its curve at the same samples; " + sci(paper_budget) + " at its end)";
          row.published = (std::isfinite(kw_same) ? fmt1(kw_same) : std::string("off the digitised curve")) + " (" +
                          fmt1(kwv.value(split, json())) + " at " + sci(paper_budget) + ")";
          row.fresh = spread_text(fresh, true);
          curve_verdict(row, fresh, kw_same, comparable, md(dataset) + ", " + md(protocol) + " against MNIST estimates",
                        number(iw.at(k_final), "standard_error_data", 0.0));
          ctx.outcome.fidelity.push_back(row);
        }
        os << "| " << n << " | " << split << " | " << fmt1(f.at("elbo").at("elbo")) << " | " << pm(iw.value("1", json()))
           << " | " << pm(iw.value("50", json())) << " | " << pm(iw.at(k_final)) << " | "
           << (hmc.is_object() && hmc.contains("mean") ? pm(hmc) + " (" + hmc.value("examples", json()).dump() + " points, acceptance " +
                                                             fmt1(100 * hmc.value("acceptance", 0.0)) + "%)"
                                                       : std::string("not run"))
           << " | " << (hmc.is_object() && hmc.contains("importance_sampled_same_examples") ? pm(hmc["importance_sampled_same_examples"]) : "")
           << " | " << fmt1(kwv.value(split, json())) << " | " << diff << " |\n";
      }
    }
    os << "\nNats per datapoint, mean over the points &plusmn; its standard error over points (sampling of the data; "
          "the Monte Carlo error of each estimate is smaller and recorded in the results). The importance-sampled "
          "estimate is a lower bound on log p(x) in expectation and tightens as K grows; the HMC-based estimator is "
          "not a bound. "
       << (comparable ? "The difference is the fresh K = " + k_final + " estimate minus KW2013's final value. "
                      : "**Not compared**: this run used " + md(dataset) + " with the " + md(protocol) +
                            " protocol; KW2013's numbers are for MNIST. ")
       << "KW2013: " << md(kw.value("source", "")) << "; " << md(kw.value("quantity", "")) << "; status "
       << md(kw.value("status", "?")) << ".\n\n"
       << prov;
    v["estimates_table"] = os.str();
  }
  v["verdicts"] = verdicts_md(metrics, "decided at this run's budget (" + md(str(run, "budget")) +
                                           "), a fraction of KW2013's 6e7 samples, on the run with seed " +
                                           str(run, "seed") + "; `make chapter-02 PROFILE=full` decides them at the "
                                           "paper's budget.") +
                  seed_verdicts_md(st) + "\n" + prov;
  return v;
}

}  // namespace vaerepro::report
