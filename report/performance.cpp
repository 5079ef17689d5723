/// \file performance.cpp
/// The performance appendix: results/bench/bench.json (written by
/// `make bench`, bench/bench_train.cpp) as tables of speeds, ratios against
/// issue #9's targets, and the environment the figures came from; then the
/// GPU check's figures (results/gpu/gpu-check.json, scripts/gpu-check.sh)
/// beside the CPU's. Reads the JSON only; never runs anything.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

#include "common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vaerepro::report {

namespace {

std::string render_checked_bench(const json& b, Outcome& outcome);
std::string render_performance_files(const Paths& paths, Outcome& outcome);

std::string num(const json& v, int prec) {
  if (!v.is_number()) return "n/a";
  const double d = v.get<double>();
  if (!std::isfinite(d)) return "n/a";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << d;
  return os.str();
}

const char* describe_variant(const std::string& v) {
  if (v == "suite") return "the suite's step (train_vae, as every chapter runs it)";
  if (v == "suite-1-thread") return "the suite's step with one thread (THREADS=1)";
  if (v == "suite-torch-optim") return "the same with torch::optim instead of the fused optimizer";
  if (v == "suite-autograd")
    return "the same with autograd's step instead of the hand-written one (mlp_step.h)";
  if (v == "suite-dense-input")
    return "the hand-written step with its first layer as dense products although the batches are "
           "binary";
  if (v == "libtorch-plain")
    return "a plain LibTorch loop (torch::nn, torch::optim, default threads)";
  if (v == "python-default") return "pytorch/examples' loop in Python, torch's default threads";
  if (v == "python-threads") return "the same with threads set to the cores";
  if (v == "python-tuned")
    return "a tuned Python loop (threads, malloc, in-memory batches, foreach optimizer)";
  if (v == "gemm-bound")
    return "GEMM-only bound: the step's dense matrix products alone, on OpenBLAS's threads";
  if (v == "gemm-bound-split")
    return "the same products split across threads as the hand-written step runs them";
  if (v == "gemm-bound-1-thread") return "the same bound with one thread";
  return "";
}

std::string how_to_produce() {
  return "Produce it with `make bench` (installs Debian's python3-torch for the Python peer, "
         "builds "
         "`bench-train`, runs every variant and writes `results/bench/bench.json`; a few minutes "
         "on a "
         "quiet machine), then `make report`. `bench-train --help` lists the settings.";
}

/// Throws "KEY: expected KIND, found TYPE" unless j (an object) lacks `key`
/// or holds a value of that kind ("object", "array", "number", "string",
/// "boolean"; null is accepted for numbers and booleans: not measured).
void expect_kind(const json& j, const std::string& where, const std::string& key,
                 const std::string& kind) {
  if (!j.contains(key)) return;
  const json& v = j[key];
  const bool ok = kind == "object"    ? v.is_object()
                  : kind == "array"   ? v.is_array()
                  : kind == "number"  ? v.is_number() || v.is_null()
                  : kind == "string"  ? v.is_string()
                  : kind == "boolean" ? v.is_boolean() || v.is_null()
                                      : false;
  if (!ok) {
    throw std::runtime_error(where + (where.empty() ? "" : ".") + key + ": expected " +
                             (kind == "array" || kind == "object" ? "an " : "a ") + kind +
                             ", found " + v.type_name() + " " + v.dump().substr(0, 40));
  }
}

/// Checks the types of everything render_bench_file reads, so that a wrong
/// one is reported as "KEY: what was wrong" instead of a JSON library error.
void check_bench(const json& b) {
  if (!b.is_object())
    throw std::runtime_error(std::string("expected an object at the top, found ") + b.type_name());
  if (!b.contains("configs"))
    throw std::runtime_error("configs: missing (the list of configurations)");
  expect_kind(b, "", "configs", "array");
  for (const char* k : {"settings", "environment", "gpu", "provenance"})
    expect_kind(b, "", k, "object");
  expect_kind(b, "", "warnings", "array");
  expect_kind(b, "", "data", "string");
  expect_kind(b, "", "max_other_runnable", "number");
  if (b.contains("gpu")) expect_kind(b["gpu"], "gpu", "note", "string");
  if (b.contains("environment")) {
    const json& env = b["environment"];
    for (const char* k : {"env", "load_at_start", "load_at_end"})
      expect_kind(env, "environment", k, "object");
    for (const char* k : {"load_at_start", "load_at_end"}) {
      if (env.contains(k)) expect_kind(env[k], std::string("environment.") + k, "1min", "number");
    }
  }
  for (size_t i = 0; i < b["configs"].size(); ++i) {
    const json& c = b["configs"][i];
    const std::string where = "configs[" + std::to_string(i) + "]";
    if (!c.is_object())
      throw std::runtime_error(where + ": expected an object, found " + c.type_name() + " " +
                               c.dump().substr(0, 40));
    expect_kind(c, where, "targets", "array");
    expect_kind(c, where, "variants", "object");
    for (size_t t = 0; c.contains("targets") && t < c["targets"].size(); ++t) {
      const json& target = c["targets"][t];
      const std::string tw = where + ".targets[" + std::to_string(t) + "]";
      if (!target.is_object())
        throw std::runtime_error(tw + ": expected an object, found " + target.type_name());
      expect_kind(target, tw, "at_most", "boolean");
      expect_kind(target, tw, "holds", "boolean");
      expect_kind(target, tw, "value", "number");
      expect_kind(target, tw, "threshold", "number");
      expect_kind(target, tw, "why_not_judged", "string");
    }
    expect_kind(c, where, "contended", "object");
    if (c.contains("contended")) {
      const json& k = c["contended"];
      const std::string kw = where + ".contended";
      expect_kind(k, kw, "rows", "array");
      expect_kind(k, kw, "targets", "array");
      for (size_t i = 0; k.contains("rows") && i < k["rows"].size(); ++i) {
        const json& r = k["rows"][i];
        const std::string rw = kw + ".rows[" + std::to_string(i) + "]";
        if (!r.is_object())
          throw std::runtime_error(rw + ": expected an object, found " + r.type_name());
        for (const char* f : {"competing", "median_samples_per_s", "of_quiet", "of_1_thread",
                              "background_runnable"}) {
          expect_kind(r, rw, f, "number");
        }
        expect_kind(r, rw, "variant", "string");
      }
      for (size_t i = 0; k.contains("targets") && i < k["targets"].size(); ++i) {
        const json& t = k["targets"][i];
        const std::string tw = kw + ".targets[" + std::to_string(i) + "]";
        if (!t.is_object())
          throw std::runtime_error(tw + ": expected an object, found " + t.type_name());
        for (const char* f : {"value", "threshold", "background_runnable", "rounds"})
          expect_kind(t, tw, f, "number");
        expect_kind(t, tw, "holds", "boolean");
        expect_kind(t, tw, "target", "string");
      }
    }
    if (c.contains("variants")) {
      for (const auto& [name, r] : c["variants"].items()) {
        const std::string vw = where + ".variants." + name;
        if (!r.is_object())
          throw std::runtime_error(vw + ": expected an object, found " + r.type_name());
        expect_kind(r, vw, "median_samples_per_s", "number");
        expect_kind(r, vw, "other_runnable_before", "number");
      }
    }
  }
}

/// One benchmark file's section (the tables, the environment, the run).
std::string render_bench_file(const fs::path& file, Outcome& outcome) {
  std::ostringstream os;
  json b;
  auto unreadable = [&](const std::string& what) {
    outcome.skipped.push_back("performance appendix: could not read " + file.string() + ": " +
                              what);
    std::ostringstream status;
    status << "::: {.status}\n**The benchmark results could not be read and were skipped:** could "
              "not read "
           << md(file.string()) << ": " << md(what) << ". " << how_to_produce() << "\n:::\n";
    return status.str();
  };
  try {
    b = read_json(file);
    check_bench(b);
  } catch (const std::exception& e) {
    return unreadable(e.what());
  }
  try {
    return render_checked_bench(b, outcome);
  } catch (const OutputError&) {
    throw;
  } catch (const std::exception& e) {
    return unreadable(e.what());
  }
}

}  // namespace

