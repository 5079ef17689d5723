#pragma once
/// \file common.h
/// Helpers shared by the report generator and its chapter renderers: files,
/// Markdown escaping, formatting, gnuplot figures, copying a run's images.

#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "generator.h"
#include "vaerepro/schema/metrics.h"
#include "vaerepro/schema/run_record.h"

namespace vaerepro::report {

/// Placeholder values for a template.
using Vars = std::map<std::string, std::string>;

std::string read_text(const std::filesystem::path& p);
/// Writes the generator's own output (temporary file, rename); OutputError
/// naming the file and the system's reason on failure.
void write_text(const std::filesystem::path& p, const std::string& text);
/// Creates a folder of the generator's output; OutputError on failure.
void make_folder(const std::filesystem::path& p);
/// Copies a file into the generator's output; OutputError on failure.
void copy_output(const std::filesystem::path& from, const std::filesystem::path& to);
/// Why `rel` (a path from a run's metrics.json) may not be copied into the
/// report: empty, absolute, missing, resolving outside `run_dir` (.., a
/// symlink), not a regular file, or not a PNG. "" when it may.
std::string image_problem(const std::filesystem::path& run_dir, const std::string& rel);
/// Parses a JSON file; throws std::runtime_error naming the file.
nlohmann::json read_json(const std::filesystem::path& p);
bool have_program(const std::string& name);
int run_shell(const std::string& cmd);
/// Single-quotes for the shell.
std::string quote(const std::string& s);
/// Escapes text for a Markdown paragraph or table cell.
std::string md(const std::string& s);
/// j[key] as text (strings as they are, numbers dumped), else `fallback`.
std::string str(const nlohmann::json& j, const std::string& key, const std::string& fallback = "?");
/// j[key] as a double when j is an object holding a number there, else `fallback`.
double number(const nlohmann::json& j, const std::string& key, double fallback);
/// Three significant digits ("1.5e+06").
std::string sci(double v);

/// y at x on a curve of (x, y) points sorted by x, interpolated linearly in
/// log x; NaN outside the curve's range.
double interpolate_log_x(const std::vector<std::pair<double, double>>& curve, double x);

/// Text safe inside a gnuplot single-quoted string.
std::string gnuplot_text(const std::string& s);

/// A figure drawn by gnuplot as SVG (HTML) and PDF (LaTeX) into figures/.
struct Plot {
  std::string name;  ///< file stem in figures/
  std::string
      script;  ///< gnuplot commands after the terminal/output lines; `datafile` names the data
  std::string data;  ///< written to figures/<name>.dat
  std::string size_svg = "960,620";
  std::string size_pdf = "9in,5.8in";
};

/// Draws `plot` (both formats) and copies it into the report's figures/.
/// False (with a warning in `outcome`) when gnuplot fails.
bool draw(const Plot& plot, const Paths& paths, Outcome& outcome);

/// Copies a result's PNG into report/out/images/<slug>/ and returns the
/// relative reference, or "" (noted in outcome.skipped, with image_problem's
/// reason) when it may not be copied. OutputError when the copy fails.
std::string copy_image(const ChapterState& st, const std::string& slug, const std::string& rel,
                       const Paths& paths, Outcome& outcome);

/// A Markdown figure with a caption.
std::string figure_md(const std::string& ref, const std::string& caption,
                      const std::string& width = "100%");

struct RunView;
/// The first rows every chapter's setup table shares: the header, the
/// dataset, the protocol, the profile with its budget against the paper's
/// (as the run recorded it), and, for a result of an older layout, a row
/// saying so and how to regenerate it.
std::string setup_table_head(const RunView& view);

/// Draws `plot` and returns its Markdown figure; when gnuplot fails, the
/// note `fallback` instead (a generic one when empty).
std::string plotted_figure(const Plot& plot, const std::string& caption, const Options& options,
                           Outcome& outcome, const std::string& width = "100%",
                           const std::string& fallback = "");

/// The verdicts a run computed (metrics.checks), each with its criterion.
/// When the run's budget record says they are provisional, each is marked so
/// and a note gives the record's reason, the seed, `extra` (a chapter's own
/// caveat, may be empty) and, below the full profile, the command that
/// trains at the paper's budget (`make chapter-NN PROFILE=full`, from `slug`).
std::string verdicts_md(const RunView& view, const std::string& slug,
                        const std::string& extra = "");
/// With several seeds (st.seed_runs): how many of them each verdict holds in; "" for one seed.
std::string seed_verdicts_md(const ChapterState& st);

/// What every chapter renderer reads first from its run: run.json, the
/// metrics, the provenance line, the dataset, protocol and configuration the
/// run used, and its budget record (schema/run_record.h). Renderers take the
/// first six apart with a structured binding:
/// `const RunView view = run_view(st); const auto& [run, metrics, prov, dataset, protocol, config,
/// budget, version] = view;`
struct RunView {
  const nlohmann::json& run;
  const nlohmann::json& metrics;
  std::string provenance;  ///< provenance_line(run) and a newline
  std::string dataset;     ///< run.dataset.name
  std::string protocol;    ///< run.protocol.name
  nlohmann::json config;   ///< run.config
  schema::Budget
      budget;  ///< schema::read_budget(run, metrics): recorded, or rebuilt for an older layout
  int schema_version = schema::kSchemaVersion;  ///< schema::schema_version_of(run)
};
/// Throws (naming the key) when run.json lacks the dataset, protocol, config
/// or, in the current layout, the budget record.
RunView run_view(const ChapterState& st);

/// "make chapter-NN" for a chapter's slug "NN-...".
std::string make_command(const std::string& slug);
/// The note on a result written in an older results layout (sentences, no
/// final period): which, what is read from it, and the command that
/// regenerates it; "" for the current layout.
std::string older_layout_note(int schema_version, const std::string& slug);

/// A fresh number over the seeds that ran it (ChapterState::seed_runs).
struct Spread {
  std::vector<double> values;  ///< one per seed that has the number
  std::vector<int64_t> seeds;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  ///< sample standard deviation (n - 1); NaN
                                                         ///< for one seed
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
  size_t n() const { return values.size(); }
};
/// `get(metrics)` for every seed run (a missing key or a non-number leaves
/// that seed out: `get` may throw or return NaN).
Spread over_seeds(const ChapterState& st,
                  const std::function<double(const nlohmann::json& metrics)>& get);
/// "-101.2 (one seed)" for one seed; "-101.2 &plusmn; 0.4 (sd over 3 seeds, min -101.6, max
/// -100.9)" for several, or with `brief` "-101.2 &plusmn; 0.4 (3 seeds)".
std::string spread_text(const Spread& s, bool brief = false);
/// The verdict of a fresh value against a published one: within noise when
/// |fresh - published| <= 2 u, u^2 = sd^2 (1 + 1/n) + published_error^2: the
/// published number is one run, whose seed noise the n fresh seeds' sample
/// sd stands in for, and the fresh mean has sd^2 / n (`fallback_se`, e.g.
/// the estimator's standard error, replaces sd sqrt(1 + 1/n) when only one
/// seed ran). Returns {difference text, verdict text}.
std::pair<std::string, std::string> noise_verdict(
    const Spread& fresh, double published, double published_error,
    double fallback_se = std::numeric_limits<double>::quiet_NaN());
/// The read error of a published number by its status: 0.5 nat for D
/// (digitised), 0 otherwise (printed values; seed reports give no error bar).
double published_error(const std::string& status);

/// A fidelity row for a number from a seed report or a paper without an
/// error bar: the difference when `comparable`, and a verdict that says when
/// the fresh budget is under half the paper's (the difference then says how
/// far the run is, not whether the result holds) or why it is not compared.
FidelityRow budget_row(const std::string& chapter, const nlohmann::json& pub,
                       const std::string& quantity, const std::string& data, double fresh_samples,
                       double paper_samples, double published, const Spread& fresh, bool comparable,
                       const std::string& why_not);

/// The verdict of a row that compares with a published curve read at the
/// fresh run's own budget (`at_same_samples`, NaN off the curve): why not
/// compared, or noise_verdict's difference and verdict.
void curve_verdict(FidelityRow& row, const Spread& fresh, double at_same_samples, bool comparable,
                   const std::string& why_not,
                   double fallback_se = std::numeric_limits<double>::quiet_NaN());

/// What a chapter renderer gets.
struct RenderContext {
  const ChapterState& state;
  const nlohmann::json& published;  ///< report/published/published.json
  const Options& options;
  Outcome& outcome;
  std::string slug;
};

/// The base of a chapter renderer's sections (one member function per
/// placeholder of its template): the context and the run, read once
/// (run_view), under the names the sections use.
struct ChapterSections {
  explicit ChapterSections(const RenderContext& c)
      : ctx(c), st(c.state), options(c.options), outcome(c.outcome), view(run_view(st)) {}

