#pragma once
/// \file run_record.h
/// The results contract, part 1: what every chapter's run.json holds and the
/// report reads (layout: chapters/README.md, "run.json"). A chapter writes
/// these keys through the constants below and the report reads them through
/// the same constants, so a renamed key is a compile error on both sides
/// rather than an empty table. Torch-free: the report target links no LibTorch.
///
/// Versions: a run.json with `schema_version` 2 records its budget as a
/// Budget object (profile, amount, the paper's amount, provisional and why).
/// A run.json without `schema_version` is the previous layout (version 1):
/// `budget` was a sentence and the verdicts' provisional flag lived in
/// metrics.json `checks_budget`; read_budget() reads both.

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace vaerepro::schema {

/// The layout this checkout writes.
inline constexpr int kSchemaVersion = 2;
/// The layout of a run.json without `schema_version` (before budgets were records).
inline constexpr int kLegacySchemaVersion = 1;

/// The keys of run.json (chapters/README.md, "run.json (every chapter)").
namespace run_key {
inline constexpr const char* kSchemaVersion =
    "schema_version";                                       ///< int; absent: kLegacySchemaVersion
inline constexpr const char* kStatus = "status";            ///< run_status::k*
inline constexpr const char* kChapter = "chapter";          ///< the slug, "01-elbo-vs-latent"
inline constexpr const char* kTitle = "title";              ///< the claim's title
inline constexpr const char* kProfile = "profile";          ///< smoke | quick | full
inline constexpr const char* kSeed = "seed";                ///< the run seed (int)
inline constexpr const char* kDevice = "device";            ///< "cpu", "cuda:0"
inline constexpr const char* kDataset = "dataset";          ///< {name, description, fingerprint}
inline constexpr const char* kProtocol = "protocol";        ///< {name, description}
inline constexpr const char* kName = "name";                ///< of dataset and protocol
inline constexpr const char* kDescription = "description";  ///< of dataset and protocol
inline constexpr const char* kFingerprint = "fingerprint";  ///< of dataset
inline constexpr const char* kFolders = "folders";          ///< {data, results}
inline constexpr const char* kData = "data";                ///< example counts, pixels
inline constexpr const char* kConfig =
    "config";  ///< every effective option (chapter's config keys: metrics.h)
inline constexpr const char* kBudget = "budget";  ///< a Budget (version 2); a sentence in version 1
inline constexpr const char* kProvenance =
    "provenance";  ///< {git_commit, date_utc, host, command_line}
inline constexpr const char* kGitCommit = "git_commit";      ///< of provenance
inline constexpr const char* kDateUtc = "date_utc";          ///< of provenance
inline constexpr const char* kRuntime = "runtime";           ///< LibTorch, BLAS, threads, CUDA
inline constexpr const char* kWallSeconds = "wall_seconds";  ///< the whole run
inline constexpr const char* kTimeSpent = "time_spent";      ///< {stage: seconds} (time_ledger.h)
inline constexpr const char* kConfigHash = "config_hash";    ///< the configuration's hash
inline constexpr const char* kError = "error";               ///< only when status is failed
}  // namespace run_key

/// The values of run.json `status`.
namespace run_status {
inline constexpr const char* kComplete = "complete";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kRunning = "running";
}  // namespace run_status

/// The schema version a run.json declares: its `schema_version`, or
/// kLegacySchemaVersion when absent (or not an integer: the previous layout
/// never wrote the key).
inline int schema_version_of(const nlohmann::json& run) {
  if (!run.is_object()) return kLegacySchemaVersion;
  const auto it = run.find(run_key::kSchemaVersion);
  return it != run.end() && it->is_number_integer() ? it->get<int>() : kLegacySchemaVersion;
}

/// A run's training budget against the paper's, and whether its verdicts are
/// therefore provisional (run.json `budget`, version 2). The chapter records
/// it; the report prints it and takes the provisional wording from it, never
/// from the profile's name.
struct Budget {
  std::string profile;  ///< the profile whose defaults the run started from (smoke | quick | full)
  double amount = NAN;  ///< what the run trained, in `unit` (e.g. 3e7 samples per model)
  double paper_amount = NAN;  ///< the paper's, in the same unit; NaN when the paper states none
  std::string unit;           ///< "training samples per model", "epochs", ...
  std::string paper;  ///< the paper's budget in words with its source: "KW2013 Fig. 2: 1e8 samples
                      ///< per model"
  std::string text;   ///< the whole budget in one sentence, as the setup table shows it
  bool provisional = true;  ///< the verdicts were decided below the paper's budget
  std::string why;          ///< why provisional, or at what budget they were decided: one clause
  bool legacy = false;      ///< read from a version-1 run.json (not written: read_budget sets it)
};

/// A budget in words: whole numbers below 1e5 as they are ("3000"), others
/// with three significant digits ("1.5e+06").
inline std::string budget_number(double v) {
  std::ostringstream os;
  if (std::isfinite(v) && std::abs(v) < 1e5 && v == std::floor(v)) {
    os << static_cast<int64_t>(v);
  } else {
    os.precision(3);
    os << v;
  }
  return os.str();
}

/// The budget record of a run that trained `amount` `unit` where the paper
/// trained `paper_amount` (`paper`: those words with their source, e.g.
/// "KW2013 Fig. 2: 1e8 samples per model"): provisional exactly when
/// amount < paper_amount, with `why` saying at what fraction of the paper's
/// budget the verdicts were decided. `text` is the sentence the setup table shows.
inline Budget make_budget(const std::string& profile, double amount, double paper_amount,
                          const std::string& unit, const std::string& paper,
                          const std::string& text) {
  Budget b;
  b.profile = profile;
  b.amount = amount;
  b.paper_amount = paper_amount;
  b.unit = unit;
  b.paper = paper;
  b.text = text;
  b.provisional = std::isfinite(paper_amount) && amount < paper_amount;
  if (!std::isfinite(paper_amount)) {
    b.why = "decided at " + budget_number(amount) + " " + unit +
            "; the paper states no budget to compare (" + paper + ")";
  } else if (b.provisional) {
    std::ostringstream pct;
    pct.precision(2);
    pct << 100.0 * amount / paper_amount;
    b.why = "decided at " + budget_number(amount) + " " + unit + ", " + pct.str() +
            "% of the paper's " + budget_number(paper_amount) + " (" + paper + ")";
  } else {
    b.why = "decided at the paper's budget or beyond: " + budget_number(amount) + " " + unit +
            " (" + paper + ")";
  }
  return b;
}

/// The keys of a Budget in run.json.
namespace budget_key {
inline constexpr const char* kProfile = "profile";
inline constexpr const char* kAmount = "amount";
inline constexpr const char* kPaperAmount = "paper_amount";  ///< null when the paper states none
inline constexpr const char* kUnit = "unit";
inline constexpr const char* kPaper = "paper";
inline constexpr const char* kText = "text";
inline constexpr const char* kProvisional = "provisional";
inline constexpr const char* kWhy = "why";
}  // namespace budget_key

/// Budget as JSON (nlohmann's ADL hook): NaN amounts as null.
inline void to_json(nlohmann::json& j, const Budget& b) {
  auto number = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  j = nlohmann::json{{budget_key::kProfile, b.profile},
                     {budget_key::kAmount, number(b.amount)},
                     {budget_key::kPaperAmount, number(b.paper_amount)},
                     {budget_key::kUnit, b.unit},
                     {budget_key::kPaper, b.paper},
                     {budget_key::kText, b.text},
                     {budget_key::kProvisional, b.provisional},
                     {budget_key::kWhy, b.why}};
}

/// Budget from JSON: `profile`, `text`, `provisional` and `why` are required
/// (a missing one throws, naming it); a null amount reads as NaN.
inline void from_json(const nlohmann::json& j, Budget& b) {
  auto number = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : NAN;
  };
  b.profile = j.at(budget_key::kProfile).get<std::string>();
  b.amount = number(budget_key::kAmount);
  b.paper_amount = number(budget_key::kPaperAmount);
  b.unit = j.value(budget_key::kUnit, "");
  b.paper = j.value(budget_key::kPaper, "");
  b.text = j.at(budget_key::kText).get<std::string>();
  b.provisional = j.at(budget_key::kProvisional).get<bool>();
  b.why = j.at(budget_key::kWhy).get<std::string>();
  b.legacy = false;
}

