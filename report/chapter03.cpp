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
}  // namespace

Vars render_beta_sweep(const RenderContext& ctx) {
  const ChapterState& st = ctx.state;
  const Options& options = ctx.options;
  Outcome& outcome = ctx.outcome;
  const auto [run, metrics, prov, dataset, protocol, config] = run_view(st);
  const json& sweep = metrics.at("sweep");
  const std::string units = protocol == "gray-bce" ? "BCE of gray levels, not nats of a likelihood" : "nats";
  Vars v;
  {
    std::ostringstream os;
    os << setup_table_head(run);
    os << "| sweep model | " << md(str(config, "architecture")) << ", " << md(str(config, "activation")) << ", Bernoulli decoder |\n";
    os << "| traversal models | Nz = " << md(str(config, "traversal_nz")) << " (and " << md(str(config, "appendix_nz"))
       << "), condition " << md(str(config, "traversal_condition")) << ", beta " << md(config.value("traversal_betas", json()).dump()) << " |\n";
    const json opt = config.value("optimizer", json::object());
    os << "| optimizer | " << md(str(opt, "name")) << ", learning rate " << md(str(opt, "lr")) << ", minibatch "
       << md(str(config, "batch_size")) << " |\n\n" << prov;
    v["setup_table"] = os.str();
  }
  // Reconstruction and KL along training, one line per beta (seed Fig. 6).
  {
    Plot plot;
    plot.name = "ch03-curves";
    plot.size_svg = "1000,430";
    plot.size_pdf = "9in,3.9in";
    std::ostringstream data, rec_cmd, kl_cmd;
    int index = 0;
    const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    int c = 0;
    for (const auto& p : sweep) {
      std::ostringstream rec, kl;
      for (const auto& q : p.at("curve")) {
        rec << std::setprecision(10) << q.at("samples_seen").get<double>() << ' ' << -q.at("test").at("log_likelihood").get<double>() << '\n';
        kl << std::setprecision(10) << q.at("samples_seen").get<double>() << ' ' << q.at("test").at("kl").get<double>() << '\n';
      }
      data << rec.str() << "\n\n" << kl.str() << "\n\n";
      const std::string style = std::string(" with linespoints lw 2 pt 7 ps 0.5 lc rgb '") + colors[c++ % 8] +
                                "' title 'beta = " + beta_text(p.at("beta")) + "'";
      rec_cmd << (index ? ", " : "") << "datafile index " << index << style;
      kl_cmd << (index ? ", " : "") << "datafile index " << index + 1 << style;
      index += 2;
    }
    plot.data = data.str();
    plot.script = "set logscale x\nset format x '10^{%L}'\nset grid lc rgb '#dddddd'\nset key top right font ',8'\n"
                  "set xlabel 'training samples seen'\nset multiplot layout 1,2 title 'Test reconstruction loss and KL along training (" +
                  gnuplot_text(dataset) + ", " + gnuplot_text(protocol) + ")'\nset title 'reconstruction loss'\nset ylabel 'reconstruction loss'\nplot " +
                  rec_cmd.str() + "\nset title 'KL'\nset ylabel 'KL (nats)'\nplot " + kl_cmd.str() + "\nunset multiplot\n";
    std::ostringstream os;
    if (index == 0) {
      os << "*No curve to draw.*\n";
    } else {
      os << plotted_figure(plot, "Test reconstruction loss (left) and KL (right) along training, one line per beta (seed 000 Fig. 6).", options, outcome);
    }
    os << "\n" << prov;
    v["curves_figure"] = os.str();
  }
  // The rate/distortion curve.
  {
    Plot plot;
    plot.name = "ch03-rate-distortion";
    plot.size_svg = "700,480";
    plot.size_pdf = "6in,4.1in";
    std::ostringstream data;
    for (const auto& p : sweep) {
      data << p.at("final").at("test").at("kl").get<double>() << ' ' << -p.at("final").at("test").at("log_likelihood").get<double>()
           << " \"" << beta_text(p.at("beta")) << "\"\n";
    }
    plot.data = data.str();
    plot.script = "set grid lc rgb '#dddddd'\nset xlabel 'rate: KL (nats)'\nset ylabel 'distortion: reconstruction loss'\n"
                  "set title 'Rate against distortion across beta (test set; labels: beta)'\nset offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n"
                  "plot datafile using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' notitle, datafile using 1:2:3 with labels offset 1.2,0.8 font ',9' notitle\n";
    std::ostringstream os;
    if (sweep.empty()) {
      os << "*No point to draw.*\n";
    } else {
      os << plotted_figure(plot, "Rate (KL) against distortion (reconstruction loss) at the end of training, one point per beta.", options, outcome, "65%");
    }
    os << "\n" << prov;
    v["rd_figure"] = os.str();
  }
  {
    std::ostringstream os;
    os << "| beta | reconstruction | KL | reconstruction + KL | beta-weighted loss | active units | dimensions with KL > 0.1 nat |\n"
       << "|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& p : sweep) {
      const double rec = -p.at("final").at("test").at("log_likelihood").get<double>();
      const double kl = p.at("final").at("test").at("kl").get<double>();
      int informative = 0;
      for (const auto& k : p.value("kl_per_dim", json::array())) informative += k.get<double>() > 0.1 ? 1 : 0;
      os << "| " << beta_text(p.at("beta")) << " | " << fmt1(rec) << " | " << fmt1(kl) << " | " << fmt1(rec + kl) << " | "
         << fmt1(rec + p.at("beta").get<double>() * kl) << " | " << p.value("active_units", json()).dump() << " of "
         << p.value("kl_per_dim", json::array()).size() << " | " << informative << " |\n";
    }
    os << "\nTest set, at the end of training. Reconstruction: " << md(units) << ". Active units: dimensions with "
          "Cov_x(E_q[z_j]) > 0.01 (Burda et al. 2015). Seed 000 reports no numbers for its beta sweep, only curves "
          "and pictures (Figs. 6-8); its statements are set beside the verdicts below.\n\n" << prov;
    v["rd_table"] = os.str();
  }
  v["verdicts"] = verdicts_md(metrics, "decided at this run's budget (" + md(str(run, "budget")) +
                                           "), a fraction of seed 000's 1000 epochs, on the run with seed " + str(run, "seed") + ".") +
                  seed_verdicts_md(st) + "\n" + prov;
  // Pictures per beta.
  {
    std::ostringstream os;
    for (const auto& p : sweep) {
      const std::string dir = p.value("dir", "");
      const json images = p.value("images", json::object());
      const std::string r = copy_image(st, ctx.slug + "/" + p.value("name", "x"), dir + "/" + images.value("reconstructions", ""), options.paths, outcome);
      const std::string s = copy_image(st, ctx.slug + "/" + p.value("name", "x"), dir + "/" + images.value("samples", ""), options.paths, outcome);
      os << "beta = " << beta_text(p.at("beta")) << ": ";
      if (!r.empty()) os << "![](" << r << "){width=40%} ";
      if (!s.empty()) os << "![](" << s << "){width=22%}";
      os << "\n\n";
    }
    os << "Each row: the first ten test images above their reconstructions, then 100 samples from the prior (decoder means).\n\n" << prov;
    v["pictures"] = os.str();
  }
  // Traversals.
  {
    std::ostringstream os;
    for (const auto& t : metrics.value("traversals", json::array())) {
      os << "**" << md(t.value("name", "?")) << "** (" << md(t.value("architecture", "")) << ", condition "
         << md(t.value("condition", "")) << ", beta " << beta_text(t.at("beta")) << "; " << t.value("active_units", json()).dump()
         << " active units; rows: " << md(t.value("traversal_rows", "")) << "; columns: -2 to +2 standard deviations, then the heat map |decode(+1) - decode(-1)|):\n\n";
      for (const auto& g : t.value("traversals", json::array())) {
        const std::string ref = copy_image(st, ctx.slug + "/" + t.value("name", "x"), t.value("dir", "") + "/" + g.value("image", ""), options.paths, outcome);
        if (ref.empty()) continue;
        os << figure_md(ref, "Latent variable " + g.value("dim", json()).dump() + ": KL " + fmt1(g.value("kl", json())) +
                                 " nats, activity " + sci(g.value("activity", 0.0)) + ".", "45%");
      }
      os << "\n";
    }
    os << prov;
    v["traversals"] = os.str();
  }
  return v;
}

}  // namespace vaerepro::report
