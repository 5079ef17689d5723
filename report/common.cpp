#include "common.h"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <tuple>
#include <stdexcept>

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void make_folder(const fs::path& p) {
  std::error_code ec;
  if (p.empty()) return;
  fs::create_directories(p, ec);
  if (ec || !fs::is_directory(p, ec)) {
    throw OutputError("cannot create the folder " + p.string() + ": " +
                      (ec ? ec.message() : std::string("something else is in the way")));
  }
}

void write_text(const fs::path& p, const std::string& text) {
  make_folder(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    errno = 0;
    std::ofstream out(tmp, std::ios::binary);
    if (!out)
      throw OutputError("cannot write " + tmp.string() + ": " + std::strerror(errno ? errno : EIO));
    out << text;
    out.flush();
    if (!out)
      throw OutputError("cannot write " + tmp.string() + ": " + std::strerror(errno ? errno : EIO));
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec)
    throw OutputError("cannot move " + tmp.string() + " to " + p.string() + ": " + ec.message());
}

void copy_output(const fs::path& from, const fs::path& to) {
  make_folder(to.parent_path());
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    throw OutputError("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
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

std::string str(const json& j, const std::string& key, const std::string& fallback) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  if (j.is_object() && j.contains(key) && j[key].is_number()) return j[key].dump();
  return fallback;
}

std::string sci(double v) {
  std::ostringstream os;
  os << std::setprecision(3) << v;
  return os.str();
}

bool draw(const Plot& plot, const Paths& paths, Outcome& outcome) {
  const fs::path dir = paths.figures;
  make_folder(dir);
  write_text(dir / (plot.name + ".dat"), plot.data);
  const std::string dat = (dir / (plot.name + ".dat")).string();
  std::ostringstream gp;
  gp << "datafile = " << json(dat).dump() << "\n";
  gp << "set terminal svg size " << plot.size_svg
     << " dynamic enhanced font 'Helvetica,12' background rgb 'white'\n";
  gp << "set output " << json((dir / (plot.name + ".svg")).string()).dump() << "\n";
  gp << plot.script << "\nunset output\n";
  gp << "set terminal pdfcairo size " << plot.size_pdf << " enhanced font 'Helvetica,9'\n";
  gp << "set output " << json((dir / (plot.name + ".pdf")).string()).dump() << "\n";
  gp << plot.script << "\nunset output\n";
  const fs::path script = dir / (plot.name + ".gp");
  write_text(script, gp.str());
  if (run_shell("gnuplot " + quote(script.string()) + " 2> " +
                quote((dir / (plot.name + ".log")).string())) != 0) {
    outcome.warnings.push_back("gnuplot failed on " + script.string() + " (see " +
                               (dir / (plot.name + ".log")).string() + ")");
    return false;
  }
  for (const char* ext : {".svg", ".pdf"}) {
    const fs::path f = dir / (plot.name + ext);
    copy_output(f, fs::path(paths.out) / "figures" / f.filename());
    outcome.written.push_back(f.string());
  }
  return true;
}

std::string image_problem(const fs::path& run_dir, const std::string& rel) {
  if (rel.empty()) return "no file named";
  const fs::path r(rel);
  if (r.is_absolute())
    return "'" + rel + "' is an absolute path; only files inside the run's folder are copied";
  std::error_code ec;
  const fs::path src = run_dir / r;
  if (!fs::exists(fs::symlink_status(src, ec))) return (src.string() + " is missing");
  const fs::path base = fs::canonical(run_dir, ec);
  if (ec) return "the run's folder " + run_dir.string() + " cannot be resolved: " + ec.message();
  const fs::path real = fs::canonical(src, ec);
  if (ec) return src.string() + " cannot be resolved: " + ec.message();
  // Inside the run's folder: its resolved path starts with the folder's.
  const auto mismatch = std::mismatch(base.begin(), base.end(), real.begin(), real.end());
  if (mismatch.first != base.end()) {
    return "'" + rel + "' resolves to " + real.string() + ", outside the run's folder " +
           base.string() + "; only files inside it are copied";
  }
  if (!fs::is_regular_file(real, ec)) return src.string() + " is not a regular file";
  std::ifstream in(real, std::ios::binary);
  char head[8] = {0};
  in.read(head, 8);
  static const char kPng[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  if (in.gcount() != 8 || !std::equal(head, head + 8, kPng))
    return src.string() + " is not a PNG image";
  return "";
}

std::string copy_image(const ChapterState& st, const std::string& slug, const std::string& rel,
                       const Paths& paths, Outcome& outcome) {
  const fs::path src = fs::path(st.dir) / rel;
  const std::string problem = image_problem(st.dir, rel);
  if (!problem.empty()) {
    outcome.skipped.push_back(slug + ": image not copied: " + problem);
    return "";
  }
  const fs::path dst = fs::path(paths.out) / "images" / slug / src.filename();
  copy_output(fs::canonical(src), dst);
  return "images/" + slug + "/" + src.filename().string();
}

std::string figure_md(const std::string& ref, const std::string& caption,
                      const std::string& width) {
  return "![" + caption + "](" + ref + "){width=" + width + "}\n";
}

double interpolate_log_x(const std::vector<std::pair<double, double>>& curve, double x) {
  if (curve.empty() || x < curve.front().first || x > curve.back().first || x <= 0)
    return std::nan("");
  for (size_t i = 1; i < curve.size(); ++i) {
    const auto& [x0, y0] = curve[i - 1];
    const auto& [x1, y1] = curve[i];
    if (x <= x1) {
      if (x1 <= x0) return y1;
      const double t = (std::log(x) - std::log(x0)) / (std::log(x1) - std::log(x0));
      return y0 + t * (y1 - y0);
    }
  }
  return curve.back().second;
}

std::string make_command(const std::string& slug) {
  return "make chapter-" + slug.substr(0, 2);
}

std::string older_layout_note(int schema_version, const std::string& slug) {
  if (schema_version >= schema::kSchemaVersion) return "";
  return "This result was written in an older results layout (version " +
         std::to_string(schema_version) +
         ", before runs recorded their budget against the paper's): it is read as far as it goes, "
         "its budget and "
         "whether its verdicts are provisional from the older fields. `" +
         make_command(slug) +
         "` with the same options regenerates it in the current layout (version " +
         std::to_string(schema::kSchemaVersion) + ")";
}

std::string setup_table_head(const RunView& view) {
  namespace rk = schema::run_key;
  const json& run = view.run;
  std::ostringstream os;
  const json dataset = run.value(rk::kDataset, json::object()),
             protocol = run.value(rk::kProtocol, json::object());
  os << "| setting | this run |\n|---|---|\n";
  os << "| dataset | " << md(dataset.value(rk::kDescription, str(dataset, rk::kName))) << " |\n";
  os << "| protocol | " << md(str(protocol, rk::kName)) << ": "
     << md(protocol.value(rk::kDescription, "")) << " |\n";
  const schema::Budget& b = view.budget;
  // `why` names the paper's budget and its source.
  os << "| profile and budget | " << md(b.profile) << ": " << md(b.text) << " (verdicts "
     << (b.provisional ? "provisional" : "not provisional") << ": " << md(b.why) << ") |\n";
  const std::string slug = str(run, rk::kChapter, "");
  if (view.schema_version < schema::kSchemaVersion) {
    os << "| results layout | version " << view.schema_version << ", older (see the note above): `"
       << make_command(slug.size() >= 2 ? slug : "??") << "` regenerates it |\n";
  }
  return os.str();
}

std::string plotted_figure(const Plot& plot, const std::string& caption, const Options& options,
                           Outcome& outcome, const std::string& width,
                           const std::string& fallback) {
  if (!options.plots || draw(plot, options.paths, outcome))
    return figure_md("figures/" + plot.name, caption, width);
  return fallback.empty() ? "*The figure could not be drawn (gnuplot failed).*\n" : fallback;
}

std::string verdicts_md(const RunView& view, const std::string& slug, const std::string& extra) {
  namespace k = schema::key;
  std::ostringstream os;
  const json checks = view.metrics.value(k::kChecks, json::array());
  const schema::Budget& budget = view.budget;
  const bool provisional = budget.provisional;
  if (checks.empty()) os << "*The run recorded no verdict (too few settings to decide).*\n";
  for (const auto& c : checks) {
    os << "- **" << md(c.value(k::kClaim, "?"))
       << "**: " << (c.value(k::kHolds, false) ? "**holds**" : "**does not hold**")
       << (provisional ? " (provisional)" : "") << ", " << md(c.value(k::kDetail, ""))
       << ". *Criterion:* " << md(c.value(k::kCriterion, "?")) << ".\n";
  }
  if (checks.empty()) return os.str();
  os << "\n*" << (provisional ? "Provisional" : "Budget") << ":* " << md(budget.why)
     << ", on the run with seed " << md(str(view.run, schema::run_key::kSeed)) << " (profile "
     << md(budget.profile) << ")";
  if (!extra.empty()) os << "; " << extra;
  if (provisional && budget.profile != "full") {
    os << "; `" << make_command(slug) << " PROFILE=full` trains at the paper's budget";
  }
  os << ".";
  if (budget.legacy)
    os << " (An older results layout: `" << make_command(slug) << "` regenerates it.)";
  os << "\n";
  return os.str();
}

FidelityRow budget_row(const std::string& chapter, const json& pub, const std::string& quantity,
                       const std::string& data, double fresh_samples, double paper_samples,
                       double published, const Spread& fresh, bool comparable,
                       const std::string& why_not) {
  FidelityRow row;
  row.chapter = chapter;
  row.source = pub.value("cite", pub.value("source", "?"));
  row.status = pub.value("status", "?");
  row.quantity = quantity;
  row.data = data;
  row.budget = sci(fresh_samples) + " (paper " + sci(paper_samples) + ")";
  row.published = fmt1(published);
  row.fresh = spread_text(fresh, true);
  if (!comparable) {
    row.verdict = "not compared: " + why_not;
    return row;
  }
  if (std::isfinite(paper_samples) && fresh_samples < 0.5 * paper_samples) {
    if (fresh.n() > 0 && std::isfinite(published)) {
      const double d = fresh.mean - published;
      row.difference = (d >= 0 ? "+" : "") + fmt1(d);
    }
    std::ostringstream pct;
    pct << std::setprecision(2) << 100.0 * fresh_samples / paper_samples;
    row.verdict = "not decided: " + pct.str() + "% of the paper's budget (`PROFILE=full`)";
    return row;
  }
  std::tie(row.difference, row.verdict) =
      noise_verdict(fresh, published, published_error(row.status));
  return row;
}

void curve_verdict(FidelityRow& row, const Spread& fresh, double at_same_samples, bool comparable,
                   const std::string& why_not, double fallback_se) {
  if (!comparable) {
    row.verdict = "not compared: " + why_not;
  } else if (!std::isfinite(at_same_samples)) {
    row.verdict = "not compared: the fresh budget is off the digitised curve";
  } else {
    std::tie(row.difference, row.verdict) =
        noise_verdict(fresh, at_same_samples, published_error(row.status), fallback_se);
  }
}

std::string seed_verdicts_md(const ChapterState& st) {
  if (st.seed_runs.size() < 2) return "";
  std::vector<std::string> claims;
  std::map<std::string, std::vector<std::pair<int64_t, bool>>> by_claim;
  for (const auto& r : st.seed_runs) {
    const json checks = r.metrics.is_object() ? r.metrics.value(schema::key::kChecks, json::array())
                                              : json::array();
    for (const auto& c : checks) {
      if (!c.is_object()) continue;
      const std::string claim = c.value(schema::key::kClaim, "?");
      if (!by_claim.count(claim)) claims.push_back(claim);
      by_claim[claim].emplace_back(r.seed, c.value(schema::key::kHolds, false));
    }
  }
  std::ostringstream os;
  os << "\n**Over " << st.seed_runs.size()
     << " seeds** (each seed's run decides every verdict on its own numbers):\n\n";
  for (const auto& claim : claims) {
    const auto& v = by_claim[claim];
    int holds = 0;
    std::string fails;
    for (const auto& [seed, h] : v) {
      holds += h ? 1 : 0;
      if (!h) fails += (fails.empty() ? "" : ", ") + std::to_string(seed);
    }
    os << "- " << md(claim) << ": holds in **" << holds << " of " << v.size() << "** seeds"
       << (fails.empty() ? "" : " (not with seed " + fails + ")") << ".\n";
  }
  return os.str();
}

std::string gnuplot_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\'' || c == '\\' || c == '\n') continue;
    out += c;
  }
  return out;
}

