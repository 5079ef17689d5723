#include "vaerepro/chapter.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "vaerepro/schema/metrics.h"
#include "vaerepro/schema/run_record.h"
#include "vaerepro/time_ledger.h"

namespace fs = std::filesystem;

namespace vaerepro {

ChapterSetup start_chapter(const std::string& program, const std::string& slug,
                           const CommonOptions& common, Protocol default_protocol,
                           const std::string& paper_dataset, int argc, char** argv) {
  validate_common(common);
  {
    std::error_code ec;
    const auto absolute = [&](const std::string& p) {
      const auto a = fs::weakly_canonical(fs::absolute(p, ec), ec);
      return ec ? p : a.string();
    };
    std::cout << program << ": data from " << absolute(common.data_dir) << "/, results into "
              << absolute(common.out) << "/" << std::endl;  // first, before any warning on stderr
  }
  ChapterSetup s;
  s.program = program;
  s.slug = slug;
  s.common = common;
  s.protocol = common.protocol.empty() ? default_protocol : parse_protocol(common.protocol);
  // Runtime first: threads, allocator, BLAS and device decide the speed.
  s.runtime = configure_runtime(common.threads);
  // SIGINT/SIGTERM: finish the step, save, say how to resume (--force would
  // start over, so the resume command leaves it out).
  install_stop_handlers(shell_command(argc, argv, {"--force", "--force-since="}));
  if (s.common.force && s.common.force_since <= 0) {
    s.common.force_since =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  s.device = select_device(common.device);
  for (const auto& w : runtime_warnings(s.runtime, s.device))
    std::cerr << program << ": warning: " << w << "\n";
  DataPaths paths;
  paths.data_dir = common.data_dir;
  s.dataset_name = resolve_dataset_name(common.dataset, paths);
  if (common.dataset == "auto" && s.dataset_name != "mnist") {
    std::cout << program << ": dataset auto: real MNIST not used: " << auto_fallback_reason(paths)
              << "; using " << s.dataset_name << "\n";
  }
  s.dataset = load_dataset(s.dataset_name, paths);
  std::cout << program << ": dataset " << s.dataset_name << " (fingerprint "
            << s.dataset.fingerprint << "): " << s.dataset.description << "; protocol "
            << to_string(s.protocol) << "; profile " << common.profile << "; device "
            << s.device.str() << "; seed " << common.seed << "\n";
  if (!paper_dataset.empty() && s.dataset_name != paper_dataset) {
    std::cout << program << ": note: the published numbers are for " << paper_dataset << "; on "
              << s.dataset_name << " the fresh numbers are not comparable with them, only their "
              << "shapes and orderings are.\n";
  }
  s.provenance = collect_provenance(argc, argv);
  return s;
}

nlohmann::json RunIdentity::to_json() const {
  return {{"seed", seed},         {"dataset", dataset}, {"data_fingerprint", data_fingerprint},
          {"protocol", protocol}, {"device", device},   {"profile", profile}};
}

std::string RunIdentity::hash(const nlohmann::json& config) const {
  return config_hash({{"config", config}, {"identity", to_json()}});
}

RunIdentity identity_of(const ChapterSetup& setup) {
  RunIdentity id;
  id.seed = setup.common.seed;
  id.dataset = setup.dataset_name;
  id.data_fingerprint = setup.dataset.fingerprint;
  id.protocol = to_string(setup.protocol);
  id.device = setup.device.is_cuda() ? "cuda" : "cpu";
  id.profile = setup.common.profile;
  return id;
}

nlohmann::json ChapterSetup::run_json(const std::string& title) const {
  return {{schema::run_key::kSchemaVersion, schema::kSchemaVersion},
          {"status", "running"},
          {"chapter", slug},
          {"title", title},
          {"profile", common.profile},
          {"seed", common.seed},
          {"device", device.str()},
          {"dataset",
           {{"name", dataset_name},
            {"description", dataset.description},
            {"fingerprint", dataset.fingerprint}}},
          {"folders", {{"data", common.data_dir}, {"results", common.out}}},
          {"protocol", {{"name", to_string(protocol)}, {"description", describe(protocol)}}},
          {"provenance", provenance.to_json()},
          {"runtime", runtime.to_json()}};
}

nlohmann::json curve_json(const TrainResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& p : r.curve) {
    namespace k = schema::key;
    nlohmann::json row = {{k::kSamplesSeen, p.samples_seen},
                          {k::kEpochs, p.epochs},
                          {k::kTrain, p.train.to_json()},
                          {k::kTest, p.test.to_json()},
                          {k::kWallSeconds, p.wall_seconds}};
    if (!p.extra.is_null()) row[k::kExtra] = p.extra;
    rows.push_back(row);
  }
  return rows;
}

void write_curve_estimates_csv(const RunWriter& writer, const std::string& relative,
                               const TrainResult& r, const std::string& quantity) {
  namespace k = schema::key;
  std::vector<std::vector<double>> rows;
  for (const auto& p : r.curve) {
    const auto& tr = p.extra.at(k::kTrain);
    const auto& te = p.extra.at(k::kTest);
    rows.push_back({static_cast<double>(p.samples_seen), tr.at(k::kMean).get<double>(),
                    tr.at(k::kStandardErrorData).get<double>(), te.at(k::kMean).get<double>(),
                    te.at(k::kStandardErrorData).get<double>()});
  }
  writer.write_csv(relative,
                   {"samples_seen", "train_" + quantity, "train_se", "test_" + quantity, "test_se"},
                   rows);
}

void write_rate_distortion_csv(const std::string& path, const TrainResult& r) {
  std::ostringstream csv;
  csv << "samples_seen,train_reconstruction,train_kl,test_reconstruction,test_kl\n";
  for (const auto& q : r.curve) {
    csv << q.samples_seen << ',' << -q.train.log_likelihood << ',' << q.train.kl << ','
        << -q.test.log_likelihood << ',' << q.test.kl << '\n';
  }
  write_file_atomic(path, csv.str());
}

nlohmann::json training_record(const TrainResult& r) {
  namespace k = schema::key;
  nlohmann::json j = {{k::kSamplesSeen, r.samples_seen},
                      {k::kCurve, curve_json(r)},
                      {k::kTrainSeconds, r.train_seconds},
                      {"eval_seconds", r.eval_seconds},
                      {"step", r.step}};
  if (!r.curve.empty()) {
    j[k::kFinal] = {{k::kTrain, r.curve.back().train.to_json()},
                    {k::kTest, r.curve.back().test.to_json()}};
  }
  return j;
}

void write_curve_csv(const RunWriter& writer, const std::string& relative, const TrainResult& r) {
  std::vector<std::vector<double>> rows;
  for (const auto& p : r.curve) {
    rows.push_back({static_cast<double>(p.samples_seen), p.epochs, p.train.elbo,
                    p.train.log_likelihood, p.train.kl, p.test.elbo, p.test.log_likelihood,
                    p.test.kl, p.wall_seconds});
  }
  writer.write_csv(relative,
                   {"samples_seen", "epochs", "train_elbo", "train_log_likelihood", "train_kl",
                    "test_elbo", "test_log_likelihood", "test_kl", "wall_seconds"},
                   rows);
}

RunCheckpoints::RunCheckpoints(const ChapterSetup& setup, const nlohmann::json& config)
    : program_(setup.program),
      results_dir_((fs::path(setup.common.out) / setup.slug).string()),
      root_((fs::path(setup.common.out) / ".checkpoints" / setup.slug).string()),
      force_(setup.common.force),
      every_seconds_(setup.common.checkpoint_every) {
  hash_ = identity_of(setup).hash({{"chapter", setup.slug}, {"config", config}});
  dir_ = (fs::path(root_) / hash_).string();
  lock_path_ =
      (fs::path(setup.common.out) / ".locks" / (setup.slug + "-" + hash_ + ".lock")).string();
}

RunCheckpoints::~RunCheckpoints() {
  if (lock_fd_ >= 0) {
    ::unlink(lock_path_.c_str());  // while still held: no other run is between open and flock on it
    ::close(lock_fd_);
  }
}

bool RunCheckpoints::start(RunWriter& writer) const {
  std::error_code ec;
  if (lock_fd_ < 0) {
    fs::create_directories(fs::path(lock_path_).parent_path(), ec);
    for (int attempt = 0; attempt < 10 && lock_fd_ < 0; ++attempt) {
      const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        throw std::runtime_error("cannot create the lock file " + lock_path_ + ": " +
                                 std::strerror(errno) + " (choose a writable --out / OUT=)");
      }
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[32] = {0};
        const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
        ::close(fd);
        if (err != EWOULDBLOCK) {
          throw std::runtime_error("cannot lock " + lock_path_ + ": " + std::strerror(err));
        }
        std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("unknown");
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        throw RunLocked("another run of this configuration (hash " + hash_ + ", pid " + pid +
                        ") is in progress in " + fs::path(results_dir_).parent_path().string() +
                        " (lock " + lock_path_ +
                        "); this one does not start. Wait for it to finish (then rerun: it says "
                        "\"nothing to train\"), or stop it (kill " +
                        pid + ") and rerun to resume it");
      }
      // The file may have been unlinked by its last holder between open and
      // flock: then lock the file that is at the path now.
      struct stat held {
      }, now{};
      if (::fstat(fd, &held) != 0 || ::stat(lock_path_.c_str(), &now) != 0 ||
          held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
        ::close(fd);
        continue;
      }
      const std::string me = std::to_string(::getpid()) + "\n";
      if (::ftruncate(fd, 0) != 0 ||
          ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
        // The pid is only for the message; the lock holds without it.
      }
      lock_fd_ = fd;
    }
    if (lock_fd_ < 0)
      throw std::runtime_error("cannot take the lock " + lock_path_ + " (it keeps changing)");
  }
  const fs::path marker = fs::path(dir_) / "in-progress.json";
  if (force_) {
    fs::remove_all(dir_, ec);
  } else if (fs::exists(marker, ec)) {
    std::cout << program_ << ": resuming an interrupted run of this configuration (hash " << hash_
              << ", checkpoints in " << dir_ << ")\n";
  } else {
    try {
      std::ifstream in(fs::path(results_dir_) / "run.json");
      const auto done = in ? nlohmann::json::parse(in) : nlohmann::json();
      if (done.is_object() && done.value("status", "") == "complete" &&
          done.value("config_hash", "") == hash_) {
        std::cout << program_ << ": " << results_dir_
                  << " is complete for this configuration (hash " << hash_
                  << "); nothing to train. To train it again: FORCE=1 (make) or --force.\n";
        writer.abandon();
        // As a newer complete run would, this supersedes a failure of another configuration since.
        if (fs::remove_all(results_dir_ + ".failed", ec) > 0) {
          std::cout << program_ << ": the later failed run in " << results_dir_
                    << ".failed is superseded\n";
        }
        return false;
      }
    } catch (const nlohmann::json::exception&) {
      // An unreadable run.json is no complete result: train.
    }
  }
  int others = 0;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    if (e.is_directory() && e.path().filename() != hash_) ++others;
  }
  if (others > 0) {
    std::cout << program_ << ": note: " << others << " checkpoint folder(s) in " << root_
              << " belong to other configurations (another hash) and are not used; delete them to "
                 "free space\n";
  }
  write_file_atomic(
      marker.string(),
      nlohmann::json({{"config_hash", hash_}, {"status", "in progress"}}).dump(2) + "\n");
  return true;
}