namespace {

/// A configuration's contended section (bench-train --load, issue #21): the
/// targets, then every row with its ratios to the same variant quiet and to
/// one thread under the same load.
std::string render_contended(const json& c) {
  const json k = c.value("contended", json::object());
  std::ostringstream os;
  os << "**" << md(str(c, "name"))
     << " beside competing processes** (`bench-train --load`): in each of " << str(k, "rounds")
     << " rounds every variant below ran with no competing process added (the *quiet* reference, "
        "only as quiet as "
        "the machine was: see *background*) and beside each number of competing single-threaded "
        "busy loops "
        "that the benchmark started and stopped itself ("
     << str(k, "steps") << " timed steps a run, after " << str(k, "warmup")
     << " untimed). *of quiet* and *of 1 thread* are medians "
        "of per-round ratios to the same variant quiet and to the suite at `--threads 1` beside "
        "the same "
        "load; *background* is the most other runnable processes seen before the loops started "
        "(the "
        "machine's own load, beside which every figure of the row was also taken).\n\n";
  os << "| target | measured | threshold | paired rounds | background | holds "
        "|\n|---|---|---|---|---|---|\n";
  for (const auto& t : k.value("targets", json::array())) {
    os << "| " << md(str(t, "target")) << " | " << num(t.value("value", json()), 2)
       << "x | >= " << num(t.value("threshold", json()), 2) << "x | " << str(t, "rounds") << " | "
       << num(t.value("background_runnable", json()), 1) << " | "
       << (t.contains("holds") && t["holds"].is_boolean()
               ? (t["holds"].get<bool>() ? "**yes**" : "**no**")
               : "not judged: " + md(str(t, "why_not_judged")))
       << " |\n";
  }
  const json variants = k.value("variants", json::object());
  os << "\n| variant | competing | samples/s | threads | wait policy | of quiet | of 1 thread | "
        "background |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : k.value("rows", json::array())) {
    const std::string name = str(r, "variant");
    os << "| " << md(name) << " | " << str(r, "competing") << " | ";
    if (!r.value("median_samples_per_s", json()).is_number()) {
      os << "failed: " << md(r.contains("error") ? str(r, "error") : std::string("not measured"))
         << " | | | | | |\n";
      continue;
    }
    os << num(r["median_samples_per_s"], 0) << " | "
       << (r.contains("threads") ? str(r, "threads") : "?") << " | "
       << md(r.contains("wait_policy") ? str(r, "wait_policy") : std::string("?")) << " | "
       << num(r.value("of_quiet", json()), 2) << " | " << num(r.value("of_1_thread", json()), 2)
       << " | " << num(r.value("background_runnable", json()), 1) << " |\n";
  }
  os << "\n";
  for (const auto& [name, v] : variants.items()) {
    os << "- *" << md(name) << "*: " << md(v.is_object() ? str(v, "what") : std::string()) << "\n";
  }
  os << "\n";
  return os.str();
}