RunView run_view(const ChapterState& st) {
  namespace rk = schema::run_key;
  const nlohmann::json& run = st.run;
  return {run,
          st.metrics,
          provenance_line(run) + "\n",
          run.at(rk::kDataset).at(rk::kName).get<std::string>(),
          run.at(rk::kProtocol).at(rk::kName).get<std::string>(),
          run.at(rk::kConfig),
          schema::read_budget(run, st.metrics),
          schema::schema_version_of(run)};
}

double number(const json& j, const std::string& key, double fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<double>();
}

Spread over_seeds(const ChapterState& st, const std::function<double(const json& metrics)>& get) {
  Spread s;
  for (const auto& r : st.seed_runs) {
    double v = std::numeric_limits<double>::quiet_NaN();
    try {
      v = get(r.metrics);
    } catch (const std::exception&) {
    }
    if (!std::isfinite(v)) continue;
    s.values.push_back(v);
    s.seeds.push_back(r.seed);
  }
  if (s.values.empty()) return s;
  double sum = 0;
  s.min = s.max = s.values[0];
  for (double v : s.values) {
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / static_cast<double>(s.n());
  if (s.n() > 1) {
    double ss = 0;
    for (double v : s.values) ss += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(s.n() - 1));
  }
  return s;
}

std::string spread_text(const Spread& s, bool brief) {
  if (s.n() == 0) return "not in the results";
  if (s.n() == 1) return fmt1(s.mean) + " (one seed)";
  if (brief)
    return fmt1(s.mean) + " &plusmn; " + fmt1(s.sd) + " (" + std::to_string(s.n()) + " seeds)";
  return fmt1(s.mean) + " &plusmn; " + fmt1(s.sd) + " (sd over " + std::to_string(s.n()) +
         " seeds, min " + fmt1(s.min) + ", max " + fmt1(s.max) + ")";
}

