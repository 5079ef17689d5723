#include "vaerepro/checkpoint.h"

#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "vaerepro/compat.h"
#include "vaerepro/results.h"

namespace fs = std::filesystem;

namespace vaerepro {

namespace {
// 2: the loop state of loop.h (LoopState::to_json) and named extra tensors.
constexpr int kFormat = 2;
}  // namespace

OptimizerState OptimizerState::of(torch::optim::Optimizer& optimizer) {
  return {[&optimizer](torch::serialize::OutputArchive& a) { optimizer.save(a); },
          [&optimizer](torch::serialize::InputArchive& a) { optimizer.load(a); }};
}

void capture_rng(TrainingSnapshot& s, const torch::Device& device) {
  s.rng_cpu = compat::generator_state(compat::default_generator(torch::kCPU));
  if (device.is_cuda()) s.rng_cuda = compat::generator_state(compat::default_generator(device));
}

void restore_rng(const TrainingSnapshot& s, const torch::Device& device) {
  if (s.rng_cpu.defined())
    compat::set_generator_state(compat::default_generator(torch::kCPU), s.rng_cpu);
  if (device.is_cuda() && s.rng_cuda.defined()) {
    compat::set_generator_state(compat::default_generator(device), s.rng_cuda);
  }
}

bool parameters_finite(const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model.parameters()) {
    if (!torch::isfinite(p).all().item<bool>()) return false;
  }
  return true;
}

void save_checkpoint(const CheckpointOptions& options, const torch::nn::Module& model,
                     const OptimizerState& optimizer, TrainingSnapshot snapshot) {
  torch::serialize::OutputArchive archive;
  snapshot.progress["format"] = kFormat;
  snapshot.progress["config_hash"] = options.config_hash;
  archive.write("progress", c10::IValue(snapshot.progress.dump()));
  // Parameters and buffers by name, copied on load: a model whose tensors are
  // views into one flat buffer keeps them.
  // Archive keys are positional ("t0", "t1", ...; dotted names do not
  // survive TorchScript attributes); the names travel beside them.
  torch::serialize::OutputArchive params;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& p : model.named_parameters(true)) {
    params.write("t" + std::to_string(names.size()), p.value().detach(), true);
    names.push_back(p.key());
  }
  for (const auto& b : model.named_buffers(true)) {
    params.write("t" + std::to_string(names.size()), b.value(), true);
    names.push_back(b.key());
  }
  params.write("names", c10::IValue(names.dump()));
  archive.write("model", params);
  torch::serialize::OutputArchive opt;
  optimizer.save(opt);
  archive.write("optimizer", opt);
  if (snapshot.permutation.defined()) archive.write("permutation", snapshot.permutation, true);
  if (!snapshot.tensors.empty()) {
    torch::serialize::OutputArchive extra;
    nlohmann::json extra_names = nlohmann::json::array();
    for (const auto& [name, t] : snapshot.tensors) {
      extra.write("t" + std::to_string(extra_names.size()), t.detach(), true);
      extra_names.push_back(name);
    }
    extra.write("names", c10::IValue(extra_names.dump()));
    archive.write("tensors", extra);
  }
  if (snapshot.rng_cpu.defined()) archive.write("rng_cpu", snapshot.rng_cpu, true);
  if (snapshot.rng_cuda.defined()) archive.write("rng_cuda", snapshot.rng_cuda, true);
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot serialise the checkpoint " + options.path + ": " +
                             e.what_without_backtrace());
  }
  write_file_atomic(options.path, bytes.str());
}