CheckpointOptions RunCheckpoints::model(const std::string& name) const {
  CheckpointOptions c;
  c.path = (fs::path(dir_) / (name + ".ckpt")).string();
  c.config_hash = hash_;
  c.every_seconds = every_seconds_;
  return c;
}

void RunCheckpoints::clear() const {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove(root_, ec);  // only when empty
}

CheckpointOptions point_checkpoint(const ChapterSetup& setup, const PointStore& store,
                                   const std::string& name, const nlohmann::json& config) {
  CheckpointOptions c;
  c.path = store.dir(name, config) + ".ckpt";
  c.config_hash = store.hash(config);
  c.every_seconds = setup.common.checkpoint_every;
  if (setup.common.force && finished_before(c.path, setup.common.force_since)) {
    std::error_code ec;
    fs::remove(c.path, ec);
  }
  return c;
}

bool finished_before(const std::string& path, double since) {
  std::error_code ec;
  const auto t = fs::last_write_time(path, ec);
  if (ec) return false;
  // file_clock -> seconds since the epoch (C++17: through the difference to now).
  const auto age = fs::file_time_type::clock::now() - t;
  const double written =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
      std::chrono::duration<double>(age).count();
  return written < since;
}

std::optional<nlohmann::json> reusable_point(const ChapterSetup& setup, const PointStore& store,
                                             const std::string& name,
                                             const nlohmann::json& config) {
  auto cached = store.load(name, config);
  if (cached && setup.common.force &&
      finished_before((fs::path(store.dir(name, config)) / "point.json").string(),
                      setup.common.force_since)) {
    return std::nullopt;  // --force: finished before this run (or before --force-since): train it
                          // again
  }
  return cached;
}