  const RenderContext& ctx;
  const ChapterState& st;
  const Options& options;
  Outcome& outcome;
  const RunView view;
  const nlohmann::json& run = view.run;
  const nlohmann::json& metrics = view.metrics;
  const std::string& prov = view.provenance;
  const std::string& dataset = view.dataset;
  const std::string& protocol = view.protocol;
  const nlohmann::json& config = view.config;
  const schema::Budget& budget = view.budget;
};

/// Chapter 1: ELBO against latent size (chapter01.cpp).
Vars render_elbo_vs_latent(const RenderContext& ctx);
/// Chapter 1's full-budget run from Paths::full_results, beside KW2013 (full_budget.cpp).
std::string render_full_budget_ch01(const Paths& paths, const nlohmann::json& published);
/// Chapter 2: marginal likelihood, small vs large training set (chapter02.cpp).
Vars render_marginal_likelihood(const RenderContext& ctx);
/// Chapter 3: beta sweeps and traversals (chapter03.cpp).
Vars render_beta_sweep(const RenderContext& ctx);
/// Chapter 4: CVAE labels and the benchmark (chapter04.cpp).
Vars render_cvae_labels(const RenderContext& ctx);
/// Chapter 5: VQ-VAE with a PixelCNN prior (chapter05.cpp).
Vars render_vqvae_pixelcnn(const RenderContext& ctx);
/// The performance appendix from results/bench/bench.json (performance.cpp):
/// tables, ratios against issue #9's targets, the environment; or how to
/// produce it when it is missing or unreadable.
std::string render_performance(const Paths& paths, Outcome& outcome);
/// Each chapter's last run split by stage (run.json `time_spent`; time_spent.cpp).
std::string render_time_spent(const Paths& paths);
/// Chapter 6: the minimal-architecture search (chapter06.cpp).
Vars render_architecture_search(const RenderContext& ctx);
/// Chapter 7: seed 002's eight variants x five latent sizes (chapter07.cpp).
Vars render_improving_vaes(const RenderContext& ctx);

}  // namespace vaerepro::report
