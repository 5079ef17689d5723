/// \file chapter01.cpp
/// The report's chapter 1: fresh ELBO curves over KW2013's digitised Fig. 2,
/// final bounds beside the published ones, verdicts, pictures.

#include <cmath>
#include <functional>
#include <limits>
#include <tuple>
#include <iomanip>
#include <sstream>

#include "common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {

namespace k = schema::key;
namespace c1 = schema::ch01;
namespace cfg = schema::config_key;

/// The getter over seeds of a number of the sweep's model with latent size
/// `nz` (printed as in metrics.json), `get` applied to that model's record.
std::function<double(const json&)> model_value(const std::string& nz,
                                               const std::function<double(const json&)>& get) {
  return [nz, get](const json& m) {
    for (const auto& mo : m.at(c1::kModels)) {
      if (mo.at(c1::kNz).dump() == nz && mo.value(c1::kRole, c1::kRoleSweep) == c1::kRoleSweep)
        return get(mo);
    }
    return std::numeric_limits<double>::quiet_NaN();
  };
}

/// KW2013's digitised curves, read before the run (the first base of Sections).
struct Kw2013Curves {
  explicit Kw2013Curves(const RenderContext& c) : kw_curves(read_kw_curves(c.options, c.outcome)) {}

  /// KW2013's digitised curves; empty, with a warning, when unreadable.
  static json read_kw_curves(const Options& options, Outcome& outcome) {
    json kw_curves = json::object();
    try {
      kw_curves = read_json(fs::path(options.paths.published) / "kw2013_fig2.json").at("curves");
    } catch (const std::exception& e) {
      outcome.warnings.push_back(std::string("KW2013 curves unavailable: ") + e.what());
    }
    return kw_curves;
  }

  const json kw_curves;  ///< "MNIST Nz=N" -> {"AEVB train", "AEVB test"}: [[samples, bound]]
};

/// What every section of chapter 1 reads: KW2013's digitised curves, the run
/// (read once) and the published numbers. Each section renders one
/// placeholder of the chapter's template.
struct Sections : Kw2013Curves, ChapterSections {
  explicit Sections(const RenderContext& c)
      : Kw2013Curves(c),
        ChapterSections(c),
        published(c.published),
        slug(c.slug),
        kw(published.at("kw2013_fig2")),
        sumba(published.at("sumba2019_table1_vae_reimpl")),
        samples(view.config.at(cfg::kSamplesPerModel).get<double>()),
        models(view.metrics.at(c1::kModels)) {}

  std::string setup_table() const;
  std::string protocol_match() const;
  std::string curves_figure() const;
  std::string bounds_table() const;
  std::string bound_row(const json& m, bool comparable, Spread& best_log_px,
                        std::string& best_log_px_nz) const;
  void add_iwae_row(const Spread& best_log_px, const std::string& best_log_px_nz) const;
  std::string verdicts() const;
  void pictures(Vars& v) const;
  std::string frey_face() const;

  const json& published;
  const std::string& slug;
  const json kw;         ///< KW2013 Fig. 2's published values
  const json sumba;      ///< Sumba et al.'s re-implementation
  const double samples;  ///< training samples per model
  const json& models;
};

std::string Sections::setup_table() const {
  std::ostringstream os;
  os << setup_table_head(view);
  os << "| model | 784-" << md(str(config, c1::kConfigHidden)) << "-Nz, "
     << md(str(config, cfg::kActivation)) << ", Bernoulli decoder; " << md(str(config, cfg::kInit))
     << " |\n";
  const json opt = config.value(cfg::kOptimizer, json::object());
  os << "| optimizer | " << md(str(opt, cfg::kOptimizerName)) << ", learning rate "
     << md(str(opt, cfg::kLr)) << ", weight decay "
     << (opt.contains(cfg::kWeightDecay) && opt[cfg::kWeightDecay].is_number()
             ? sci(opt[cfg::kWeightDecay].get<double>())
             : "?")
     << ", minibatch " << md(str(config, cfg::kBatchSize)) << ", one latent sample per example |\n";
  os << "| bounds | the ELBO on the whole training and test sets at "
     << md(str(config, cfg::kEvalPoints)) << " points log-spaced in samples seen |\n\n";
  os << prov;
  return os.str();
}

