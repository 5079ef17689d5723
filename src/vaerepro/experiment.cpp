#include "vaerepro/experiment.h"

#include <iostream>

#include "vaerepro/runtime.h"
#include "vaerepro/time_ledger.h"

namespace po = boost::program_options;

namespace vaerepro {

ChapterRun::ChapterRun(const ChapterInfo& info, ChapterSetup setup, Profile profile,
                       nlohmann::json config)
    : info_(info),
      setup_(std::move(setup)),
      profile_(profile),
      config_(std::move(config)),
      identity_(identity_of(setup_)),
      started_(std::chrono::steady_clock::now()) {
  TimeLedger::process().reset();  // this run's time, not an earlier seed's
}

ChapterRun::~ChapterRun() = default;

TensorData ChapterRun::tensors(int64_t max_train, int64_t max_test) const {
  torch::manual_seed(static_cast<uint64_t>(setup_.common.seed));
  return prepare_tensors(setup_.dataset, setup_.protocol, setup_.device, max_train, max_test);
}

schema::Budget ChapterRun::budget(double amount, double paper_amount, const std::string& unit,
                                  const std::string& paper, const std::string& text) const {
  return schema::make_budget(to_string(profile_), amount, paper_amount, unit, paper, text);
}

schema::Budget ChapterRun::samples_budget(int64_t samples, double paper_samples,
                                          const std::string& each, const std::string& paper,
                                          const std::string& note) const {
  return budget(
      static_cast<double>(samples), paper_samples, "training samples per " + each, paper,
      "each " + each + " sees " + std::to_string(samples) + " training samples (" + note + ")");
}

void ChapterRun::begin(const nlohmann::json& data, const schema::Budget& budget) {
  if (writer_) throw std::logic_error(info_.program + ": ChapterRun::begin called twice");
  writer_ = std::make_unique<RunWriter>(setup_.common.out, info_.slug);
  record_ = setup_.run_json(info_.title);
  record_["data"] = data;
  record_["config"] = config_;
  record_[schema::run_key::kBudget] = budget;
  writer_->write_json("run.json", record_);
  // The lock, then "complete for this configuration?": a finished run is not trained again.
  checkpoints_ = std::make_unique<RunCheckpoints>(setup_, config_);
  try {
    if (!checkpoints_->start(*writer_)) {
      writer_.reset();
      throw AlreadyComplete(info_.slug + " is complete for this configuration");
    }
  } catch (const RunLocked&) {
    writer_->abandon();
    throw;
  }
  writer_->write_json("run.json", record_);
}

RunWriter& ChapterRun::writer() {
  if (!writer_)
    throw std::logic_error(info_.program + ": the run's files are written only after begin()");
  return *writer_;
}

nlohmann::json& ChapterRun::record() {
  if (!writer_) throw std::logic_error(info_.program + ": run.json exists only after begin()");
  return record_;
}

CheckpointOptions ChapterRun::checkpoint(const std::string& name) const {
  if (!checkpoints_)
    throw std::logic_error(info_.program + ": checkpoints exist only after begin()");
  return checkpoints_->model(name);
}

PointStore ChapterRun::point_store() const {
  return PointStore::keyed_by(setup_.common.out, info_.slug, identity_.to_json());
}

TrainedVae ChapterRun::train_vae(const std::string& name, const VaeOptions& model,
                                 const OptimizerOptions& optimizer, const TensorData& data,
                                 TrainOptions train) const {
  torch::manual_seed(static_cast<uint64_t>(seed_for(name)));
  TrainedVae out;
  out.vae = Vae(model);
  out.vae->to(setup_.device);
  auto opt = make_optimizer(out.vae->parameters(), optimizer);
  if (train.label.empty()) train.label = info_.program + " " + name;
  if (!train.checkpoint.enabled() && checkpoints_) train.checkpoint = checkpoints_->model(name);
  out.result = vaerepro::train_vae(*out.vae, *opt, data, train);
  return out;
}

Judge ChapterRun::train_judge(const TensorData& data, int64_t epochs,
                              const std::string& seed_name) const {
  return vaerepro::train_judge(data, epochs, seed_for(seed_name), setup_.device,
                               checkpoint("judge-classifier"));
}

void ChapterRun::finish(const nlohmann::json& metrics) {
  finish_chapter(writer(), record_, metrics, info_.program, started_, checkpoints_.get());
}

void ChapterRun::fail(const std::string& message) {
  if (writer_) record_failure(*writer_, record_, info_.program, message, started_);
}

void ChapterRun::abandon() {
  if (writer_) writer_->abandon();
}

namespace {

/// One seed's run: parse -> validate -> set up -> the experiment, staged -> finish.
int run_one(Chapter& chapter, int argc, char** argv) {
  const ChapterInfo info = chapter.info();
  CommonOptions common;
  OptionTable options;
  chapter.declare(options);
  po::options_description all;
  all.add(generic_options(common)).add(options.description());
  po::variables_map vm;
  const std::string synopsis =
      info.program + ": " + info.title + "\nusage: " + info.program + " [options]";
  if (!parse_command_line(argc, argv, synopsis, all, vm)) return 0;
  // The profile first, as an enum: its defaults, then the values given over them.
  const Profile profile = parse_profile(vm["profile"].as<std::string>());
  options.apply(profile);
  notify_options(vm);
  validate_common(common);
  options.validate();
  chapter.validate();

  ChapterRun run(
      info,
      start_chapter(info.program, info.slug, common, info.protocol, info.paper_dataset, argc, argv),
      profile, options.config());
  try {
    const nlohmann::json metrics = chapter.run(run);
    // Inside the try: a failure to write the results (a full disk) is a failed run too.
    if (run.begun()) run.finish(metrics);
  } catch (const AlreadyComplete&) {
    return 0;  // said by RunCheckpoints::start
  } catch (const Interrupted&) {
    run.abandon();  // nothing half-done stays; the checkpoints resume it
    throw;
  } catch (const RunLocked&) {
    run.abandon();  // the other run's files are its own
    throw;
  } catch (const std::exception& e) {
    run.fail(e.what());
    throw;
  }
  return 0;
}

}  // namespace

int chapter_main(int argc, char** argv, const std::function<std::unique_ptr<Chapter>()>& make) {
  use_passive_wait_policy(argv);  // before anything could start libgomp's threads (runtime.h)
  const std::string program = make()->info().program;
  return run_program(program, argc, argv, [&](int ac, char** av) {
    auto chapter = make();
    return run_one(*chapter, ac, av);
  });
}

}  // namespace vaerepro
