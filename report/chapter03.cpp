/// \file chapter03.cpp
/// The report's chapter 3: reconstruction and KL along training for each
/// beta, the rate/distortion curve, active units, pictures and traversals.

#include <cmath>
#include <iomanip>
#include <sstream>

#include "common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {
std::string beta_text(const json& b) {
  std::ostringstream os;
  os << b.get<double>();
  return os.str();
}

namespace k = schema::key;
namespace c3 = schema::ch03;
namespace cfg = schema::config_key;

/// What every section of chapter 3 reads: the run, read once. Each section
/// renders one placeholder of the chapter's template.
struct Sections : ChapterSections {
  explicit Sections(const RenderContext& c)
      : ChapterSections(c),
        sweep(view.metrics.at(c3::kSweep)),
        units(view.protocol == "gray-bce" ? "BCE of gray levels, not nats of a likelihood"
                                          : "nats") {}

  std::string setup_table() const;
  std::string curves_figure() const;
  std::string rd_figure() const;
  std::string rd_table() const;
  std::string pictures() const;
  std::string traversals() const;

  const json& sweep;
  const std::string units;  ///< of the reconstruction term
};

std::string Sections::setup_table() const {
  std::ostringstream os;
  os << setup_table_head(view);
  os << "| sweep model | " << md(str(config, cfg::kArchitecture)) << ", "
     << md(str(config, cfg::kActivation)) << ", Bernoulli decoder |\n";
  os << "| traversal models | Nz = " << md(str(config, c3::kConfigTraversalNz)) << " (and "
     << md(str(config, c3::kConfigAppendixNz)) << "), condition "
     << md(str(config, c3::kConfigTraversalCondition)) << ", beta "
     << md(config.value(c3::kConfigTraversalBetas, json()).dump()) << " |\n";
  const json opt = config.value(cfg::kOptimizer, json::object());
  os << "| optimizer | " << md(str(opt, cfg::kOptimizerName)) << ", learning rate "
     << md(str(opt, cfg::kLr)) << ", minibatch " << md(str(config, cfg::kBatchSize)) << " |\n\n"
     << prov;
  return os.str();
}

/// Reconstruction and KL along training, one line per beta (seed Fig. 6).
std::string Sections::curves_figure() const {
  Plot plot;
  plot.name = "ch03-curves";
  plot.size_svg = "1000,430";
  plot.size_pdf = "9in,3.9in";
  std::ostringstream data, rec_cmd, kl_cmd;
  int index = 0;
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                          "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  int c = 0;
  for (const auto& p : sweep) {
    std::ostringstream rec, kl;
    for (const auto& q : p.at(k::kCurve)) {
      const double seen = q.at(k::kSamplesSeen).get<double>();
      rec << std::setprecision(10) << seen << ' '
          << -q.at(k::kTest).at(k::kLogLikelihood).get<double>() << '\n';
      kl << std::setprecision(10) << seen << ' ' << q.at(k::kTest).at(k::kKl).get<double>() << '\n';
    }
    data << rec.str() << "\n\n" << kl.str() << "\n\n";
    const std::string style = std::string(" with linespoints lw 2 pt 7 ps 0.5 lc rgb '") +
                              colors[c++ % 8] + "' title 'beta = " + beta_text(p.at(k::kBeta)) +
                              "'";
    rec_cmd << (index ? ", " : "") << "datafile index " << index << style;
    kl_cmd << (index ? ", " : "") << "datafile index " << index + 1 << style;
    index += 2;
  }
  plot.data = data.str();
  plot.script =
      "set logscale x\nset format x '10^{%L}'\nset grid lc rgb '#dddddd'\nset key top right font "
      "',8'\n"
      "set xlabel 'training samples seen'\nset multiplot layout 1,2 title 'Test reconstruction "
      "loss and KL along training (" +
      gnuplot_text(dataset) + ", " + gnuplot_text(protocol) +
      ")'\nset title 'reconstruction loss'\nset ylabel 'reconstruction loss'\nplot " +
      rec_cmd.str() + "\nset title 'KL'\nset ylabel 'KL (nats)'\nplot " + kl_cmd.str() +
      "\nunset multiplot\n";
  std::ostringstream os;
  if (index == 0) {
    os << "*No curve to draw.*\n";
  } else {
    os << plotted_figure(plot,
                         "Test reconstruction loss (left) and KL (right) along training, one line "
                         "per beta (seed 000 Fig. 6).",
                         options, outcome);
  }
  os << "\n" << prov;
  return os.str();
}