/// Does the protocol match the paper's?
std::string Sections::protocol_match() const {
  std::ostringstream os;
  const bool same_data = dataset == kw.value("dataset", "mnist");
  os << "- **Dataset:** " << (same_data ? "matches" : "differs")
     << ". KW2013 used MNIST; this run used " << md(dataset) << "."
     << (same_data ? ""
                   : " The fresh bounds cannot be compared with the paper's numbers; only their "
                     "shape and ordering can.")
     << "\n";
  os << "- **Binarisation:** " << (protocol == "binarized" ? "unknown" : "differs")
     << ". KW2013 do not say how MNIST was binarised; this run used " << md(protocol) << "."
     << (protocol == "gray-bce" ? " Gray levels inside binary cross-entropy are not a likelihood."
                                : "")
     << "\n";
  os << "- **Budget:** " << (samples >= kw.value("budget_samples", 1e8) ? "matches" : "differs")
     << ". KW2013's numbers are read at " << sci(kw.value("budget_samples", 1e8))
     << " training samples; this run stopped at " << sci(samples) << ".\n";
  return os.str();
}

/// Curves with KW2013's digitised curves.
std::string Sections::curves_figure() const {
  Plot plot;
  plot.name = "ch01-curves";
  std::ostringstream data, script;
  int index = 0;
  std::vector<std::string> panels;
  std::vector<std::string> all_test;
  auto block = [&](const std::vector<std::pair<double, double>>& pts) {
    for (const auto& [x, y] : pts) data << std::setprecision(10) << x << ' ' << y << '\n';
    data << "\n\n";
    return index++;
  };
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                          "#9467bd", "#8c564b", "#e377c2"};
  int color = 0;
  for (const auto& m : models) {
    if (m.value(c1::kRole, c1::kRoleSweep) != c1::kRoleSweep) continue;
    const int64_t nz = m.at(c1::kNz).get<int64_t>();
    std::vector<std::pair<double, double>> tr, te;
    for (const auto& p : m.at(k::kCurve)) {
      tr.emplace_back(p.at(k::kSamplesSeen).get<double>(),
                      p.at(k::kTrain).at(k::kElbo).get<double>());
      te.emplace_back(p.at(k::kSamplesSeen).get<double>(),
                      p.at(k::kTest).at(k::kElbo).get<double>());
    }
    if (tr.empty()) continue;
    std::ostringstream plotcmd;
    const int itr = block(tr), ite = block(te);
    plotcmd << "set title 'N_z = " << nz << "'\nplot datafile index " << itr
            << " with linespoints lw 2 pt 7 ps 0.5 lc rgb '#1f77b4' title 'fresh train', datafile "
               "index "
            << ite << " with linespoints lw 2 dt 2 pt 7 ps 0.5 lc rgb '#d62728' title 'fresh test'";
    const std::string key = "MNIST Nz=" + std::to_string(nz);
    if (kw_curves.contains(key)) {
      for (const char* which : {"AEVB train", "AEVB test"}) {
        std::vector<std::pair<double, double>> pts;
        for (const auto& p : kw_curves[key].value(which, json::array()))
          pts.emplace_back(p[0].get<double>(), p[1].get<double>());
        if (pts.empty()) continue;
        const int i = block(pts);
        plotcmd << ", datafile index " << i << " with lines lw 1.5 "
                << (std::string(which) == "AEVB test" ? "dt 2 " : "")
                << "lc rgb '#777777' title 'KW2013 " << (which + 5) << " (MNIST, D)'";
      }
    }
    panels.push_back(plotcmd.str());
    all_test.push_back("datafile index " + std::to_string(ite) +
                       " with linespoints lw 2 pt 7 ps 0.5 lc rgb '" + colors[color++ % 7] +
                       "' title 'N_z = " + std::to_string(nz) + "'");
  }
  if (!all_test.empty()) {
    std::string last = "set title 'fresh test bounds, all N_z'\nplot ";
    for (size_t i = 0; i < all_test.size(); ++i) last += (i ? ", " : "") + all_test[i];
    panels.push_back(last);
  }
  const int cols = 3, rows = static_cast<int>((panels.size() + cols - 1) / cols);
  script << "set logscale x\nset format x '10^{%L}'\nset grid lc rgb '#dddddd'\n"
         << "set key bottom right font ',8' samplen 2\nset xlabel 'training samples seen'\n"
         << "set ylabel 'lower bound (nats)'\n"
         << "set multiplot layout " << rows << "," << cols
         << " title 'ELBO per datapoint against training samples: fresh (" << gnuplot_text(dataset)
         << ", " << gnuplot_text(protocol) << ") and KW2013 Fig. 2 (MNIST, digitised)'\n";
  for (const auto& p : panels) script << p << "\n";
  script << "unset multiplot\n";
  plot.data = data.str();
  plot.script = script.str();
  if (rows > 1) {
    plot.size_svg = "1050,700";
    plot.size_pdf = "9.5in,6.3in";
  }
  std::ostringstream os;
  if (panels.empty()) {
    os << "*No curve to draw: the run recorded no evaluation points.*\n";
  } else {
    os << plotted_figure(
        plot,
        "The lower bound on the whole training set (solid) and test set (dashed) against training "
        "samples seen, one panel per latent size; in gray KW2013's digitised AEVB curves for "
        "MNIST. "
        "The last panel sets the fresh test curves side by side.",
        options, outcome, "100%",
        "*The figure could not be drawn (gnuplot failed); the numbers are in the table below and "
        "in " +
            md(st.dir) + "/curves/.*\n");
  }
  os << "\n" << prov;
  return os.str();
}

