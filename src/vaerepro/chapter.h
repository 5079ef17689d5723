#pragma once
/// \file chapter.h
/// What every chapter program does around its experiment: validate the
/// generic options, set up the runtime (threads, allocator, BLAS, device),
/// load the dataset and say which it is, describe the run in run.json, and
/// turn a failure into a "failed" result.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/cli.h"
#include "vaerepro/datasets.h"
#include "vaerepro/models.h"
#include "vaerepro/options.h"
#include "vaerepro/points.h"
#include "vaerepro/protocol.h"
#include "vaerepro/results.h"
#include "vaerepro/runtime.h"
#include "vaerepro/schema/metrics.h"
#include "vaerepro/schema/run_record.h"
#include "vaerepro/trainer.h"

namespace vaerepro {

/// A chapter run's fixed context.
struct ChapterSetup {
  std::string program;  ///< "chapter-01"
  std::string slug;     ///< "01-elbo-vs-latent"
  CommonOptions common;
  RuntimeInfo runtime;
  torch::Device device{torch::kCPU};
  Protocol protocol = Protocol::kBinarized;
  std::string dataset_name;
  Dataset dataset;
  Provenance provenance;

  /// The run.json fields every chapter shares (status, profile, seed, device,
  /// dataset with its fingerprint, protocol, provenance, runtime, the
  /// folders used) plus `title`.
  nlohmann::json run_json(const std::string& title) const;
};

/// What identifies the data and the conditions a model is trained under:
/// with the model's own configuration, the key of every cache (a run's
/// checkpoints, a sweep point, a search probe). A model trained on other
/// data, another protocol, another device or another profile is never reused.
struct RunIdentity {
  int64_t seed = 1;
  std::string dataset;           ///< its name
  std::string data_fingerprint;  ///< Dataset::fingerprint
  std::string protocol;          ///< binarized | gray-bce | ...
  std::string device;            ///< cpu | cuda (the device type, not its index)
  std::string profile;           ///< smoke | quick | full
  nlohmann::json to_json() const;
  /// config_hash (points.h) of {"config": config, "identity": to_json()}.
  std::string hash(const nlohmann::json& config) const;
};
RunIdentity identity_of(const ChapterSetup& setup);

/// Validates `common`, prints the run's first line (the data and results
/// folders it uses, absolute), configures the runtime (printing its warnings),
/// installs the SIGINT/SIGTERM handlers (cli.h: stop after the current step),
/// resolves and loads the dataset (saying why `auto` did not take real
/// MNIST), and prints the dataset line (dataset, its fingerprint, protocol,
/// profile, device, seed). `paper_dataset` is the data the
/// chapter's published numbers are for: when the run uses another, a note
/// says the numbers are not comparable. Throws UsageError / DataError.
ChapterSetup start_chapter(const std::string& program, const std::string& slug,
                           const CommonOptions& common, Protocol default_protocol,
                           const std::string& paper_dataset, int argc, char** argv);

/// A training curve as JSON rows and as a CSV (header + rows) with the
/// columns samples_seen, epochs, train_elbo, train_log_likelihood, train_kl,
/// test_elbo, test_log_likelihood, test_kl, wall_seconds.
nlohmann::json curve_json(const TrainResult& r);
void write_curve_csv(const RunWriter& writer, const std::string& relative, const TrainResult& r);
/// The curve as rate and distortion, a CSV at `path` with the columns
/// samples_seen, train_reconstruction, train_kl, test_reconstruction, test_kl
/// (reconstruction = -log_likelihood; numbers as a stream writes them).
void write_rate_distortion_csv(const std::string& path, const TrainResult& r);
/// What a chapter records of one trained model: samples_seen, final {train,
/// test} (the last curve point's bounds), curve (curve_json), train_seconds,
/// eval_seconds and step (which step trained it).
nlohmann::json training_record(const TrainResult& r);
/// The estimates a model's evaluate_extra returned along its curve, each
/// point's extra {"train": e, "test": e} with e an estimate over the set
/// ({"mean", "standard_error_data"}, estimators.h), as a CSV with the columns
/// samples_seen, train_QUANTITY, train_se, test_QUANTITY, test_se.
void write_curve_estimates_csv(const RunWriter& writer, const std::string& relative,
                               const TrainResult& r, const std::string& quantity);

/// Another run of the same configuration into the same --out holds its lock:
/// this one refuses (exit 1) without touching that run's files, and is not
/// recorded as a failure.
class RunLocked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Stopping, resuming and not training twice, for one chapter run
/// (chapters/README.md, "Stopping and resuming"). The hash is the run's
/// identity (RunIdentity: seed, dataset and its fingerprint, protocol,
/// device, profile) with the chapter and its effective configuration
/// (`config`, as in run.json); the models' checkpoints live in
/// OUT/.checkpoints/SLUG/HASH/ while the run is in progress.
class RunCheckpoints {
 public:
  RunCheckpoints(const ChapterSetup& setup, const nlohmann::json& config);
  ~RunCheckpoints();
  RunCheckpoints(const RunCheckpoints&) = delete;
  RunCheckpoints& operator=(const RunCheckpoints&) = delete;
  const std::string& hash() const { return hash_; }
  /// First takes the configuration's lock, OUT/.locks/SLUG-HASH.lock (an
  /// advisory flock held until this object or the process ends; the kernel
  /// drops it when its holder dies, so a killed run never blocks): when
  /// another live run holds it, throws RunLocked naming its pid.
  /// Then: false when OUT/SLUG is complete for this hash and no interrupted
  /// run of it is pending (unless --force): it says so, abandons `writer` and
  /// removes OUT/SLUG.failed (superseded, as by a newer complete run).
  /// Otherwise marks the run in progress (with --force after forgetting this
  /// configuration's checkpoints), notes checkpoints of other configurations
  /// (never used), and returns true.
  bool start(RunWriter& writer) const;
  /// Checkpointing of the model `name` (every --checkpoint-every seconds).
  CheckpointOptions model(const std::string& name) const;
  /// After the run is complete: deletes its checkpoints.
  void clear() const;