std::optional<TrainingSnapshot> load_checkpoint(const CheckpointOptions& options,
                                                torch::nn::Module& model,
                                                const OptimizerState& optimizer,
                                                const nlohmann::json& expect,
                                                const std::string& label) {
  std::error_code ec;
  if (!options.enabled()) return std::nullopt;
  remove_stale_leftovers(options.path, ".tmp.");  // a save cut short by a kill
  if (!fs::exists(options.path, ec)) return std::nullopt;
  const std::string who = label.empty() ? std::string() : label + ": ";
  torch::serialize::InputArchive archive;
  TrainingSnapshot s;
  try {
    archive.load_from(options.path);
    c10::IValue text;
    archive.read("progress", text);
    s.progress = nlohmann::json::parse(text.toStringRef());
  } catch (const std::exception& e) {
    std::cerr << who << "the checkpoint " << options.path << " cannot be read (" << e.what()
              << "); starting this model afresh (it will be overwritten)\n";
    return std::nullopt;
  }
  if (s.progress.value("format", 0) != kFormat) {
    std::cerr << who << "the checkpoint " << options.path << " was written in format "
              << s.progress.value("format", 0) << " (an older vaerepro), this one reads format "
              << kFormat << "; it is not resumed from, and will be overwritten\n";
    return std::nullopt;
  }
  if (s.progress.value("config_hash", "") != options.config_hash) {
    std::cerr << who << "the checkpoint " << options.path
              << " was made by another configuration (hash " << s.progress.value("config_hash", "?")
              << ", this run's is " << options.config_hash
              << "); it is not resumed from, and will be overwritten\n";
    return std::nullopt;
  }
  for (const auto& [key, value] : expect.items()) {
    if (s.progress.value(key, nlohmann::json()) != value) {
      std::cerr << who << "the checkpoint " << options.path << " has " << key << " = "
                << s.progress.value(key, nlohmann::json()).dump() << " where this run has "
                << value.dump() << "; it is not resumed from, and will be overwritten\n";
      return std::nullopt;
    }
  }
  const std::string afresh = " (delete " + options.path + " to train this model afresh)";
  try {
    // Read everything first; only then change the model and the optimizer.
    torch::serialize::InputArchive params;
    archive.read("model", params);
    c10::IValue names_text;
    params.read("names", names_text);
    const auto names = nlohmann::json::parse(names_text.toStringRef());
    std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
    auto stage = [&](const std::string& name, const torch::Tensor& target, bool) {
      const size_t i = copies.size();
      torch::Tensor t;
      if (i >= names.size() || names[i] != name ||
          !params.try_read("t" + std::to_string(i), t, true)) {
        throw std::runtime_error("the model's tensor " + std::to_string(i) + " (" + name +
                                 ") is not in the checkpoint");
      }
      if (t.sizes() != target.sizes()) {
        std::ostringstream os;
        os << name << " has shape " << t.sizes() << " in the checkpoint, " << target.sizes()
           << " in the model";
        throw std::runtime_error(os.str());
      }
      copies.emplace_back(target, t);
    };
    for (const auto& p : model.named_parameters(true)) stage(p.key(), p.value(), false);
    for (const auto& b : model.named_buffers(true)) stage(b.key(), b.value(), true);
    if (copies.size() != names.size())
      throw std::runtime_error("the checkpoint holds more tensors than the model");
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    archive.try_read("permutation", s.permutation, true);
    torch::serialize::InputArchive extra;
    if (archive.try_read("tensors", extra)) {
      c10::IValue extra_text;
      extra.read("names", extra_text);
      const auto extra_names = nlohmann::json::parse(extra_text.toStringRef());
      for (size_t i = 0; i < extra_names.size(); ++i) {
        torch::Tensor t;
        if (!extra.try_read("t" + std::to_string(i), t, true)) {
          throw std::runtime_error("the loop's tensor " + extra_names[i].get<std::string>() +
                                   " is missing");
        }
        s.tensors[extra_names[i].get<std::string>()] = t;
      }
    }
    archive.try_read("rng_cpu", s.rng_cpu, true);
    archive.try_read("rng_cuda", s.rng_cuda, true);
    {
      torch::NoGradGuard no_grad;
      for (auto& [target, value] : copies) target.copy_(value);
    }
    optimizer.load(opt);
  } catch (const c10::Error& e) {
    throw std::runtime_error("the checkpoint " + options.path +
                             " does not fit this model: " + e.what_without_backtrace() + afresh);
  } catch (const std::exception& e) {
    throw std::runtime_error("the checkpoint " + options.path +
                             " does not fit this model: " + e.what() + afresh);
  }
  return s;
}

}  // namespace vaerepro