// Final bounds beside the published ones. A difference is printed only
// where the numbers can be compared: same dataset, a binarised protocol, and
// KW2013's curve read at this run's own number of training samples. With
// several seeds each fresh number is their mean and spread.
std::string Sections::bounds_table() const {
  const bool comparable = dataset == kw.value("dataset", "mnist") && protocol == "binarized";
  const std::string ks = md(kw.value("status", "?"));
  const double kw_budget = kw.value("budget_samples", 1e8);
  const std::string n_seeds = std::to_string(st.seed_runs.size());
  // The log p(x) column's K and points, from the first model that has them.
  std::string marginal_setting = "K, points";
  for (const auto& m : models) {
    const json mg = m.value(c1::kMarginal, json());
    if (mg.is_object()) {
      marginal_setting =
          "K = " + mg.value(c1::kK, json()).dump() + ", " + md(mg.value(c1::kPoints, ""));
      break;
    }
  }
  std::ostringstream os;
  os << "| Nz | fresh train | fresh test | KL, test | log p(x), test (" << marginal_setting
     << ") | KW2013 train at " << sci(kw_budget) << " (" << ks << ") | KW2013 test at "
     << sci(kw_budget) << " (" << ks << ") | KW2013 test at this run's " << sci(samples)
     << " samples (" << ks
     << ") | fresh test minus KW2013 at the same samples | Sumba et al. test ("
     << md(sumba.value("status", "?"))
     << ") |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  Spread best_log_px;
  std::string best_log_px_nz;
  for (const auto& m : models) {
    if (m.value(c1::kRole, c1::kRoleSweep) != c1::kRoleSweep) continue;
    os << bound_row(m, comparable, best_log_px, best_log_px_nz);
  }
  add_iwae_row(best_log_px, best_log_px_nz);
  os << "\nFresh: ELBO in nats per datapoint summed over pixels, on the whole training and test "
        "sets, "
     << md(dataset) << ", " << md(protocol) << ", " << sci(samples) << " samples per model"
     << (st.seed_runs.size() > 1
             ? "; mean &plusmn; sample standard deviation over " + n_seeds + " seeds"
             : "; one seed")
     << ". log p(x): the importance-sampled estimate "
        "(IWAE's estimator: log of the mean of K weights p(x, z)/q(z|x), a lower bound in "
        "expectation) on the test "
        "points named. ";
  if (comparable) {
    os << "The difference is the fresh test bound minus KW2013's test curve read at the same "
          "number of training "
          "samples (positive: the fresh bound is higher); KW2013 do not state their binarisation, "
          "so even this "
          "comparison carries that caveat. ";
  } else {
    os << "**Not compared.** This run used " << md(dataset) << " with the " << md(protocol)
       << " protocol; KW2013's numbers are MNIST bounds, so no difference is computed. ";
  }
  os << "KW2013: " << md(kw.value("source", "")) << "; " << md(kw.value("quantity", ""))
     << "; status " << ks
     << " (digitised, read error about 0.5 nat). Sumba et al.: " << md(sumba.value("source", ""))
     << "; binarisation: " << md(sumba.value("binarization", "")) << "; "
     << md(sumba.value("setup", "")) << "; status " << md(sumba.value("status", "?"))
     << ". IWAE-style tables (Burda et al. 2015, Table 1: 86.76 nats for a "
     << "1-layer VAE) use another network (784-200-200-50) and budget; the log p(x) column is set "
        "beside them in "
        "the fidelity table for orientation only.\n\n"
     << prov;
  return os.str();
}

