#pragma once
/// \file generator.h
/// The report generator: reads results/ (layout in chapters/README.md), the
/// published numbers (report/published/) and the templates
/// (report/templates/), and writes figures (gnuplot, into figures/) and a
/// Markdown report that pandoc turns into HTML and LaTeX. It only reads
/// results: every number comes from a run or from report/published/.
///
/// It never crashes on missing, partial or corrupt results: such a chapter is
/// shown as "not run yet", "failed" or "incomplete", and the generator says
/// what it skipped.

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro::report {

/// Where things are.
struct Paths {
  std::string results = "results";
  /// Full-budget runs kept apart from results/ (`make chapter-01-full`).
  std::string full_results = "results-full";
  std::string templates = "report/templates";
  std::string published = "report/published";
  std::string figures = "figures";
  std::string out = "report/out";
  std::string docs_html = "build/docs/html";  ///< Doxygen output, linked from the report
};

/// The generator's own output (report/out/, figures/) could not be written:
/// its own failure, never blamed on the results; report-gen exits 1.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One complete run of a chapter's configuration with one seed.
struct SeedRun {
  int64_t seed = 0;
  nlohmann::json run;
  nlohmann::json metrics;
  std::string dir;
};

/// What became of one chapter's results.
struct ChapterState {
  enum class Kind { kMissing, kComplete, kFailed, kCorrupt };
  Kind kind = Kind::kMissing;
  std::string dir;             ///< results/<slug> (or .failed) that was read
  nlohmann::json run;          ///< run.json (complete or failed)
  nlohmann::json metrics;      ///< metrics.json (complete)
  std::string message;         ///< why failed / corrupt
  bool later_failure = false;  ///< a failed run exists beside a complete one
  std::string later_failure_message;
  /// Every complete run of this configuration, one per seed: results/<slug>
  /// first, then results/seeds/SEED/<slug> for other seeds with the same
  /// profile, dataset, protocol and config (`--seeds`, `make ... SEEDS=`).
  std::vector<SeedRun> seed_runs;
  /// Seed runs found but left out, and why (another configuration, incomplete).
  std::vector<std::string> seed_notes;
};

/// One row of the fidelity table at the top of the report: a published
/// number beside the fresh one, with everything that decides whether the two
/// can be compared.
struct FidelityRow {
  std::string chapter;     ///< "01" (links to #chapter-01)
  std::string source;      ///< "KW2013 Fig. 2"
  std::string status;      ///< V, D or S
  std::string quantity;    ///< "test bound, Nz = 20"
  std::string data;        ///< "mnist, binarized (paper: MNIST, binarisation not stated)"
  std::string budget;      ///< "fresh 1.5e6 / paper 1e8 (curve read at 1.5e6)"
  std::string published;   ///< the published value, as printed
  std::string fresh;       ///< the fresh value with its interval, or why there is none
  std::string difference;  ///< fresh minus published, or ""
  std::string verdict;     ///< "within noise", "outside noise: ...", or why not compared
};

/// Reads results/<slug>/ and results/<slug>.failed/. Never throws for bad
/// content: a parse error or a missing field makes the state kCorrupt with a
/// message naming the file.
ChapterState load_chapter(const std::string& results_root, const std::string& slug);

/// Fills st.seed_runs (st first, then results/seeds/*/<slug> of the same
/// configuration) and st.seed_notes, for a complete `st`.
void load_seed_runs(const std::string& results_root, const std::string& slug, ChapterState& st);

/// "-266.6" (one decimal), "n/a" for a non-number; beyond 1e9 in magnitude
/// three significant digits ("1e+308"), not hundreds of them.
std::string fmt1(const nlohmann::json& v);
std::string fmt1(double v);

/// One line: the run that made a table or figure.
std::string provenance_line(const nlohmann::json& run);

/// Replaces every {{key}} in `text` with vars[key]; unknown keys are kept as
/// "{{key}}" and reported in `unknown`.
std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars,
                       std::vector<std::string>* unknown = nullptr);

/// Options of one generation.
struct Options {
  Paths paths;
  bool html = true;
  bool latex = true;
  bool pdf = true;    ///< run latexmk when it is installed
  bool plots = true;  ///< run gnuplot (off: figures are referenced but not drawn)
};

/// What a generation produced and skipped.
struct Outcome {
  std::vector<std::string> written;  ///< files
  std::vector<std::string> skipped;  ///< "chapter X: why"
  std::vector<std::string> warnings;
  std::vector<FidelityRow> fidelity;  ///< filled by the chapter renderers
  bool pdf_built = false;
};

/// Generates the whole report. Throws std::runtime_error only for problems
/// of the generator's own inputs (a missing template, pandoc missing or
/// failing) and OutputError for its own outputs, never for bad results: a
/// result that cannot be read (a wrong type, a symlink loop) makes its
/// section say "could not read FILE: KEY: what was wrong" and the rest of
/// the report is still written.
Outcome generate(const Options& options);

}  // namespace vaerepro::report
