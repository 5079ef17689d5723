#pragma once
/// \file experiment.h
/// The chapter runtime: a chapter declares what it is (ChapterInfo), its
/// options (an OptionTable, options.h) and its experiment (Chapter::run); one
/// entry, chapter_main, does the rest in the same order for every chapter:
///
///   parse the command line (the profile first, into an enum; its defaults;
///   then the values given) -> validate -> set up the runtime and the data
///   (start_chapter) -> the experiment, staged (its results appear only when
///   complete; a failure is recorded as failed; SIGINT/SIGTERM leaves its
///   checkpoints to resume from) -> finish (metrics, run.json last, verdicts)
///
/// and turns exceptions into the suite's exit codes (cli.h: 2 usage, 1
/// failure, 128 + signal when stopped), for one seed or for `--seeds 1,2,3`.
///
/// Every model's seed is `derive_seed(--seed, model name)` (seeding.h), and
/// every cache key (the run's checkpoints, a sweep point, a probe) is the hash
/// of one RunIdentity with the model's configuration.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/chapter.h"
#include "vaerepro/classifier.h"
#include "vaerepro/options.h"
#include "vaerepro/points.h"
#include "vaerepro/seeding.h"
#include "vaerepro/trainer.h"

namespace vaerepro {

/// What a chapter is: its names, its claim's title, and what its published
/// numbers were made with.
struct ChapterInfo {
  std::string program;        ///< "chapter-01" (messages, exit lines)
  std::string slug;           ///< "01-elbo-vs-latent" (results/SLUG/)
  std::string title;          ///< run.json "title" and the --help synopsis
  std::string paper_dataset;  ///< "mnist": another dataset's numbers are said not to compare
  Protocol protocol = Protocol::kBinarized;  ///< the chapter's default protocol (the paper's)
};

/// Raised by ChapterRun::begin when results/SLUG/ is already complete for this
/// configuration: chapter_main exits 0 having trained nothing.
class AlreadyComplete : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A trained MLP VAE with its training record.
struct TrainedVae {
  Vae vae{nullptr};
  TrainResult result;
};

/// One run of a chapter, handed to Chapter::run: the setup (device, data,
/// protocol), the configuration being recorded, and the run's files.
class ChapterRun {
 public:
  ChapterRun(const ChapterInfo& info, ChapterSetup setup, Profile profile, nlohmann::json config);
  ~ChapterRun();
  ChapterRun(const ChapterRun&) = delete;
  ChapterRun& operator=(const ChapterRun&) = delete;

  const ChapterInfo& info() const { return info_; }
  const ChapterSetup& setup() const { return setup_; }
  const CommonOptions& common() const { return setup_.common; }
  Profile profile() const { return profile_; }
  torch::Device device() const { return setup_.device; }
  Protocol protocol() const { return setup_.protocol; }
  const std::string& dataset_name() const { return setup_.dataset_name; }
  const RunIdentity& identity() const { return identity_; }
  /// "chapter-01: " for messages.
  std::string prefix() const { return info_.program + ": "; }

  /// The seed of the model `name` (seeding.h); `torch::manual_seed` it before
  /// building the model.
  int64_t seed_for(const std::string& name) const { return derive_seed(setup_.common.seed, name); }
  /// The chapter's data as tensors on the device (prepare_tensors with
  /// --max-train / --max-test), seeded by the run seed (the test set's fixed
  /// binarisation does not depend on it).
  TensorData tensors(int64_t max_train, int64_t max_test) const;

  /// The configuration recorded in run.json and hashed: the declared options;
  /// add derived values (the parsed lists, the resolved weight decay) before begin().
  nlohmann::json& config() { return config_; }

  /// This run's budget record (schema/run_record.h): it trains `amount`
  /// `unit` where the paper trained `paper_amount` (`paper`: those words with
  /// their source); `text` is the whole budget in one sentence. Provisional
  /// exactly when amount < paper_amount; the profile is this run's.
  schema::Budget budget(double amount, double paper_amount, const std::string& unit,
                        const std::string& paper, const std::string& text) const;
  /// The budget of a chapter that trains each of its models (`each`: "model",
  /// "probe") for the same `samples`: the unit "training samples per EACH" and
  /// the sentence "each EACH sees SAMPLES training samples (NOTE)".
  schema::Budget samples_budget(int64_t samples, double paper_samples, const std::string& each,
                                const std::string& paper, const std::string& note) const;
  /// Starts the recorded run: creates the staging folder, records the
  /// configuration, the data's counts and `budget` (from budget(): the report
  /// takes the budget and whether the verdicts are provisional from it),
  /// takes the configuration's lock (RunLocked when another run holds it)
  /// and, when results/SLUG/ is already complete for it, throws
  /// AlreadyComplete. Call once, before training.
  void begin(const nlohmann::json& data, const schema::Budget& budget);
  bool begun() const { return writer_ != nullptr; }
  /// The staging folder's writer (after begin()).
  RunWriter& writer();
  /// run.json as it will be written (after begin()); add to it freely.
  nlohmann::json& record();
  /// Checkpointing of the model `name` in this run (after begin()).
  CheckpointOptions checkpoint(const std::string& name) const;

  /// A sweep point store for this chapter, keyed by the run's identity.
  PointStore point_store() const;

  /// The recipe every MLP-VAE chapter follows: seed the model `name`, build
  /// it from `model` on the device, an optimizer from `optimizer`, and train
  /// it with `train` (its label and, unless set, its checkpoint filled in:
  /// this run's, after begin()).
  TrainedVae train_vae(const std::string& name, const VaeOptions& model,
                       const OptimizerOptions& optimizer, const TensorData& data,
                       TrainOptions train) const;

  /// The judge of a chapter's images (classifier.h's train_judge), seeded as
  /// the model `seed_name`, on the device, with this run's checkpoint
  /// "judge-classifier" (a stopped run resumes it, or reuses it once trained).
  Judge train_judge(const TensorData& data, int64_t epochs,
                    const std::string& seed_name = "judge-classifier") const;

  /// Internal (chapter_main): marks complete with `metrics`, or failed.
  void finish(const nlohmann::json& metrics);
  void fail(const std::string& message);
  void abandon();

 private:
  const ChapterInfo& info_;
  ChapterSetup setup_;
  Profile profile_;
  nlohmann::json config_;
  RunIdentity identity_;
  std::unique_ptr<RunWriter> writer_;
  std::unique_ptr<RunCheckpoints> checkpoints_;
  nlohmann::json record_;
  std::chrono::steady_clock::time_point started_;
};

/// A chapter: what it is, its options and its experiment. One object per
/// seed of a `--seeds` run.
class Chapter {
 public:
  virtual ~Chapter() = default;
  virtual ChapterInfo info() const = 0;
  /// Binds the experiment's options to the chapter's members.
  virtual void declare(OptionTable& options) = 0;
  /// Checks across options and parses what needs parsing, after the profile
  /// and the given values are in; throw UsageError. Runs before any data is read.
  virtual void validate() {}
  /// The experiment. Modes that record nothing (listing pending points,
  /// training one point) return before run.begin(); a recorded run calls
  /// begin() and returns its metrics ("checks": the verdicts).
  virtual nlohmann::json run(ChapterRun& run) = 0;
};

/// Runs a chapter from main(): `make` gives a fresh chapter object per seed.
int chapter_main(int argc, char** argv, const std::function<std::unique_ptr<Chapter>()>& make);

/// chapter_main for a chapter class C with a default constructor.
template <class C>
int chapter_main(int argc, char** argv) {
  return chapter_main(argc, argv, [] { return std::make_unique<C>(); });
}

}  // namespace vaerepro