/// The bounds table's row of the sweep's model `m`, and its fidelity rows:
/// KW2013's curves read at the fresh budget, Sumba et al.'s test bound.
/// Keeps in `best_log_px` the best log p(x) estimate so far, and its Nz.
std::string Sections::bound_row(const json& m, bool comparable, Spread& best_log_px,
                                std::string& best_log_px_nz) const {
  const double kw_budget = kw.value("budget_samples", 1e8);
  std::ostringstream os;
  const std::string nz = m.at(c1::kNz).dump();
  auto final_of = [](const char* split, const char* what) {
    return
        [split, what](const json& mo) { return mo.at(k::kFinal).at(split).at(what).get<double>(); };
  };
  const Spread tr = over_seeds(st, model_value(nz, final_of(k::kTrain, k::kElbo)));
  const Spread te = over_seeds(st, model_value(nz, final_of(k::kTest, k::kElbo)));
  const Spread kl = over_seeds(st, model_value(nz, final_of(k::kTest, k::kKl)));
  const Spread lpx =
      over_seeds(st, model_value(nz, [](const json& mo) {
                   return mo.at(c1::kMarginal).at(c1::kLogPx).at(k::kMean).get<double>();
                 }));
  const json marginal = m.value(c1::kMarginal, json());
  const double seen = m.at(k::kSamplesSeen).get<double>();
  const json kwv = kw.at("values").value(nz, json::object());
  const json sv = sumba.at("values").value(nz, json::object());
  auto kw_curve = [&](const char* which) {
    std::vector<std::pair<double, double>> pts;
    const std::string key = "MNIST Nz=" + nz;
    if (kw_curves.contains(key)) {
      for (const auto& p : kw_curves[key].value(which, json::array()))
        pts.emplace_back(p[0].get<double>(), p[1].get<double>());
    }
    return interpolate_log_x(pts, seen);
  };
  const double kw_same = kw_curve("AEVB test"), kw_same_train = kw_curve("AEVB train");
  std::string diff = "not compared";
  if (comparable && std::isfinite(kw_same))
    diff = (te.mean - kw_same >= 0 ? "+" : "") + fmt1(te.mean - kw_same);
  std::string lpx_text = "not estimated";
  if (marginal.is_object() && lpx.n() > 0) {
    lpx_text = spread_text(lpx, true);
    if (!std::isfinite(best_log_px.mean) || lpx.mean > best_log_px.mean) {
      best_log_px = lpx;
      best_log_px_nz = nz;
    }
  }
  os << "| " << nz << " | " << spread_text(tr, true) << " | " << spread_text(te, true) << " | "
     << spread_text(kl, true) << " | " << lpx_text << " | " << fmt1(kwv.value("train", json()))
     << " | " << fmt1(kwv.value("test", json())) << " | "
     << (std::isfinite(kw_same) ? fmt1(kw_same) : std::string("outside the curve")) << " | " << diff
     << " | " << fmt1(sv.value("test", json())) << " |\n";

  // The fidelity rows: KW2013's curves read at the fresh budget.
  const std::string data_text =
      md(dataset) + ", " + md(protocol) + " (paper: MNIST, binarisation not stated)";
  const std::string budget_text =
      sci(seen) + " (paper: its curve at the same samples; " + sci(kw_budget) + " at its end)";
  for (const auto& [split, fresh, kw_at] :
       {std::tuple<std::string, Spread, double>{"test", te, kw_same},
        std::tuple<std::string, Spread, double>{"train", tr, kw_same_train}}) {
    FidelityRow row;
    row.chapter = "01";
    row.source = "KW2013 Fig. 2";
    row.status = kw.value("status", "?");
    row.quantity = split + " bound, Nz = " + nz;
    row.data = data_text;
    row.budget = budget_text;
    row.published =
        std::isfinite(kw_at)
            ? fmt1(kw_at) + " (" + fmt1(kwv.value(split, json())) + " at " + sci(kw_budget) + ")"
            : "off the digitised curve (" + fmt1(kwv.value(split, json())) + " at " +
                  sci(kw_budget) + ")";
    row.fresh = spread_text(fresh, true);
    curve_verdict(row, fresh, kw_at, comparable,
                  md(dataset) + ", " + md(protocol) + " against MNIST bounds");
    ctx.outcome.fidelity.push_back(row);
  }
  FidelityRow srow;
  srow.chapter = "01";
  srow.source = sumba.value("cite", "Sumba et al. 2019, Table 1") + " (re-implementation)";
  srow.status = sumba.value("status", "?");
  srow.quantity = "test bound, Nz = " + nz;
  srow.data = md(dataset) + ", " + md(protocol) + " (paper: MNIST, threshold x > 0)";
  srow.budget = sci(seen) + " (paper: " + sci(sumba.value("budget_samples", 6e6)) + ", 100 epochs)";
  srow.published = fmt1(sv.value("test", json()));
  srow.fresh = spread_text(te, true);
  srow.verdict = "not compared: fixed-threshold binarisation, not dynamic (chapter 7's protocol)";
  ctx.outcome.fidelity.push_back(srow);
  return os.str();
}