/// The rate/distortion curve.
std::string Sections::rd_figure() const {
  Plot plot;
  plot.name = "ch03-rate-distortion";
  plot.size_svg = "700,480";
  plot.size_pdf = "6in,4.1in";
  std::ostringstream data;
  for (const auto& p : sweep) {
    const json& test = p.at(k::kFinal).at(k::kTest);
    data << test.at(k::kKl).get<double>() << ' ' << -test.at(k::kLogLikelihood).get<double>()
         << " \"" << beta_text(p.at(k::kBeta)) << "\"\n";
  }
  plot.data = data.str();
  plot.script =
      "set grid lc rgb '#dddddd'\nset xlabel 'rate: KL (nats)'\nset ylabel 'distortion: "
      "reconstruction loss'\n"
      "set title 'Rate against distortion across beta (test set; labels: beta)'\nset offsets graph "
      "0.05, graph 0.05, graph 0.05, graph 0.05\n"
      "plot datafile using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' notitle, datafile using "
      "1:2:3 with labels offset 1.2,0.8 font ',9' notitle\n";
  std::ostringstream os;
  if (sweep.empty()) {
    os << "*No point to draw.*\n";
  } else {
    os << plotted_figure(plot,
                         "Rate (KL) against distortion (reconstruction loss) at the end of "
                         "training, one point per beta.",
                         options, outcome, "65%");
  }
  os << "\n" << prov;
  return os.str();
}

std::string Sections::rd_table() const {
  std::ostringstream os;
  os << "| beta | reconstruction | KL | reconstruction + KL | beta-weighted loss | active units | "
        "dimensions with KL > 0.1 nat |\n"
     << "|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& p : sweep) {
    const double rec = -p.at(k::kFinal).at(k::kTest).at(k::kLogLikelihood).get<double>();
    const double kl = p.at(k::kFinal).at(k::kTest).at(k::kKl).get<double>();
    int informative = 0;
    for (const auto& d : p.value(c3::kKlPerDim, json::array()))
      informative += d.get<double>() > 0.1 ? 1 : 0;
    os << "| " << beta_text(p.at(k::kBeta)) << " | " << fmt1(rec) << " | " << fmt1(kl) << " | "
       << fmt1(rec + kl) << " | " << fmt1(rec + p.at(k::kBeta).get<double>() * kl) << " | "
       << p.value(c3::kActiveUnits, json()).dump() << " of "
       << p.value(c3::kKlPerDim, json::array()).size() << " | " << informative << " |\n";
  }
  os << "\nTest set, at the end of training. Reconstruction: " << md(units)
     << ". Active units: dimensions with "
        "Cov_x(E_q[z_j]) > 0.01 (Burda et al. 2015). Seed 000 reports no numbers for its beta "
        "sweep, only curves "
        "and pictures (Figs. 6-8); its statements are set beside the verdicts below.\n\n"
     << prov;
  return os.str();
}

/// Pictures per beta.
std::string Sections::pictures() const {
  std::ostringstream os;
  for (const auto& p : sweep) {
    const std::string dir = p.value(k::kDir, "");
    const std::string folder = ctx.slug + "/" + p.value(k::kName, "x");
    const json images = p.value(k::kImages, json::object());
    const std::string r =
        copy_image(st, folder, dir + "/" + images.value(c3::kImageReconstructions, ""),
                   options.paths, outcome);
    const std::string s = copy_image(st, folder, dir + "/" + images.value(c3::kImageSamples, ""),
                                     options.paths, outcome);
    os << "beta = " << beta_text(p.at(k::kBeta)) << ": ";
    if (!r.empty()) os << "![](" << r << "){width=40%} ";
    if (!s.empty()) os << "![](" << s << "){width=22%}";
    os << "\n\n";
  }
  os << "Each row: the first ten test images above their reconstructions, then 100 samples from "
        "the prior (decoder means).\n\n"
     << prov;
  return os.str();
}

/// Traversals.
std::string Sections::traversals() const {
  std::ostringstream os;
  for (const auto& t : metrics.value(c3::kTraversals, json::array())) {
    os << "**" << md(t.value(k::kName, "?")) << "** (" << md(t.value(k::kArchitecture, ""))
       << ", condition " << md(t.value(c3::kCondition, "")) << ", beta "
       << beta_text(t.at(k::kBeta)) << "; " << t.value(c3::kActiveUnits, json()).dump()
       << " active units; rows: " << md(t.value(c3::kTraversalRows, ""))
       << "; columns: -2 to +2 standard deviations, then the heat map |decode(+1) - "
          "decode(-1)|):\n\n";
    for (const auto& g : t.value(c3::kTraversals, json::array())) {
      const std::string ref =
          copy_image(st, ctx.slug + "/" + t.value(k::kName, "x"),
                     t.value(k::kDir, "") + "/" + g.value(c3::kImage, ""), options.paths, outcome);
      if (ref.empty()) continue;
      os << figure_md(ref,
                      "Latent variable " + g.value(c3::kDim, json()).dump() + ": KL " +
                          fmt1(g.value(k::kKl, json())) + " nats, activity " +
                          sci(g.value(c3::kActivity, 0.0)) + ".",
                      "45%");
    }
    os << "\n";
  }
  os << prov;
  return os.str();
}

}  // namespace

Vars render_beta_sweep(const RenderContext& ctx) {
  const Sections c(ctx);
  Vars v;
  v["setup_table"] = c.setup_table();
  v["curves_figure"] = c.curves_figure();
  v["rd_figure"] = c.rd_figure();
  v["rd_table"] = c.rd_table();
  v["verdicts"] = verdicts_md(c.view, ctx.slug) + seed_verdicts_md(c.st) + "\n" + c.prov;
  v["pictures"] = c.pictures();
  v["traversals"] = c.traversals();
  return v;
}

}  // namespace vaerepro::report