 private:
  std::string program_, results_dir_, root_, dir_, hash_, lock_path_;
  mutable int lock_fd_ = -1;
  bool force_ = false;
  double every_seconds_ = 60;
};

/// Checkpointing of a sweep point being trained (OUT/.points/SLUG/NAME-HASH.ckpt,
/// keyed by the point's own hash); with --force an existing one written before
/// common.force_since is deleted first, so the point trains afresh. PointStore::commit does not
/// remove it: call remove_point_checkpoint after the commit.
CheckpointOptions point_checkpoint(const ChapterSetup& setup, const PointStore& store,
                                   const std::string& name, const nlohmann::json& config);
void remove_point_checkpoint(const CheckpointOptions& checkpoint);

/// A finished sweep point to reuse: the cached one, unless --force asks that
/// points finished before common.force_since (default: this program's start)
/// train again. Point jobs of one `make` share that moment (Makefile:
/// FORCE_SINCE), so the run that assembles them keeps what the jobs trained.
std::optional<nlohmann::json> reusable_point(const ChapterSetup& setup, const PointStore& store,
                                             const std::string& name, const nlohmann::json& config);
/// A sweep point of `store`, trained once: the finished one when
/// reusable_point gives it (saying so), else trained by `train(staging,
/// checkpoint)`, which writes the point's files into the staging folder
/// (PointStore::begin) and returns its point.json, resuming from and
/// saving to `checkpoint` (point_checkpoint); then committed and its
/// checkpoint removed. Returns point.json as stored.
nlohmann::json cached_point(
    const ChapterSetup& setup, const PointStore& store, const std::string& name,
    const nlohmann::json& config,
    const std::function<nlohmann::json(const std::string& staging,
                                       const CheckpointOptions& checkpoint)>& train);
/// Copies the stored point `name` into the run's folder as points/NAME and
/// returns `point` with "dir" (that folder, relative) and "config_hash".
nlohmann::json copy_point(const RunWriter& writer, const PointStore& store, const std::string& name,
                          const nlohmann::json& config, nlohmann::json point);
/// True when the file at `path` exists and was last written before `since`
/// (seconds since the epoch).
bool finished_before(const std::string& path, double since);

/// Writes metrics.json, records the wall time (and, given `checkpoints`, the
/// configuration hash), marks the run complete (moving it into place), deletes
/// the run's checkpoints, and prints the verdicts and where the results are.
void finish_chapter(RunWriter& writer, nlohmann::json& run, const nlohmann::json& metrics,
                    const std::string& program, std::chrono::steady_clock::time_point started,
                    const RunCheckpoints* checkpoints = nullptr);

/// Marks the run failed with `message` (results/SLUG.failed/) and says where
/// this configuration's checkpoints are kept and how large they are.
void record_failure(RunWriter& writer, nlohmann::json& run, const std::string& program,
                    const std::string& message, std::chrono::steady_clock::time_point started);

}  // namespace vaerepro