/// The section of a bench.json whose types check_bench accepted.
std::string render_checked_bench(const json& b, Outcome& outcome) {
  (void)outcome;
  std::ostringstream os;
  const json settings = b.value("settings", json::object());
  const json env = b.value("environment", json::object());
  os << "Training speed on the CPU, timed by `make bench` (`bench/bench_train.cpp` and "
        "`bench/python_vae.py`) on the same data ("
     << md(b.value("data", std::string("?")))
     << ") and configurations. Each variant runs in its own process, once per round in "
     << (settings.contains("rounds") ? str(settings, "rounds") : std::string("1"))
     << " rounds (the order rotated each round): " << str(settings, "warmup")
     << " untimed steps, then " << str(settings, "repeats") << " timed run(s) of "
     << str(settings, "steps")
     << " steps; the tables give the **median over rounds**, and each ratio is the median of its "
        "per-round "
        "ratios, so that a shared machine's slow and fast spells fall on every variant alike. "
        "Seconds per "
        "epoch are for 60,000 images. "
        "The machine is shared: the column *busy* gives the most other runnable processes seen "
        "around "
        "any of the variant's runs (more than zero means some figure was taken under load; two "
        "OpenMP "
        "threads on busy cores can be ten times slower than one). A target is judged on the rounds "
        "in "
        "which both variants it compares ran on a quiet machine, and not at all when there were "
        "none.\n\n";

  os << "| configuration | target | measured | threshold | holds |\n|---|---|---|---|---|\n";
  for (const auto& c : b["configs"]) {
    for (const auto& t : c.value("targets", json::array())) {
      const bool at_most = t.value("at_most", false);
      os << "| " << md(str(c, "name")) << " | " << md(str(t, "target")) << " | "
         << num(t.value("value", json()), 2) << "x"
         << (t.contains("quiet_rounds") ? " (" + str(t, "quiet_rounds") + " quiet rounds)"
                                        : std::string())
         << " | " << (at_most ? "<= " : ">= ") << num(t.value("threshold", json()), 1) << "x | "
         << (t.contains("holds") && t["holds"].is_boolean()
                 ? (t["holds"].get<bool>() ? "**yes**" : "**no**")
                 : "not judged: " + md(t.value("why_not_judged", std::string("not measured"))))
         << " |\n";
    }
  }
  os << "\nTargets from issue #9 (CPU): the KW epoch within 1.5x of its GEMM-only bound; at least "
        "2.5x "
        "the default Python loop and 1.5x the tuned one; small models at least 2x Python. They are "
        "judged "
        "on the suite as the chapters run it (all available cores). The rows marked *(1 thread)* "
        "or "
        "*(suite at 1 thread)* hold the suite to the same thresholds on one thread, a comparison "
        "that "
        "survives a loaded machine better; they are not the issue's targets.\n\n"
        "The bound times the step's products as dense GEMMs. On binary batches (this benchmark's "
        "protocol) the hand-written step does not run two of the five large ones: its first "
        "layer's forward "
        "sums the weight rows of each image's lit pixels, and its weight gradient sums, for each "
        "pixel, the "
        "gradient rows of the images it is lit in (`src/vaerepro/mlp_step.h`). The step can "
        "therefore take "
        "less time than the bound (a ratio below 1); *suite-dense-input* shows the step without "
        "that "
        "lever.\n\n";

  for (const auto& c : b["configs"]) {
    os << "**" << md(str(c, "description")) << "**\n\n";
    os << "| variant | what | samples/s | s/epoch | threads | suite is | busy "
          "|\n|---|---|---|---|---|---|---|\n";
    const json variants = c.value("variants", json::object());
    double suite = std::nan("");
    if (variants.contains("suite") && variants["suite"].contains("median_samples_per_s") &&
        variants["suite"]["median_samples_per_s"].is_number()) {
      suite = variants["suite"]["median_samples_per_s"].get<double>();
    }
    for (const char* name :
         {"suite", "suite-1-thread", "suite-torch-optim", "suite-autograd", "suite-dense-input",
          "libtorch-plain", "python-default", "python-threads", "python-tuned", "gemm-bound",
          "gemm-bound-split", "gemm-bound-1-thread"}) {
      if (!variants.contains(name)) continue;
      const json& r = variants[name];
      os << "| " << name << " | " << describe_variant(name) << " | ";
      if (!r.contains("median_samples_per_s") || !r["median_samples_per_s"].is_number()) {
        os << "failed: " << md(str(r, "error")) << " | | | | |\n";
        continue;
      }
      const double m = r["median_samples_per_s"].get<double>();
      std::string rel;
      if (std::string(name).rfind("gemm-bound", 0) == 0) {
        rel = "takes " + num(m / suite, 2) + "x this bound's time";
      } else if (std::string(name) != "suite") {
        rel = num(suite / m, 2) + "x as fast";
      }
      os << num(m, 0) << " | " << num(60000.0 / m, 2) << " | " << str(r, "threads") << " | " << rel
         << " | " << num(r.value("other_runnable_before", json()), 1) << " |\n";
    }
    os << "\n";
  }

  for (const auto& c : b["configs"]) {
    if (c.contains("contended")) os << render_contended(c);
  }

  const json gpu = b.value("gpu", json::object());
  os << "**GPU.** " << md(gpu.value("note", std::string("GPU numbers were not measured.")))
     << "\n\n";

  os << "**Environment of these figures.**\n\n| | |\n|---|---|\n";
  auto row = [&](const std::string& k, const std::string& v) {
    os << "| " << md(k) << " | " << md(v) << " |\n";
  };
  row("CPU", str(env, "cpu_model"));
  row("cores available", str(env, "available_cores"));
  row("BLAS library", str(env, "blas_library"));
  row("OpenBLAS kernel type", str(env, "openblas_corename"));
  row("OPENBLAS_CORETYPE", env.contains("env") ? str(env["env"], "OPENBLAS_CORETYPE") : "?");
  if (env.contains("coretype_setting") && str(env, "coretype_setting") != "environment") {
    row("OPENBLAS_CORETYPE in the environment", str(env, "coretype_in_environment") +
                                                    " (this run: --coretype " +
                                                    str(env, "coretype_setting") + ")");
  }
  std::string step = "?";
  for (const auto& c : b["configs"]) {
    const json v = c.value("variants", json::object());
    if (v.contains("suite") && v["suite"].contains("step")) step = str(v["suite"], "step");
  }
  row("the suite's step", step);
  row("LibTorch", str(env, "libtorch_version"));
  std::string py = "not run";
  for (const auto& c : b["configs"]) {
    const json v = c.value("variants", json::object());
    if (v.contains("python-default") && v["python-default"].contains("torch_version")) {
      py = "torch " + str(v["python-default"], "torch_version") + ", Python " +
           str(v["python-default"], "python");
    }
  }
  row("Python peer", py);
  row("threads (suite)", str(env, "intra_op_threads"));
  row("allocator", str(env, "malloc_settings"));
  if (env.contains("env") && env["env"].is_object()) {
    for (const auto& [k, v] : env["env"].items()) {
      if (k != "OPENBLAS_CORETYPE") row(k, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  const auto load = [&](const char* key) {
    return env.contains(key) ? num(env[key].value("1min", json()), 2) : std::string("?");
  };
  row("load average (1 min) at start / end", load("load_at_start") + " / " + load("load_at_end"));
  row("most other runnable processes seen", num(b.value("max_other_runnable", json()), 1));
  os << "\n";
  const json warnings = b.value("warnings", json::array());
  if (!warnings.empty()) {
    os << "Warnings recorded with these figures:\n\n";
    for (const auto& w : warnings)
      os << "- " << md(w.is_string() ? w.get<std::string>() : w.dump()) << "\n";
    os << "\n";
  }
  const json p = b.value("provenance", json::object());
  os << "*Run:* commit " << md(str(p, "git_commit")) << ", " << md(str(p, "date_utc")) << ", `"
     << str(p, "command_line") << "`.\n";
  return os.str();
}

// ---------------------------------------------------------------- the GPU check

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  if (s < 120) {
    os.precision(s < 10 ? 1 : 0);
    os << s << " s";
  } else if (s < 7200) {
    os.precision(1);
    os << s / 60 << " min";
  } else {
    os.precision(1);
    os << s / 3600 << " h";
  }
  return os.str();
}

double number(const json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>()
                                                                : std::nan("");
}

double rate_of(const json& j, const char* samples, const char* seconds) {
  const double n = number(j, samples), t = number(j, seconds);
  return t > 0 ? n / t : std::nan("");
}

/// The suite's KW rate in a bench file (the CPU's: a GPU bench file says so).
double bench_kw_suite(const json& bench) {
  if (!bench.is_object() || !bench.contains("configs") || !bench["configs"].is_array())
    return std::nan("");
  for (const auto& c : bench["configs"]) {
    if (c.value("name", std::string()) != "kw") continue;
    const json v = c.value("variants", json::object());
    if (v.contains("suite")) return number(v["suite"], "median_samples_per_s");
  }
  return std::nan("");
}

/// Chapter 1's own CPU run of Nz = 20, when results/ holds one.
double cpu_chapter_01(const Paths& paths) {
  try {
    namespace c1 = schema::ch01;
    const fs::path dir = fs::path(paths.results) / c1::kSlug;
    const json run = read_json(dir / "run.json");
    if (run.value(schema::run_key::kDevice, std::string("cpu")).rfind("cuda", 0) == 0)
      return std::nan("");
    for (const auto& m : read_json(dir / "metrics.json").value(c1::kModels, json::array())) {
      if (m.value(c1::kNz, 0) == 20)
        return rate_of(m, schema::key::kSamplesSeen, schema::key::kTrainSeconds);
    }
  } catch (const std::exception&) {
  }
  return std::nan("");
}

/// Chapter 6's CPU probe [500, 500, 3] (seed 0), when results/ holds one
/// with its training time.
double cpu_probe(const Paths& paths) {
  std::error_code ec;
  const fs::path dir = fs::path(paths.results) / ".points" / schema::ch06::kSlug;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("probe-[500, 500, 3]-r0-", 0) != 0) continue;
    try {
      const json p = read_json(e.path() / "point.json");
      if (p.value(schema::run_key::kDevice, std::string("cpu")) != "cpu") continue;
      const double r = rate_of(p, schema::key::kSamplesSeen, schema::key::kTrainSeconds);
      if (std::isfinite(r)) return r;
    } catch (const std::exception&) {
    }
  }
  return std::nan("");
}

