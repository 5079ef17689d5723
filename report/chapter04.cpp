/// \file chapter04.cpp
/// The report's chapter 4: generation grids, the conditional accuracy of raw
/// and one-hot CVAEs against an unconditional baseline, the benchmark beside
/// seed 000's Tables 1-2, and the 2-D latent scatter.

#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <functional>
#include <limits>

#include "common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {
std::string pct(const json& v) {
  return v.is_number() ? fmt1(100 * v.get<double>()) + "%" : "n/a";
}

namespace k = schema::key;
namespace c4 = schema::ch04;
namespace c5 = schema::ch05;
namespace cfg = schema::config_key;

/// What every section of chapter 4 reads: the run (read once) and seed
/// 000's Tables 1 and 2. Each section renders one placeholder of the
/// chapter's template.
struct Sections : ChapterSections {
  explicit Sections(const RenderContext& c)
      : ChapterSections(c),
        t1(c.published.at("seed000_table1")),
        t2(c.published.at("seed000_table2")),
        comparable(view.dataset == "mnist" && view.protocol == "gray-bce") {}

  std::string setup_table() const;
  std::string generation_figures() const;
  std::string accuracy_table() const;
  std::string benchmark_table() const;
  void add_benchmark_fidelity_rows() const;
  std::string latent_figure() const;

  const json t1, t2;  ///< seed 000's Tables 1 and 2
  /// Seed 000's setting: gray-level MNIST in binary cross-entropy.
  const bool comparable;
};

std::string Sections::setup_table() const {
  std::ostringstream os;
  os << setup_table_head(view);
  os << "| models | " << md(str(config, cfg::kArchitecture)) << ", "
     << md(str(config, cfg::kActivation)) << "; VAE, beta-VAE (beta "
     << md(str(config, c4::kConfigBetaBvae)) << "), CVAE one-hot, CVAE raw |\n";
  os << "| judge | " << md(str(config, c4::kConfigClassifier)) << ", "
     << md(str(config, c4::kConfigClassifierEpochs)) << " epochs: test accuracy "
     << pct(metrics.value(c4::kClassifierAccuracy, json())) << " |\n";
  os << "| conditional accuracy | " << md(str(config, c4::kConfigPerLabel))
     << " samples per label |\n\n"
     << prov;
  return os.str();
}

std::string Sections::generation_figures() const {
  const json images = metrics.value(k::kImages, json::object());
  std::ostringstream os;
  for (const auto& [key, label] : std::vector<std::pair<std::string, std::string>>{
           {c4::image_generation(c4::kModelCvaeRaw), "raw label (seed Fig. 9)"},
           {c4::image_generation(c4::kModelCvaeOneHot), "one-hot label (seed Fig. 10)"},
           {c4::image_generation(c4::kModelVae),
            "unconditional VAE (rows mean nothing: the baseline)"}}) {
    const std::string ref = copy_image(st, ctx.slug, images.value(key, ""), options.paths, outcome);
    if (!ref.empty())
      os << figure_md(ref, "Generation conditioned on the " + label + ": row r asks for label r.",
                      "45%");
  }
  os << "\n" << prov;
  return os.str();
}

std::string Sections::accuracy_table() const {
  const json acc = metrics.value(c4::kConditionalAccuracy, json::object());
  const json raw = acc.value(c4::kModelCvaeRaw, json::object()),
             one_hot = acc.value(c4::kModelCvaeOneHot, json::object()),
             vae = acc.value(c4::kModelVae, json::object());
  std::ostringstream os;
  os << "| label | raw | one-hot | unconditional (baseline) |\n|---:|---:|---:|---:|\n";
  const json no_labels = json::array();
  const json &raw_labels = raw.value(c4::kPerLabel, no_labels),
             &one_hot_labels = one_hot.value(c4::kPerLabel, no_labels),
             &vae_labels = vae.value(c4::kPerLabel, no_labels);
  for (size_t i = 0; i < one_hot_labels.size(); ++i) {
    auto at = [i](const json& labels) { return i < labels.size() ? labels[i] : json(); };
    os << "| " << i << " | " << pct(at(raw_labels)) << " | " << pct(at(one_hot_labels)) << " | "
       << pct(at(vae_labels)) << " |\n";
  }
  auto overall = [](const json& a) {
    return "**" + pct(a.value(c4::kOverall, json())) + "** &plusmn; " +
           pct(a.value(k::kStandardError, json()));
  };
  os << "| **all** | " << overall(raw) << " | " << overall(one_hot) << " | " << overall(vae)
     << " |\n\n"
     << "The fraction of generated samples the classifier assigns to the label they were "
        "generated for (&plusmn; the "
        "binomial standard error). For the unconditional VAE the label is only the row's, so it "
        "measures chance (10% for a "
        "balanced judge). Seed 000 judged this by eye (Figs. 9-10).\n\n"
     << prov;
  return os.str();
}