/// IWAE's 1-layer VAE beside the best fresh log p(x), for orientation.
void Sections::add_iwae_row(const Spread& best_log_px, const std::string& best_log_px_nz) const {
  const json iwae = published.value("burda2015_table1", json::object());
  FidelityRow row;
  row.chapter = "01";
  row.source = iwae.value("cite", "IWAE, Table 1") + " (1-layer VAE, k = 1)";
  row.status = iwae.value("status", "?");
  row.quantity = "test log p(x), K = 5000";
  row.data = md(dataset) + ", " + md(protocol) + " (paper: MNIST, dynamic binarisation)";
  row.budget =
      sci(samples) + " (paper: 3280 passes, " + sci(iwae.value("budget_samples", 1.968e8)) + ")";
  row.published =
      iwae.contains("values")
          ? "-" + fmt1(iwae["values"].value("vae k=1", json::object()).value("nll", json()))
          : "?";
  row.fresh = best_log_px.n()
                  ? spread_text(best_log_px, true) + " (the best fresh Nz, " + best_log_px_nz + ")"
                  : "not estimated";
  row.verdict =
      "not compared: another network (784-200-200-50, Adam, batch 20) and budget; for orientation";
  ctx.outcome.fidelity.push_back(row);
}

/// Verdicts, computed by the chapter from its own numbers.
std::string Sections::verdicts() const {
  std::ostringstream os;
  os << verdicts_md(view, slug);
  os << seed_verdicts_md(st);
  os << "\n" << prov;
  return os.str();
}

/// Pictures from the run: reconstructions, the manifold, prior samples.
void Sections::pictures(Vars& v) const {
  const json images = metrics.value(k::kImages, json::object());
  std::ostringstream rec, man, sam;
  const std::string r =
      copy_image(st, slug, images.value(c1::kImageReconstructions, ""), options.paths, outcome);
  if (!r.empty()) {
    rec << figure_md(r,
                     "Reconstructions of the first test images (as scored). " +
                         md(metrics.value(c1::kReconstructionRows, "")) + ".",
                     "70%")
        << "\n"
        << prov;
  }
  const std::string m =
      copy_image(st, slug, images.value(c1::kImageManifold, ""), options.paths, outcome);
  if (!m.empty()) {
    man << figure_md(m,
                     "The learned 2-D manifold: decoder means on a 20 x 20 grid over the prior's "
                     "quantiles 0.05 to 0.95 (Nz = 2).",
                     "60%")
        << "\n"
        << prov;
  } else {
    man << "*No manifold figure in this run (--manifold-nz 0).*\n";
  }
  std::string order;
  for (const auto& mo : models) {
    const std::string tag = c1::image_samples(mo.at(c1::kNz).dump());
    const std::string ref = copy_image(st, slug, images.value(tag, ""), options.paths, outcome);
    if (ref.empty()) continue;
    sam << "![](" << ref << "){width=15%} ";
    order += (order.empty() ? "" : ", ") + mo.at(c1::kNz).dump();
  }
  if (!order.empty()) sam << "\n\nLeft to right: $N_z$ = " << order << ".\n\n";
  sam << prov;
  v["reconstructions_figure"] = rec.str();
  v["manifold_figure"] = man.str();
  v["samples_figures"] = sam.str();
}

std::string Sections::frey_face() const {
  const json frey = metrics.value(c1::kFreyFace, json::object());
  return "Frey Face: " + md(frey.value(c1::kStatus, "?")) + ". " + md(frey.value(c1::kReason, "")) +
         ".\n";
}

}  // namespace

Vars render_elbo_vs_latent(const RenderContext& ctx) {
  const Sections c(ctx);
  Vars v;
  v["setup_table"] = c.setup_table();
  v["protocol_match"] = c.protocol_match();
  v["curves_figure"] = c.curves_figure();
  v["bounds_table"] = c.bounds_table();
  v["verdicts"] = c.verdicts();
  c.pictures(v);
  v["frey_face"] = c.frey_face();
  v["provenance"] = c.prov;
  return v;
}

}  // namespace vaerepro::report