std::string how_to_run_gpu_check() {
  return "The check is `scripts/gpu-check.sh`, run on a GPU machine with the folder that `make "
         "gpu-bundle` "
         "makes here (README.md, *On a GPU*); copy the files it writes into `results/gpu/` and run "
         "`make report`.";
}

std::string render_gpu_section(const Paths& paths, const json& bench, Outcome& outcome) {
  std::ostringstream os;
  const fs::path file = fs::path(paths.results) / "gpu" / "gpu-check.json";
  os << "\n### On a GPU\n\n";
  if (!fs::exists(file)) {
    outcome.skipped.push_back("performance appendix: " + file.string() +
                              " not found (no GPU check has run yet)");
    os << "::: {.status}\n**No GPU check has run yet.** The chapters have only run on the CPU "
          "here. "
       << how_to_run_gpu_check() << "\n:::\n";
    return os.str();
  }
  json g;
  try {
    g = read_json(file);
    if (!g.is_object() || g.value("kind", std::string()) != "gpu-check") {
      throw std::runtime_error(file.string() + " is not a GPU check's summary");
    }
  } catch (const std::exception& e) {
    outcome.skipped.push_back(std::string("performance appendix: ") + e.what());
    os << "::: {.status}\n**The GPU check's results could not be read and were skipped:** "
       << md(e.what()) << ". " << how_to_run_gpu_check() << "\n:::\n";
    return os.str();
  }
  const json machine = g.value("machine", json::object());
  const json gpu = machine.value("gpu", json::object());
  const std::string gpu_name =
      gpu.is_object() && gpu.contains("name") ? str(gpu, "name") : "no GPU";
  if (g.value("dry_run", false)) {
    os << "::: {.status}\n**These figures come from a dry run** (`make gpu-check-dry`, on the CPU "
          "with "
          "Debian's LibTorch): they check the script, not a GPU.\n:::\n\n";
  }
  const json ch1 = g.value("chapter_01", json());
  const json ch6 = g.value("chapter_06_probe", json());
  const double g1 = number(ch1, "samples_per_s"), g6 = number(ch6, "samples_per_s");
  double c1 = cpu_chapter_01(paths);
  std::string c1_from = "chapter 1's run in results/";
  if (!std::isfinite(c1)) {
    c1 = bench_kw_suite(bench);
    c1_from = "`make bench`, the suite's KW step";
  }
  const double c6 = cpu_probe(paths);
  constexpr double kSeedRate =
      2000 * 60000.0 / (150 * 60.0);  // seed 000: 2000 epochs in about 150 min
  auto ratio = [](double gpu_rate, double cpu_rate) {
    return std::isfinite(gpu_rate) && std::isfinite(cpu_rate) && cpu_rate > 0
               ? num(gpu_rate / cpu_rate, 1) + "x"
               : std::string("n/a");
  };
  auto time_for = [](double samples, double r) {
    return r > 0 ? duration(samples / r) : std::string("n/a");
  };
  os << "Timed by `scripts/gpu-check.sh` on " << md(gpu_name) << " (" << md(str(g, "when"))
     << "): chapter 1's "
     << "full profile for Nz = 20 over " << num(number(ch1, "samples"), 0)
     << " of KW2013's 1e8 samples, and "
     << "chapter 6's probe [500, 500, 3] over " << num(number(ch6, "samples"), 0)
     << " of the seed's 6e7 (1000 epochs); samples/s count training steps only (evaluations "
        "apart). The CPU "
        "column is this machine's: chapter 1 from "
     << c1_from
     << ", the probe from chapter 6's cached probe when it recorded its training time.\n\n";
  os << "| | CPU | GPU (" << md(gpu_name) << ") | GPU / CPU |\n|---|---|---|---|\n";
  os << "| chapter 1, Nz = 20 (784-500-20 tanh, Adagrad, batch 100): samples/s | " << num(c1, 0)
     << " | " << num(g1, 0) << " | " << ratio(g1, c1) << " |\n";
  os << "| chapter 1: KW2013's 1e8 samples take | " << time_for(1e8, c1) << " | "
     << time_for(1e8, g1) << " | |\n";
  os << "| chapter 6 probe [500, 500, 3] (batch 100): samples/s | " << num(c6, 0) << " | "
     << num(g6, 0) << " | " << ratio(g6, c6) << " |\n";
  os << "| the probe at the seed's 1000 epochs (6e7 samples) takes | " << time_for(6e7, c6) << " | "
     << time_for(6e7, g6) << " | |\n";
  os << "| seed 000's 2000-epoch [500, 500, 3] run (the seed: about 150 min, " << num(kSeedRate, 0)
     << " samples/s; issue #23's aim on the H200: under 2 min) | " << time_for(1.2e8, c6) << " | "
     << time_for(1.2e8, g6) << " | " << ratio(g6, kSeedRate) << " the seed's rate |\n";
  const json b = g.value("bench", json());
  if (b.is_object() && b.contains("rates") && b["rates"].is_array()) {
    for (const auto& r : b["rates"]) {
      if (str(r, "config") != "kw") continue;
      const double gr = number(r, "samples_per_s");
      const bool suite = str(r, "variant") == "suite";
      os << "| bench-train kw, " << md(str(r, "variant")) << ": samples/s | "
         << (suite ? num(bench_kw_suite(bench), 0) : "") << " | " << num(gr, 0) << " | "
         << (suite ? ratio(gr, bench_kw_suite(bench)) : "") << " |\n";
    }
  }
  os << "\n";
  const json t = g.value("tests", json());
  if (t.is_object()) {
    os << "**Tests there.** ctest: " << md(str(t, "summary_line", "no summary"))
       << ". The CUDA tests: ";
    std::string list;
    for (const auto& c : t.value("cuda", json::array())) {
      list += (list.empty() ? "" : ", ") + md(str(c, "name")) + " *" + md(str(c, "status")) + "*";
    }
    os << (list.empty() ? "none ran" : list) << ".\n\n";
  }
  const json problems = g.value("problems", json::array());
  if (problems.is_array() && !problems.empty()) {
    os << "Problems the check recorded:\n\n";
    for (const auto& p : problems)
      os << "- " << md(p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
    os << "\n";
  }
  os << "**Environment of the GPU figures.**\n\n| | |\n|---|---|\n";
  auto row = [&](const std::string& k, const std::string& v) {
    os << "| " << md(k) << " | " << md(v) << " |\n";
  };
  row("GPU", gpu_name + (gpu.is_object() && gpu.contains("driver")
                             ? " (driver " + str(gpu, "driver") + ", " + str(gpu, "memory") + ")"
                             : std::string()));
  row("CPU", str(machine, "cpu_model") + ", " + str(machine, "cpu_cores") + " cores");
  const json prov = g.value("provenance", json::object());
  const json runtime = prov.value("runtime", json::object());
  row("LibTorch", runtime.is_object() ? str(runtime, "libtorch_version") : "?");
  const json pt = machine.value("python_torch", json());
  row("python3's torch",
      pt.is_object() ? str(pt, "version") + " (CUDA " + str(pt, "cuda") + ")" : "?");
  row("compiler", str(machine, "compiler"));
  row("the suite's step", str(ch1, "step"));
  const json chapter_run = prov.value("chapter_run", json::object());
  row("commit", chapter_run.is_object() ? str(chapter_run, "git_commit") : "?");
  std::string steps;
  for (const auto& s : g.value("steps", json::array())) {
    steps += (steps.empty() ? "" : ", ") + str(s, "name") + " " + str(s, "status") + " (" +
             str(s, "seconds") + " s)";
  }
  row("steps", steps + "; " + num(number(g, "elapsed_seconds"), 0) + " s in all");
  os << "\n";
  return os.str();
}

}  // namespace