/// The benchmark beside seed 000's Tables 1 and 2, with chapter 5's VQ-VAE row.
std::string Sections::benchmark_table() const {
  std::ostringstream os;
  os << "| model | MSE per pixel | seed T1 (S) | cross-entropy | seed T1 (S) | reconstruction | "
        "seed T2 (S) | KL | seed T2 (S) | "
        "reconstruction + beta KL | seed T2 (S) | training minutes | seed T2 (S) |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& b : metrics.value(c4::kBenchmark, json::array())) {
    const std::string name = b.value(k::kModel, "?");
    const json p1 = t1.at("values").value(name, json::object()),
               p2 = t2.at("values").value(name, json::object());
    const double rec = -b.at(k::kTest).at(k::kLogLikelihood).get<double>(),
                 kl = b.at(k::kTest).at(k::kKl).get<double>();
    std::ostringstream mse;
    mse << std::setprecision(2) << std::scientific << b.value(c4::kReconstructionMsePerPixel, 0.0);
    os << "| " << md(name) << " | " << mse.str() << " | "
       << (p1.contains("mse") ? sci(p1["mse"].get<double>()) : "") << " | "
       << fmt1(b.value(c4::kReconstructionCrossEntropy, json())) << " | "
       << fmt1(p1.value("cross_entropy", json())) << " | " << fmt1(rec) << " | "
       << fmt1(p2.value("reconstruction", json())) << " | " << fmt1(kl) << " | "
       << fmt1(p2.value("kl", json())) << " | " << fmt1(rec + b.value(k::kBeta, 1.0) * kl) << " | "
       << fmt1(p2.value("elbo_loss", json())) << " | " << fmt1(b.value(c4::kTrainMinutes, json()))
       << " | " << fmt1(p2.value("minutes", json())) << " |\n";
  }
  add_benchmark_fidelity_rows();
  // The fourth model of seed 000's benchmark is chapter 5's VQ-VAE (K = 10, D = 2): read, not
  // rerun.
  const ChapterState ch5 = load_chapter(ctx.options.paths.results, c5::kSlug);
  bool vq_row = false;
  if (ch5.kind == ChapterState::Kind::kComplete && ch5.metrics.is_object()) {
    for (const auto& st : ch5.metrics.value(c5::kSettings, json::array())) {
      if (st.value(c5::kCodes, json()) != json(10)) continue;
      const json t = st.value(c5::kVqvae, json::object()).value(c5::kTable1, json::object());
      std::ostringstream mse;
      mse << std::setprecision(2) << std::scientific << t.value(c5::kMsePerPixel, 0.0);
      os << "| vqvae (chapter 5, K = 10) | " << mse.str() << " | "
         << sci(t1["values"]["vqvae"]["mse"].get<double>()) << " | "
         << fmt1(t.value(c5::kCrossEntropy, json())) << " | "
         << fmt1(t1["values"]["vqvae"]["cross_entropy"]) << " | | | | | | | | |\n\n";
      vq_row = true;
      break;
    }
  }
  if (!vq_row) {
    os << "| vqvae | *chapter 5 not run* | " << sci(t1["values"]["vqvae"]["mse"].get<double>())
       << " | | " << fmt1(t1["values"]["vqvae"]["cross_entropy"]) << " | | | | | | | | |\n\n";
  }
  os << "Fresh: the first 100 test images (MSE per pixel of gray levels, cross-entropy summed over "
        "pixels per image) and the "
        "whole test set (reconstruction, KL) at the end of training, "
     << md(dataset) << ", " << md(protocol)
     << ". Seed 000 "
        "(status S): "
     << md(t1.value("source", "")) << "; " << md(t2.value("source", "")) << "; "
     << md(t2.value("setup", "")) << "; " << md(t2.value("binarization", "")) << ". "
     << (comparable ? "Same dataset and protocol; the budgets may differ (see the setup)."
                    : "**Not comparable**: this run used " + md(dataset) + " with " + md(protocol) +
                          "; the seed's numbers are for gray-level MNIST in BCE.")
     << " Seed 000 does not say how its MSE is normalised; its values (1e-4) suggest a different "
        "normalisation from ours.\n\n"
     << prov;
  return os.str();
}