double published_error(const std::string& status) {
  return status == "D" ? 0.5 : 0.0;
}

std::pair<std::string, std::string> noise_verdict(const Spread& fresh, double published,
                                                  double published_err, double fallback_se) {
  if (fresh.n() == 0 || !std::isfinite(published)) return {"", "no fresh value"};
  const double d = fresh.mean - published;
  const std::string diff = (d >= 0 ? "+" : "") + fmt1(d);
  // The published number is one run: it carries one run's seed noise (the
  // fresh seeds' sd stands in for it), the fresh mean carries sd / sqrt(n).
  const double n = static_cast<double>(fresh.n());
  const double spread = fresh.n() > 1 ? fresh.sd * std::sqrt(1.0 + 1.0 / n) : fallback_se;
  if (!std::isfinite(spread)) {
    return {diff, "no error bar (one seed; run SEEDS=1,2,3 for one)"};
  }
  const double u = std::sqrt(spread * spread + published_err * published_err);
  const std::string basis = fresh.n() > 1 ? "seeds' sd" : "estimator's standard error, one seed";
  std::ostringstream why;
  why << "2u = " << fmt1(2 * u) << ", " << basis
      << (published_err > 0 ? ", read error " + fmt1(published_err) : std::string());
  if (std::abs(d) <= 2 * u) return {diff, "**within noise** (" + why.str() + ")"};
  return {diff, std::string("**outside noise**: fresh ") + (d > 0 ? "higher" : "lower") + " (" +
                    why.str() + ")"};
}

}  // namespace vaerepro::report