std::string render_performance(const Paths& paths, Outcome& outcome) {
  try {
    return render_performance_files(paths, outcome) + "\n" + render_time_spent(paths);
  } catch (const OutputError&) {
    throw;
  } catch (const std::exception& e) {
    // A folder that cannot be listed (a symlink loop, permissions): the rest of the report still
    // appears.
    outcome.skipped.push_back("performance appendix: could not read " +
                              (fs::path(paths.results) / "bench").string() + ": " + e.what());
    return "::: {.status}\n**The benchmark results could not be read and were skipped:** could not "
           "read " +
           md((fs::path(paths.results) / "bench").string()) + ": " + md(e.what()) + ". " +
           how_to_produce() + "\n:::\n";
  }
}

namespace {

std::string render_performance_files(const Paths& paths, Outcome& outcome) {
  const fs::path dir = fs::path(paths.results) / "bench";
  const fs::path main_file = dir / "bench.json";
  std::ostringstream os;
  if (!fs::exists(main_file)) {
    outcome.skipped.push_back("performance appendix: " + main_file.string() +
                              " not found (make bench)");
    os << "::: {.status}\n**No benchmark results yet.** " << how_to_produce() << "\n:::\n";
    os << render_gpu_section(paths, json(), outcome);
    return os.str();
  }
  os << render_bench_file(main_file, outcome);
  // Figures taken with OPENBLAS_CORETYPE changed (bench-train --coretype),
  // each in its own section: they compare only among themselves.
  std::vector<fs::path> others;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("bench-coretype-", 0) == 0 && e.path().extension() == ".json")
      others.push_back(e.path());
  }
  std::sort(others.begin(), others.end());
  for (const auto& f : others) {
    const std::string setting = f.stem().string().substr(std::string("bench-coretype-").size());
    os << "\n### The same with OPENBLAS_CORETYPE "
       << (setting == "unset" ? "unset" : "= " + md(setting))
       << "\n\nThe environment of these machines sets `OPENBLAS_CORETYPE=Haswell`, which makes "
          "OpenBLAS "
          "use AVX2 kernels even on CPUs with AVX-512. `make bench` times everything a second time "
          "with "
       << (setting == "unset" ? "it unset (OpenBLAS then picks the kernels for this CPU)"
                              : "it set to " + md(setting))
       << ", every variant alike, Python's included (`bench-train --coretype " << md(setting)
       << "`). The chapters run with the environment as it is; the warning they print says how to "
          "change it.\n\n";
    os << render_bench_file(f, outcome);
  }
  json bench;
  try {
    bench = read_json(main_file);
  } catch (const std::exception&) {
  }
  os << render_gpu_section(paths, bench, outcome);
  return os.str();
}

}  // namespace

}  // namespace vaerepro::report