/// The fidelity rows: Table 1's cross-entropy and Table 2's loss per model.
void Sections::add_benchmark_fidelity_rows() const {
  const double fresh_samples = number(config, cfg::kSamplesPerModel, 0.0);
  const double paper_samples =
      std::isfinite(budget.paper_amount) ? budget.paper_amount : t2.value("budget_samples", 1.2e8);
  const std::string data = md(dataset) + ", " + md(protocol) + " (paper: MNIST, gray-bce)";
  const std::string why = "this run used " + md(dataset) + " with " + md(protocol) +
                          "; seed 000's numbers are gray-level MNIST in BCE";
  for (const auto& b : metrics.value(c4::kBenchmark, json::array())) {
    const std::string name = b.value(k::kModel, "?");
    const json p1 = t1.at("values").value(name, json::object()),
               p2 = t2.at("values").value(name, json::object());
    auto value_of = [name](const std::function<double(const json&)>& get) {
      return [name, get](const json& mm) {
        for (const auto& bb : mm.at(c4::kBenchmark)) {
          if (bb.value(k::kModel, "") == name) return get(bb);
        }
        return std::numeric_limits<double>::quiet_NaN();
      };
    };
    if (p1.contains("cross_entropy")) {
      const Spread ce = over_seeds(st, value_of([](const json& bb) {
                                     return bb.at(c4::kReconstructionCrossEntropy).get<double>();
                                   }));
      ctx.outcome.fidelity.push_back(budget_row(
          "04", t1, "reconstruction cross-entropy of 100 test images, " + name, data, fresh_samples,
          paper_samples, p1["cross_entropy"].get<double>(), ce, comparable, why));
    }
    if (p2.contains("elbo_loss")) {
      const Spread loss =
          over_seeds(st, value_of([](const json& bb) {
                       const json& test = bb.at(k::kTest);
                       return -test.at(k::kLogLikelihood).get<double>() +
                              bb.value(k::kBeta, 1.0) * test.at(k::kKl).get<double>();
                     }));
      FidelityRow row =
          budget_row("04", t2, "reconstruction + beta KL (loss), " + name, data, fresh_samples,
                     paper_samples, p2["elbo_loss"].get<double>(), loss, comparable, why);
      row.quantity += " (fresh: test set; seed: training data, last 100 epochs)";
      ctx.outcome.fidelity.push_back(row);
    }
  }
}

std::string Sections::latent_figure() const {
  Plot plot;
  plot.name = "ch04-latent";
  plot.size_svg = "1050,380";
  plot.size_pdf = "9.5in,3.4in";
  std::ostringstream data, script;
  int index = 0;
  std::vector<std::string> panels;
  for (const auto& s : metrics.value(c4::kScatter, json::array())) {
    const fs::path csv = fs::path(st.dir) / s.value(c4::kCsv, "");
    std::ifstream in(csv);
    if (!in) {
      outcome.skipped.push_back(ctx.slug + ": " + csv.string() + " is missing");
      continue;
    }
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      for (char& ch : line)
        if (ch == ',') ch = ' ';
      data << line << '\n';
    }
    data << "\n\n";
    panels.push_back("set title '" + gnuplot_text(s.value(k::kModel, "?")) +
                     "'\nplot datafile index " + std::to_string(index++) +
                     " using 1:2:3 with points pt 7 ps 0.35 lc palette notitle");
  }
  script
      << "set palette defined (0 '#1f77b4', 1 '#ff7f0e', 2 '#2ca02c', 3 '#d62728', 4 '#9467bd', 5 "
         "'#8c564b', 6 '#e377c2', "
         "7 '#7f7f7f', 8 '#bcbd22', 9 '#17becf')\nset cbrange [-0.5:9.5]\nset cbtics 1\nset xlabel "
         "'z_1'\nset ylabel 'z_2'\n"
      << "set multiplot layout 1," << std::max<size_t>(1, panels.size())
      << " title 'Posterior means of test points, Nz = 2, coloured by label (seed 000 Fig. 13)'\n";
  for (const auto& p : panels) script << p << "\n";
  script << "unset multiplot\n";
  plot.data = data.str();
  plot.script = script.str();
  std::ostringstream os;
  if (panels.empty()) {
    os << "*No latent scatter in this run.*\n";
  } else {
    os << plotted_figure(plot,
                         "The 2-D latent space of VAE, beta-VAE and CVAE (one-hot) with Nz = 2: "
                         "posterior means of test points coloured by label.",
                         options, outcome);
  }
  os << "\n" << prov;
  return os.str();
}

}  // namespace

Vars render_cvae_labels(const RenderContext& ctx) {
  const Sections c(ctx);
  Vars v;
  v["setup_table"] = c.setup_table();
  v["generation_figures"] = c.generation_figures();
  v["accuracy_table"] = c.accuracy_table();
  v["benchmark_table"] = c.benchmark_table();
  v["latent_figure"] = c.latent_figure();
  v["verdicts"] = verdicts_md(c.view, ctx.slug) + seed_verdicts_md(c.st) + "\n" + c.prov;
  return v;
}

}  // namespace vaerepro::report
