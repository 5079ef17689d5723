#include "generator.h"

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
namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

/// Parses a JSON file; throws std::runtime_error naming the file.
json read_json(const fs::path& p) {
  try {
    return json::parse(read_text(p));
  } catch (const json::exception& e) {
    throw std::runtime_error(p.string() + " is not valid JSON (" + e.what() + ")");
  }
}

bool have_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

int run_shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

std::string quote(const std::string& s) {  // for the shell
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Escapes text for a Markdown paragraph or table cell.
std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\`*_{}[]<>#|$").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string str(const json& j, const std::string& key, const std::string& fallback = "?") {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  if (j.is_object() && j.contains(key) && j[key].is_number()) return j[key].dump();
  return fallback;
}

std::string sci(double v) {
  std::ostringstream os;
  os << std::setprecision(3) << v;
  return os.str();
}

}  // namespace

std::string fmt1(double v) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << v;
  std::string s = os.str();
  return s == "-0.0" ? "0.0" : s;
}

std::string fmt1(const json& v) { return v.is_number() ? fmt1(v.get<double>()) : "n/a"; }

std::string provenance_line(const json& run) {
  const json p = run.value("provenance", json::object());
  std::ostringstream os;
  os << "*Run:* commit " << md(str(p, "git_commit")) << ", " << md(str(p, "date_utc"))
     << ", device " << md(str(run, "device")) << ", profile " << md(str(run, "profile"))
     << ", dataset " << md(run.contains("dataset") ? str(run["dataset"], "name") : "?")
     << ", protocol " << md(run.contains("protocol") ? str(run["protocol"], "name") : "?")
     << ", seed " << md(str(run, "seed")) << ", wall time "
     << (run.contains("wall_seconds") && run["wall_seconds"].is_number()
             ? fmt1(run["wall_seconds"].get<double>()) + " s"
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

ChapterState load_chapter(const std::string& results_root, const std::string& slug) {
  ChapterState s;
  const fs::path done = fs::path(results_root) / slug;
  const fs::path failed = fs::path(results_root) / (slug + ".failed");
  json failed_run;
  bool has_failed = false;
  if (fs::exists(failed / "run.json")) {
    try {
      failed_run = read_json(failed / "run.json");
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
      s.message = str(failed_run, "error", "no error message recorded");
    }
    return s;
  }
  s.dir = done.string();
  try {
    if (!fs::exists(done / "run.json")) throw std::runtime_error((done / "run.json").string() + " is missing");
    s.run = read_json(done / "run.json");
    if (!s.run.is_object() || s.run.value("status", "") != "complete") {
      throw std::runtime_error((done / "run.json").string() + " does not say \"status\": \"complete\"");
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
      s.later_failure_message = str(failed_run, "error", "no error message recorded");
    }
  }
  return s;
}

namespace {

/// A figure drawn by gnuplot as SVG (HTML) and PDF (LaTeX) into figures/.
struct Plot {
  std::string name;    ///< file stem in figures/
  std::string script;  ///< gnuplot commands after the terminal/output lines
  std::string data;    ///< written to figures/<name>.dat
  std::string size_svg = "960,620";
  std::string size_pdf = "9in,5.8in";
};

bool draw(const Plot& plot, const Paths& paths, Outcome& outcome) {
  const fs::path dir = paths.figures;
  fs::create_directories(dir);
  write_text(dir / (plot.name + ".dat"), plot.data);
  const std::string dat = (dir / (plot.name + ".dat")).string();
  std::ostringstream gp;
  gp << "datafile = " << json(dat).dump() << "\n";
  gp << "set terminal svg size " << plot.size_svg << " dynamic enhanced font 'Helvetica,12' background rgb 'white'\n";
  gp << "set output " << json((dir / (plot.name + ".svg")).string()).dump() << "\n";
  gp << plot.script << "\nunset output\n";
  gp << "set terminal pdfcairo size " << plot.size_pdf << " enhanced font 'Helvetica,9'\n";
  gp << "set output " << json((dir / (plot.name + ".pdf")).string()).dump() << "\n";
  gp << plot.script << "\nunset output\n";
  const fs::path script = dir / (plot.name + ".gp");
  write_text(script, gp.str());
  if (run_shell("gnuplot " + quote(script.string()) + " 2> " + quote((dir / (plot.name + ".log")).string())) != 0) {
    outcome.warnings.push_back("gnuplot failed on " + script.string() + " (see " +
                               (dir / (plot.name + ".log")).string() + ")");
    return false;
  }
  for (const char* ext : {".svg", ".pdf"}) {
    const fs::path f = dir / (plot.name + ext);
    fs::create_directories(fs::path(paths.out) / "figures");
    fs::copy_file(f, fs::path(paths.out) / "figures" / f.filename(), fs::copy_options::overwrite_existing);
    outcome.written.push_back(f.string());
  }
  return true;
}

/// Copies a result's PNG into report/out/images/<slug>/ and returns the
/// relative reference, or "" when it does not exist.
std::string copy_image(const ChapterState& st, const std::string& slug, const std::string& rel,
                       const Paths& paths, Outcome& outcome) {
  const fs::path src = fs::path(st.dir) / rel;
  if (rel.empty() || !fs::exists(src)) {
    outcome.skipped.push_back(slug + ": image " + src.string() + " is missing");
    return "";
  }
  const fs::path dst = fs::path(paths.out) / "images" / slug / src.filename();
  fs::create_directories(dst.parent_path());
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
  return "images/" + slug + "/" + src.filename().string();
}

std::string figure_md(const std::string& ref, const std::string& caption, const std::string& width = "100%") {
  return "![" + caption + "](" + ref + "){width=" + width + "}\n";
}

// ---------------------------------------------------------------------------
// Chapter 1: ELBO against latent size.

std::map<std::string, std::string> render_elbo_vs_latent(const ChapterState& st, const json& published,
                                                         const json& kw_curves, const Options& options,
                                                         Outcome& outcome) {
  const std::string slug = "01-elbo-vs-latent";
  const json& run = st.run;
  const json& metrics = st.metrics;
  const std::string prov = provenance_line(run) + "\n";
  std::map<std::string, std::string> v;
  const json kw = published.at("kw2013_fig2");
  const json sumba = published.at("sumba2019_table1_vae_reimpl");
  const std::string dataset = run.at("dataset").at("name").get<std::string>();
  const std::string protocol = run.at("protocol").at("name").get<std::string>();
  const json config = run.at("config");
  const double samples = config.at("samples_per_model").get<double>();
  const json& models = metrics.at("models");

  // Setup.
  {
    std::ostringstream os;
    os << "| setting | this run |\n|---|---|\n";
    os << "| dataset | " << md(run["dataset"].value("description", dataset)) << " |\n";
    os << "| protocol | " << md(protocol) << ": " << md(run["protocol"].value("description", "")) << " |\n";
    os << "| profile and budget | " << md(str(run, "profile")) << ": " << md(str(run, "budget")) << " |\n";
    os << "| model | 784-" << md(str(config, "hidden")) << "-Nz, " << md(str(config, "activation"))
       << ", Bernoulli decoder; " << md(str(config, "init")) << " |\n";
    const json opt = config.value("optimizer", json::object());
    os << "| optimizer | " << md(str(opt, "name")) << ", learning rate " << md(str(opt, "lr"))
       << ", weight decay " << (opt.contains("weight_decay") && opt["weight_decay"].is_number() ? sci(opt["weight_decay"].get<double>()) : "?") << ", minibatch " << md(str(config, "batch_size"))
       << ", one latent sample per example |\n";
    os << "| bounds | the ELBO on the whole training and test sets at " << md(str(config, "eval_points"))
       << " points log-spaced in samples seen |\n\n";
    os << prov;
    v["setup_table"] = os.str();
  }

  // Does the protocol match the paper's?
  {
    std::ostringstream os;
    const bool same_data = dataset == kw.value("dataset", "mnist");
    os << "- **Dataset:** " << (same_data ? "matches" : "differs") << ". KW2013 used MNIST; this run used "
       << md(dataset) << "." << (same_data ? "" : " The fresh bounds cannot be compared with the paper's numbers; only their shape and ordering can.") << "\n";
    os << "- **Binarisation:** " << (protocol == "binarized" ? "comparable in kind" : "differs")
       << ". KW2013 do not say how MNIST was binarised; this run used " << md(protocol) << "."
       << (protocol == "gray-bce" ? " Gray levels inside binary cross-entropy are not a likelihood." : "") << "\n";
    os << "- **Budget:** " << (samples >= kw.value("budget_samples", 1e8) ? "matches" : "differs") << ". KW2013's numbers are read at "
       << sci(kw.value("budget_samples", 1e8)) << " training samples; this run stopped at " << sci(samples) << ".\n";
    v["protocol_match"] = os.str();
  }

  // Curves with KW2013's digitised curves.
  {
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
    const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"};
    int color = 0;
    for (const auto& m : models) {
      if (m.value("role", "sweep") != "sweep") continue;
      const int64_t nz = m.at("nz").get<int64_t>();
      std::vector<std::pair<double, double>> tr, te;
      for (const auto& p : m.at("curve")) {
        tr.emplace_back(p.at("samples_seen").get<double>(), p.at("train").at("elbo").get<double>());
        te.emplace_back(p.at("samples_seen").get<double>(), p.at("test").at("elbo").get<double>());
      }
      if (tr.empty()) continue;
      std::ostringstream plotcmd;
      const int itr = block(tr), ite = block(te);
      plotcmd << "set title 'N_z = " << nz << "'\nplot datafile index " << itr
              << " with linespoints lw 2 pt 7 ps 0.5 lc rgb '#1f77b4' title 'fresh train', datafile index " << ite
              << " with linespoints lw 2 dt 2 pt 7 ps 0.5 lc rgb '#d62728' title 'fresh test'";
      const std::string key = "MNIST Nz=" + std::to_string(nz);
      if (kw_curves.contains(key)) {
        for (const char* which : {"AEVB train", "AEVB test"}) {
          std::vector<std::pair<double, double>> pts;
          for (const auto& p : kw_curves[key].value(which, json::array())) pts.emplace_back(p[0].get<double>(), p[1].get<double>());
          if (pts.empty()) continue;
          const int i = block(pts);
          plotcmd << ", datafile index " << i << " with lines lw 1.5 " << (std::string(which) == "AEVB test" ? "dt 2 " : "")
                  << "lc rgb '#777777' title 'KW2013 " << (which + 5) << " (MNIST, D)'";
        }
      }
      panels.push_back(plotcmd.str());
      all_test.push_back("datafile index " + std::to_string(ite) + " with linespoints lw 2 pt 7 ps 0.5 lc rgb '" +
                         colors[color++ % 7] + "' title 'N_z = " + std::to_string(nz) + "'");
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
           << "set multiplot layout " << rows << "," << cols << " title 'ELBO per datapoint against training samples: fresh ("
           << dataset << ", " << protocol << ") and KW2013 Fig. 2 (MNIST, digitised)'\n";
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
    } else if (!options.plots || draw(plot, options.paths, outcome)) {
      os << figure_md("figures/ch01-curves",
                      "The lower bound on the whole training set (solid) and test set (dashed) against training "
                      "samples seen, one panel per latent size; in gray KW2013's digitised AEVB curves for MNIST. "
                      "The last panel sets the fresh test curves side by side.");
    } else {
      os << "*The figure could not be drawn (gnuplot failed); the numbers are in the table below and in "
         << md(st.dir) << "/curves/.*\n";
    }
    os << "\n" << prov;
    v["curves_figure"] = os.str();
  }

  // Final bounds beside the published ones.
  {
    std::ostringstream os;
    os << "| Nz | fresh train | KW2013 train (" << md(kw.value("status", "?")) << ") | difference | fresh test | KW2013 test ("
       << md(kw.value("status", "?")) << ") | difference | Sumba et al. test (" << md(sumba.value("status", "?"))
       << ") | KL, test |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& m : models) {
      if (m.value("role", "sweep") != "sweep") continue;
      const std::string nz = m.at("nz").dump();
      const double tr = m.at("final").at("train").at("elbo").get<double>();
      const double te = m.at("final").at("test").at("elbo").get<double>();
      const json kwv = kw.at("values").value(nz, json::object());
      const json sv = sumba.at("values").value(nz, json::object());
      auto diff = [](double fresh, const json& pub) {
        return pub.is_number() ? (fresh - pub.get<double>() >= 0 ? "+" : "") + fmt1(fresh - pub.get<double>()) : std::string("");
      };
      os << "| " << nz << " | " << fmt1(tr) << " | " << fmt1(kwv.value("train", json())) << " | "
         << diff(tr, kwv.value("train", json())) << " | " << fmt1(te) << " | " << fmt1(kwv.value("test", json()))
         << " | " << diff(te, kwv.value("test", json())) << " | " << fmt1(sv.value("test", json())) << " | "
         << fmt1(m.at("final").at("test").at("kl")) << " |\n";
    }
    os << "\nFresh: nats per datapoint summed over pixels, " << md(dataset) << ", " << md(protocol) << ", "
       << sci(samples) << " samples per model. Difference: fresh minus published (positive: the fresh bound is higher). "
       << "KW2013: " << md(kw.value("source", "")) << "; " << md(kw.value("quantity", "")) << "; MNIST at "
       << sci(kw.value("budget_samples", 1e8)) << " samples; status " << md(kw.value("status", "?"))
       << " (digitised, read error about 0.5 nat). Sumba et al.: " << md(sumba.value("source", "")) << "; "
       << md(sumba.value("setup", "")) << "; status " << md(sumba.value("status", "?")) << " (seed report, not peer reviewed).\n\n"
       << prov;
    v["bounds_table"] = os.str();
  }

  // Verdicts, computed by the chapter from its own numbers.
  {
    std::ostringstream os;
    const json checks = metrics.value("checks", json::array());
    if (checks.empty()) os << "*The run recorded no verdict (too few latent sizes to decide).*\n";
    for (const auto& c : checks) {
      os << "- **" << md(c.value("claim", "?")) << "**: " << (c.value("holds", false) ? "**holds**" : "**does not hold**")
         << ", " << md(c.value("detail", "")) << ". *Criterion:* " << md(c.value("criterion", "?")) << ".\n";
    }
    os << "\n" << prov;
    v["verdicts"] = os.str();
  }

  // Pictures from the run.
  {
    const json images = metrics.value("images", json::object());
    std::ostringstream rec, man, sam;
    const std::string r = copy_image(st, slug, images.value("reconstructions", ""), options.paths, outcome);
    if (!r.empty()) {
      rec << figure_md(r, "Reconstructions of the first test images (as scored). " + md(metrics.value("reconstruction_rows", "")) + ".", "70%")
          << "\n" << prov;
    }
    const std::string m = copy_image(st, slug, images.value("manifold_nz-2", ""), options.paths, outcome);
    if (!m.empty()) {
      man << figure_md(m, "The learned 2-D manifold: decoder means on a 20 x 20 grid over the prior's quantiles 0.05 to 0.95 (Nz = 2).", "60%")
          << "\n" << prov;
    } else {
      man << "*No manifold figure in this run (--manifold-nz 0).*\n";
    }
    std::string order;
    for (const auto& mo : models) {
      const std::string tag = "samples_nz-" + mo.at("nz").dump();
      const std::string ref = copy_image(st, slug, images.value(tag, ""), options.paths, outcome);
      if (ref.empty()) continue;
      sam << "![](" << ref << "){width=15%} ";
      order += (order.empty() ? "" : ", ") + mo.at("nz").dump();
    }
    if (!order.empty()) sam << "\n\nLeft to right: $N_z$ = " << order << ".\n\n";
    sam << prov;
    v["reconstructions_figure"] = rec.str();
    v["manifold_figure"] = man.str();
    v["samples_figures"] = sam.str();
  }

  {
    const json frey = metrics.value("frey_face", json::object());
    v["frey_face"] = "Frey Face: " + md(frey.value("status", "?")) + ". " + md(frey.value("reason", "")) + ".\n";
  }
  v["provenance"] = prov;
  return v;
}

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
         << provenance_line(st.run) << " Partial output is in `" << st.dir << "`. Rerun with `" << make << "`.\n:::\n";
      break;
    case ChapterState::Kind::kCorrupt:
      os << "::: {.status}\n**The results are incomplete or corrupt, and were skipped:** " << md(st.message)
         << ". Rerun with `" << make << "`.\n:::\n";
      break;
    case ChapterState::Kind::kComplete:
      if (st.later_failure) {
        os << "::: {.status}\n**Note:** a later run of this chapter failed (" << md(st.later_failure_message)
           << "); the results below are from the last complete run.\n:::\n";
      }
      break;
  }
  return os.str();
}

const char* kind_name(ChapterState::Kind k) {
  switch (k) {
    case ChapterState::Kind::kMissing: return "not run yet";
    case ChapterState::Kind::kComplete: return "complete";
    case ChapterState::Kind::kFailed: return "failed";
    case ChapterState::Kind::kCorrupt: return "incomplete or corrupt";
  }
  return "?";
}

}  // namespace

Outcome generate(const Options& options) {
  const Paths& paths = options.paths;
  Outcome outcome;
  const fs::path templates = paths.templates;
  const json chapters = read_json(templates / "chapters.json");
  const json published = read_json(fs::path(paths.published) / "published.json");
  json kw_curves = json::object();
  try {
    kw_curves = read_json(fs::path(paths.published) / "kw2013_fig2.json").at("curves");
  } catch (const std::exception& e) {
    outcome.warnings.push_back(std::string("KW2013 curves unavailable: ") + e.what());
  }
  fs::create_directories(paths.out);

  std::ostringstream body, summary;
  summary << "| chapter | status | dataset | protocol | profile | verdicts |\n|---|---|---|---|---|---|\n";
  std::set<std::string> datasets_used;
  std::string environment;
  for (const auto& ch : chapters) {
    const std::string slug = ch.at("slug").get<std::string>();
    ChapterState st = load_chapter(paths.results, slug);
    std::map<std::string, std::string> vars;
    std::string results_md;
    if (st.kind == ChapterState::Kind::kComplete) {
      try {
        const std::string renderer = ch.value("renderer", "");
        if (renderer == "elbo-vs-latent") {
          vars = render_elbo_vs_latent(st, published, kw_curves, options, outcome);
        } else {
          throw std::runtime_error("the report has no renderer for this chapter yet");
        }
        std::vector<std::string> unknown;
        results_md = substitute(read_text(templates / ch.at("results_template").get<std::string>()), vars, &unknown);
        for (const auto& k : unknown) outcome.warnings.push_back(slug + ": template key {{" + k + "}} has no value");
      } catch (const std::exception& e) {
        st.kind = ChapterState::Kind::kCorrupt;
        st.message = "results in " + st.dir + " could not be read: " + e.what();
        results_md.clear();
      }
    }
    if (st.kind != ChapterState::Kind::kComplete && st.kind != ChapterState::Kind::kMissing) {
      outcome.skipped.push_back(slug + ": " + kind_name(st.kind) + ": " + st.message);
    }
    if (st.kind == ChapterState::Kind::kMissing) outcome.skipped.push_back(slug + ": not run yet");

    std::map<std::string, std::string> head = {
        {"status", status_block(st, ch)},
        {"docs_link", "[the chapter's literate page](" +
                          fs::relative(fs::absolute(paths.docs_html) / (ch.value("docs_page", "index") + ".html"),
                                       fs::absolute(paths.out)).string() +
                          ") (built by `make docs`)"}};
    body << substitute(read_text(templates / ch.at("template").get<std::string>()), head) << "\n";
    if (!results_md.empty()) body << results_md << "\n";

    // Summary row.
    std::string verdicts = "";
    if (st.kind == ChapterState::Kind::kComplete) {
      int holds = 0, total = 0;
      for (const auto& c : st.metrics.value("checks", json::array())) {
        ++total;
        holds += c.value("holds", false) ? 1 : 0;
      }
      verdicts = std::to_string(holds) + " of " + std::to_string(total) + " hold";
      datasets_used.insert(st.run.at("dataset").value("name", "?"));
      if (environment.empty() && st.run.contains("runtime")) {
        std::ostringstream env;
        env << "| | |\n|---|---|\n";
        for (const auto& [k, val] : st.run["runtime"].items()) {
          env << "| " << md(k) << " | " << md(val.is_string() ? val.get<std::string>() : val.dump()) << " |\n";
        }
        env << "\n" << provenance_line(st.run) << "\n";
        environment = env.str();
      }
    }
    auto field = [&](const char* a, const char* b) {
      return st.run.is_object() && st.run.contains(a) && st.run[a].is_object() ? md(str(st.run[a], b)) : std::string("");
    };
    summary << "| " << ch.value("number", 0) << ". " << md(ch.value("title", slug)) << " | " << kind_name(st.kind) << " | "
            << field("dataset", "name") << " | " << field("protocol", "name") << " | "
            << (st.run.is_object() ? md(str(st.run, "profile", "")) : "") << " | " << verdicts << " |\n";
  }

  std::string data_note;
  if (datasets_used.empty()) {
    data_note = "No chapter has results yet, so no data set was used.";
  } else {
    std::string list;
    for (const auto& d : datasets_used) list += (list.empty() ? "" : ", ") + d;
    data_note = "The fresh runs used: **" + md(list) + "**.";
    if (!datasets_used.count("mnist")) {
      data_note += " Real MNIST was not available to these runs (it needs a network: `make data`), so "
                   "their numbers are **not** comparable with the papers' MNIST numbers; only shapes, "
                   "orderings and verdicts are.";
    }
  }
  std::map<std::string, std::string> top = {
      {"chapters", body.str()},
      {"summary_table", summary.str()},
      {"data_note", data_note},
      {"environment", environment.empty() ? std::string("*No run yet.*\n") : environment},
      {"skipped", [&] {
         std::string s;
         for (const auto& k : outcome.skipped) s += "- " + md(k) + "\n";
         return s.empty() ? std::string("- nothing\n") : s;
       }()}};
  std::vector<std::string> unknown;
  const std::string report_md = substitute(read_text(templates / "report.md"), top, &unknown);
  for (const auto& k : unknown) outcome.warnings.push_back("report.md: template key {{" + k + "}} has no value");
  const fs::path md_path = fs::path(paths.out) / "report.md";
  write_text(md_path, report_md);
  outcome.written.push_back(md_path.string());
  fs::copy_file(templates / "style.css", fs::path(paths.out) / "style.css", fs::copy_options::overwrite_existing);

  if (!have_program("pandoc")) throw std::runtime_error("pandoc is not installed (make deps installs it)");
  const std::string out = quote(paths.out);
  if (options.html) {
    const std::string cmd = "cd " + out +
                            " && pandoc report.md --from markdown --to html5 --standalone --mathml --toc --toc-depth=2"
                            " --css style.css --default-image-extension=svg -o index.html";
    if (run_shell(cmd) != 0) throw std::runtime_error("pandoc failed to write index.html");
    outcome.written.push_back((fs::path(paths.out) / "index.html").string());
  }
  if (options.latex) {
    const std::string cmd = "cd " + out +
                            " && pandoc report.md --from markdown --to latex --standalone --toc"
                            " --template " + quote(fs::absolute(templates / "report.latex").string()) +
                            " --default-image-extension=pdf -o report.tex";
    if (run_shell(cmd) != 0) throw std::runtime_error("pandoc failed to write report.tex");
    outcome.written.push_back((fs::path(paths.out) / "report.tex").string());
    if (options.pdf) {
      if (have_program("latexmk") && have_program("pdflatex")) {
        const std::string tex = "cd " + out +
                                " && latexmk -pdf -interaction=nonstopmode -halt-on-error report.tex > latexmk.log 2>&1";
        if (run_shell(tex) == 0 && fs::exists(fs::path(paths.out) / "report.pdf")) {
          outcome.pdf_built = true;
          outcome.written.push_back((fs::path(paths.out) / "report.pdf").string());
        } else {
          outcome.warnings.push_back("latexmk failed; see " + (fs::path(paths.out) / "latexmk.log").string());
        }
      } else {
        outcome.warnings.push_back("no PDF: latexmk/pdflatex not installed (VAEREPRO_TEX=1 make deps installs a minimal TeX)");
      }
    }
  }
  return outcome;
}

}  // namespace vaerepro::report