nlohmann::json cached_point(
    const ChapterSetup& setup, const PointStore& store, const std::string& name,
    const nlohmann::json& config,
    const std::function<nlohmann::json(const std::string& staging,
                                       const CheckpointOptions& checkpoint)>& train) {
  // A finished point is reused (--force trains it again); one in training checkpoints.
  const auto checkpoint = point_checkpoint(setup, store, name, config);
  if (auto cached = reusable_point(setup, store, name, config)) {
    std::cout << setup.program << ": " << name << ": reusing " << store.dir(name, config) << "\n";
    return *cached;
  }
  const std::string staging = store.begin(name, config);
  store.commit(staging, name, config, train(staging, checkpoint));
  remove_point_checkpoint(checkpoint);
  return *store.load(name, config);
}

nlohmann::json copy_point(const RunWriter& writer, const PointStore& store, const std::string& name,
                          const nlohmann::json& config, nlohmann::json point) {
  const std::string rel = "points/" + name;
  fs::create_directories(writer.path(rel));
  fs::copy(store.dir(name, config), writer.path(rel),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  point[schema::key::kDir] = rel;
  point["config_hash"] = store.hash(config);
  return point;
}

void remove_point_checkpoint(const CheckpointOptions& checkpoint) {
  std::error_code ec;
  if (checkpoint.enabled()) fs::remove(checkpoint.path, ec);
}

void finish_chapter(RunWriter& writer, nlohmann::json& run, const nlohmann::json& metrics,
                    const std::string& program, std::chrono::steady_clock::time_point started,
                    const RunCheckpoints* checkpoints) {
  writer.write_json("metrics.json", metrics);
  run["wall_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  run[schema::run_key::kTimeSpent] = TimeLedger::process().to_json();
  if (checkpoints) run["config_hash"] = checkpoints->hash();
  const auto where = writer.finish(run);
  if (checkpoints) checkpoints->clear();
  namespace k = schema::key;
  for (const auto& c : metrics.value(k::kChecks, nlohmann::json::array())) {
    std::cout << "check: " << c.value(k::kClaim, "?") << ": "
              << (c.value(k::kHolds, false) ? "holds" : "does not hold") << " ("
              << c.value(k::kDetail, "") << ")\n";
  }
  const schema::Budget budget = schema::read_budget(run, metrics);
  std::cout << program << ": verdicts " << (budget.provisional ? "provisional" : "not provisional")
            << ": " << budget.why << "\n";
  std::cout << program << ": results in " << where << " (" << run["wall_seconds"].get<double>()
            << " s";
  for (const auto& [stage, seconds] : run[schema::run_key::kTimeSpent].items()) {
    std::cout << "; " << stage << " " << std::lround(seconds.get<double>()) << " s";
  }
  std::cout << ")\n";
}

void record_failure(RunWriter& writer, nlohmann::json& run, const std::string& program,
                    const std::string& message, std::chrono::steady_clock::time_point started) {
  run["wall_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  run[schema::run_key::kTimeSpent] = TimeLedger::process().to_json();
  try {
    const auto where = writer.fail(run, message);
    std::cerr << program << ": the run failed; partial output kept in " << where << "\n";
  } catch (const std::exception& inner) {
    std::cerr << program << ": the run failed, and marking it failed failed too: " << inner.what()
              << "\n";
  }
  // What the failed run leaves on disk besides its output: its checkpoints
  // (a rerun resumes from the last good one), said with their size.
  const fs::path final_dir(writer.final_dir());
  const fs::path kept = final_dir.parent_path() / ".checkpoints" / final_dir.filename();
  std::error_code ec;
  uintmax_t bytes = 0;
  for (const auto& f : fs::recursive_directory_iterator(kept, ec)) {
    std::error_code size_ec;
    if (f.is_regular_file(size_ec)) bytes += f.file_size(size_ec);
  }
  if (bytes > 0) {
    std::cerr << program << ": its checkpoints (" << std::fixed << std::setprecision(1)
              << bytes / 1e6 << " MB) are kept in " << kept.string()
              << ": rerunning resumes from them; delete the folder to free the space\n";
  }
}

}  // namespace vaerepro