/// metrics.json `checks_budget` of version 1 (`provisional`, `note`,
/// chapter 1's `samples_per_model` and `paper_samples`): read only, never written now.
namespace legacy_key {
inline constexpr const char* kChecksBudget = "checks_budget";
inline constexpr const char* kProvisional = "provisional";
inline constexpr const char* kNote = "note";
inline constexpr const char* kSamplesPerModel = "samples_per_model";
inline constexpr const char* kPaperSamples = "paper_samples";
}  // namespace legacy_key

/// The budget a run recorded: run.json `budget` when the run is version 2 or
/// later (a malformed record throws, naming the key; a missing one, or a bare
/// sentence, reads as provisional with a `why` that says the record is
/// missing); for a version-1 run, rebuilt from its sentence and metrics.json
/// `checks_budget` (provisional unless that says otherwise, as the report
/// always read it), with `legacy` set so that the report can say so.
inline Budget read_budget(const nlohmann::json& run, const nlohmann::json& metrics) {
  const bool current = schema_version_of(run) >= kSchemaVersion;
  if (current && run.contains(run_key::kBudget) && run[run_key::kBudget].is_object()) {
    return run[run_key::kBudget].get<Budget>();
  }
  Budget b;
  b.legacy = !current;
  b.profile = run.is_object() ? run.value(run_key::kProfile, "?") : "?";
  const auto text = run.is_object() ? run.find(run_key::kBudget) : run.end();
  b.text = run.is_object() && text != run.end() && text->is_string() ? text->get<std::string>()
                                                                     : "not recorded";
  const nlohmann::json cb = metrics.is_object()
                                ? metrics.value(legacy_key::kChecksBudget, nlohmann::json::object())
                                : nlohmann::json::object();
  if (cb.is_object()) {
    b.provisional = cb.value(legacy_key::kProvisional, true);
    b.why = cb.value(legacy_key::kNote, "");
    if (cb.contains(legacy_key::kSamplesPerModel) && cb[legacy_key::kSamplesPerModel].is_number()) {
      b.amount = cb[legacy_key::kSamplesPerModel].get<double>();
      b.unit = "training samples per model";
    }
    if (cb.contains(legacy_key::kPaperSamples) && cb[legacy_key::kPaperSamples].is_number()) {
      b.paper_amount = cb[legacy_key::kPaperSamples].get<double>();
    }
  }
  if (current) {
    b.why =
        "the run recorded no budget record (run.json `budget` is not a schema::Budget; the chapter "
        "should "
        "write make_budget()), so its verdicts are taken as provisional";
    b.provisional = true;
  } else if (b.why.empty()) {
    b.why = "the run (an older results layout) recorded only: " + b.text;
  }
  return b;
}

}  // namespace vaerepro::schema
