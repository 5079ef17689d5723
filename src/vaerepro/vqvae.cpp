#include "vaerepro/vqvae.h"
#include "vaerepro/time_ledger.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "vaerepro/loop.h"

namespace vaerepro {

namespace F = torch::nn::functional;

Reconstruction parse_reconstruction(const std::string& name) {
  if (name == "mse") return Reconstruction::kMse;
  if (name == "bernoulli") return Reconstruction::kBernoulli;
  throw std::invalid_argument("unknown reconstruction '" + name + "' (expected mse or bernoulli)");
}

std::string to_string(Reconstruction r) {
  return r == Reconstruction::kMse ? "mse" : "bernoulli";
}

VqVaeImpl::VqVaeImpl(const VqVaeOptions& o) : options(o) {
  const ConvOptions conv = ConvOptions(o.channels(), o.dim()).residual_blocks(o.residual_blocks());
  encoder = register_module("encoder", ConvEncoder(conv));
  quantizer = register_module(
      "quantizer",
      VectorQuantizer(VectorQuantizerOptions(o.codes(), o.dim()).codebook(o.codebook())));
  decoder = register_module("decoder", ConvDecoder(conv));
}

namespace {
torch::Tensor as_images(const torch::Tensor& x) {
  return x.dim() == 2 ? x.view({x.size(0), 1, 28, 28}) : x;  // [B, 1, 28, 28]
}
}  // namespace

VqVaeOutput VqVaeImpl::forward(const torch::Tensor& x) {
  VqVaeOutput out;
  out.z_e = encoder->forward(as_images(x));  // [B, D, 7, 7]
  out.quantized = quantizer->forward(out.z_e);
  out.output = decoder->forward(out.quantized.straight_through);  // [B, 1, 28, 28]
  return out;
}

VqVaeLoss VqVaeImpl::loss(const VqVaeOutput& out, const torch::Tensor& x) const {
  auto target = as_images(x);
  VqVaeLoss l;
  if (options.reconstruction() == Reconstruction::kMse) {
    l.reconstruction = (out.output - target).pow(2).flatten(1).mean(1);  // [B]
  } else {
    l.reconstruction = F::binary_cross_entropy_with_logits(
                           out.output, target,
                           F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                           .flatten(1)
                           .mean(1);  // [B]
  }
  l.codebook = out.quantized.codebook_loss;
  l.commitment = out.quantized.commitment_loss;
  l.total = l.reconstruction + l.codebook + options.beta() * l.commitment;
  return l;
}

torch::Tensor VqVaeImpl::encode(const torch::Tensor& x) {
  auto z_e = encoder->forward(as_images(x));
  const int64_t b = z_e.size(0), h = z_e.size(2), w = z_e.size(3);
  return quantizer->nearest(z_e.permute({0, 2, 3, 1}).reshape({-1, options.dim()})).view({b, h, w});
}

torch::Tensor VqVaeImpl::decode_codes(const torch::Tensor& codes) {
  return decoder->forward(quantizer->lookup(codes));
}

torch::Tensor VqVaeImpl::mean_image(const torch::Tensor& output) const {
  return options.reconstruction() == Reconstruction::kMse ? output.clamp(0.0, 1.0)
                                                          : torch::sigmoid(output);
}

torch::Tensor VqVaeImpl::log_likelihood(const torch::Tensor& output, const torch::Tensor& x,
                                        double sigma2) const {
  auto target = as_images(x);
  if (options.reconstruction() == Reconstruction::kBernoulli) {
    return -F::binary_cross_entropy_with_logits(
                output, target,
                F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                .flatten(1)
                .sum(1);  // [B]
  }
  TORCH_CHECK(sigma2 > 0, "log_likelihood: the Gaussian variance must be positive, got ", sigma2);
  // log N(x; mu, sigma2) summed over pixels, every constant included.
  return (-0.5 * ((output - target).pow(2) / sigma2 + std::log(2 * M_PI * sigma2)))
      .flatten(1)
      .sum(1);  // [B]
}

int64_t VqVaeImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

nlohmann::json CodebookUsage::to_json() const {
  return {{"counts", counts}, {"used", used}, {"perplexity", perplexity}};
}

CodebookUsage codebook_usage(const torch::Tensor& codes, int64_t num_codes) {
  auto counts =
      torch::bincount(codes.flatten().to(torch::kCPU), {}, num_codes).to(torch::kInt64);  // [K]
  return codebook_usage_of_counts(
      std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + num_codes));
}

CodebookUsage codebook_usage_of_counts(std::vector<int64_t> counts) {
  CodebookUsage u;
  u.counts = std::move(counts);
  double total = 0, entropy = 0;
  for (auto c : u.counts) total += static_cast<double>(c);
  for (auto c : u.counts) {
    if (c == 0) continue;
    ++u.used;
    const double p = static_cast<double>(c) / total;
    entropy -= p * std::log(p);
  }
  u.perplexity = total > 0 ? std::exp(entropy) : 0.0;
  return u;
}

nlohmann::json VqSetMetrics::to_json() const {
  return {{"reconstruction", reconstruction},
          {"codebook", codebook},
          {"commitment", commitment},
          {"mse_per_pixel", mse_per_pixel},
          {"perplexity", perplexity},
          {"codes_used", codes_used},
          {"examples", examples}};
}

VqSetMetrics VqSetMetrics::from_json(const nlohmann::json& j) {
  VqSetMetrics m;
  m.reconstruction = j.at("reconstruction").get<double>();
  m.codebook = j.at("codebook").get<double>();
  m.commitment = j.at("commitment").get<double>();
  m.mse_per_pixel = j.at("mse_per_pixel").get<double>();
  m.perplexity = j.at("perplexity").get<double>();
  m.codes_used = j.at("codes_used").get<int64_t>();
  m.examples = j.at("examples").get<int64_t>();
  return m;
}

nlohmann::json VqCurvePoint::to_json() const {
  return {{"samples_seen", samples_seen},
          {"epochs", epochs},
          {"train", train.to_json()},
          {"test", test.to_json()},
          {"batch_perplexity", batch_perplexity},
          {"restarts", restarts},
          {"dead_codes", dead_codes},
          {"wall_seconds", wall_seconds}};
}

VqCurvePoint VqCurvePoint::from_json(const nlohmann::json& j) {
  VqCurvePoint p;
  p.samples_seen = j.at("samples_seen").get<int64_t>();
  p.epochs = j.at("epochs").get<double>();
  p.train = VqSetMetrics::from_json(j.at("train"));
  p.test = VqSetMetrics::from_json(j.at("test"));
  p.batch_perplexity = j.at("batch_perplexity").get<double>();
  p.restarts = j.at("restarts").get<int64_t>();
  p.dead_codes = j.at("dead_codes").get<int64_t>();
  p.wall_seconds = j.at("wall_seconds").get<double>();
  return p;
}

VqSetMetrics evaluate_vqvae(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size) {
  StageTimer stage_timer(stage::kEvaluation);
  torch::NoGradGuard no_grad;
  VqSetMetrics m;
  const int64_t n = x.size(0);
  std::vector<torch::Tensor> codes;
  double rec = 0, cb = 0, cm = 0, mse = 0;
  for (int64_t i = 0; i < n; i += batch_size) {
    auto xb = x.narrow(0, i, std::min(batch_size, n - i));
    auto out = model.forward(xb);
    auto l = model.loss(out, xb);
    rec += l.reconstruction.to(torch::kFloat64).sum().item<double>();
    cb += l.codebook.to(torch::kFloat64).sum().item<double>();
    cm += l.commitment.to(torch::kFloat64).sum().item<double>();
    mse += (model.mean_image(out.output).flatten(1) - xb.flatten(1))
               .pow(2)
               .to(torch::kFloat64)
               .mean(1)
               .sum()
               .item<double>();
    codes.push_back(out.quantized.codes);
  }
  m.examples = n;
  if (n > 0) {
    m.reconstruction = rec / n;
    m.codebook = cb / n;
    m.commitment = cm / n;
    m.mse_per_pixel = mse / n;
    const auto usage = codebook_usage(torch::cat(codes), model.options.codes());
    m.perplexity = usage.perplexity;
    m.codes_used = usage.used;
  }
  return m;
}

namespace {

/// The VQ-VAE's side of the training loop. What is particular to the
/// quantizer (how codes are chosen, EMA statistics a quantizer may keep as
/// buffers) stays inside the model: the step calls forward() and loss(), and
/// a checkpoint saves the model's buffers with its parameters.
class VqVaeStep : public TrainStep {
 public:
  VqVaeStep(VqVaeImpl& model, const std::function<torch::Tensor(const torch::Tensor&)>& batch,
            torch::Tensor test_subset, const VqTrainOptions& o, torch::Device device)
      : model_(model),
        batch_(batch),
        test_subset_(std::move(test_subset)),
        options_(o),
        optimizer_(model.parameters(), torch::optim::AdamOptions(o.lr)),
        counts_(torch::zeros({model.options.codes()},
                             torch::TensorOptions().dtype(torch::kInt64).device(device))),
        batch_perplexity_(
            torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device))) {}

  std::vector<std::string> terms() const override {
    return {"reconstruction term", "codebook term", "commitment term", "pixel MSE"};
  }
  // float64 sums, added on the host in step order: the window's means are
  // what a read after every step gives.
  torch::Dtype history_dtype() const override { return torch::kFloat64; }
  nlohmann::json identity() const override {
    return {{"lr", options_.lr}, {"beta", model_.options.beta()}};
  }
  torch::nn::Module& model() override { return model_; }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }
  std::string advice() const override { return "Try a smaller --lr."; }

  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    model_.train();
    auto xb = batch_(idx);  // [B, 784]
    auto out = model_.forward(xb);
    auto l = model_.loss(out, xb);
    auto loss = l.total.mean();
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();
    torch::NoGradGuard no_grad;
    auto mse = (model_.mean_image(out.output).flatten(1) - xb.flatten(1))
                   .pow(2)
                   .to(torch::kFloat64)
                   .mean(1)
                   .sum();
    at::stack_out(sums,
                  {l.reconstruction.to(torch::kFloat64).sum(), l.codebook.to(torch::kFloat64).sum(),
                   l.commitment.to(torch::kFloat64).sum(), mse});
    auto codes = out.quantized.codes.flatten();  // [B*H*W]
    counts_.scatter_add_(0, codes, torch::ones_like(codes));
    batch_perplexity_ += out.quantized.batch_perplexity.to(torch::kFloat64);
  }

  void check(const StepRow& row) override {
    // A finite loss can still explode (the codebook term growing to 1e17
    // with one code left in use): compared with the first step's.
    const double rec = row.sums[0], cb = row.sums[1], cm = row.sums[2];
    const double b = static_cast<double>(row.batch);
    const double per_example = (rec + cb + cm) / b;
    if (row.step == 1) first_loss_ = per_example;
    const double limit = options_.divergence_factor * std::max(std::abs(first_loss_), 1.0);
    if (options_.divergence_factor > 0 && per_example > limit) {
      std::ostringstream os;
      os << options_.label << ": the VQ-VAE diverged at step " << row.step << ": its loss is "
         << per_example << " per example (reconstruction " << rec / b << ", codebook " << cb / b
         << ", commitment " << cm / b << "), more than " << options_.divergence_factor
         << " times the first step's " << first_loss_ << "; Adam learning rate " << options_.lr
         << ": try a smaller --lr";
      throw std::runtime_error(os.str());
    }
  }

  nlohmann::json evaluate(const Mark& mark) override {
    model_.eval();
    VqCurvePoint p;
    const double n = static_cast<double>(mark.window_examples);
    p.train.reconstruction = mark.window[0] / n;
    p.train.codebook = mark.window[1] / n;
    p.train.commitment = mark.window[2] / n;
    p.train.mse_per_pixel = mark.window[3] / n;
    auto counts = counts_.to(torch::kCPU).contiguous();
    const auto usage = codebook_usage_of_counts(std::vector<int64_t>(
        counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()));
    p.train.perplexity = usage.perplexity;
    p.train.codes_used = usage.used;
    p.train.examples = mark.window_examples;
    p.test = evaluate_vqvae(model_, test_subset_);
    // The mean over the window's steps of each minibatch's code perplexity.
    p.batch_perplexity = batch_perplexity_.item<double>() /
                         static_cast<double>(std::max<int64_t>(1, mark.window_steps));
    p.restarts = model_.quantizer->restarts();
    p.dead_codes =
        model_.quantizer->codes_below(std::max(1.0, model_.options.codebook().restart_threshold));
    counts_.zero_();
    batch_perplexity_.zero_();
    model_.train();
    return {{"train", p.train.to_json()},
            {"test", p.test.to_json()},
            {"batch_perplexity", p.batch_perplexity},
            {"restarts", p.restarts},
            {"dead_codes", p.dead_codes}};
  }

  std::string describe(const std::vector<double>& m) const override {
    char line[128];
    std::snprintf(line, sizeof(line),
                  "minibatch reconstruction %.4g, codebook %.4g, commitment %.4g", m[0], m[1],
                  m[2]);
    return line;
  }

  void save_state(nlohmann::json& values,
                  std::map<std::string, torch::Tensor>& tensors) const override {
    values["first_loss"] = first_loss_;
    tensors["vq_window_counts"] = counts_;
    tensors["vq_window_batch_perplexity"] = batch_perplexity_;
  }
  void load_state(const nlohmann::json& values,
                  const std::map<std::string, torch::Tensor>& tensors) override {
    first_loss_ = values.at("first_loss").get<double>();
    const auto it = tensors.find("vq_window_counts");
    if (it == tensors.end() || it->second.sizes() != counts_.sizes()) {
      throw std::runtime_error("the VQ-VAE's code counts are missing or of another codebook size");
    }
    counts_.copy_(it->second);
    const auto bp = tensors.find("vq_window_batch_perplexity");
    if (bp == tensors.end())
      throw std::runtime_error("the VQ-VAE's batch perplexity window is missing");
    batch_perplexity_.copy_(bp->second);
  }

 private:
  VqVaeImpl& model_;
  const std::function<torch::Tensor(const torch::Tensor&)>& batch_;
  torch::Tensor test_subset_;
  const VqTrainOptions& options_;
  torch::optim::Adam optimizer_;
  torch::Tensor counts_;  ///< [K] codes chosen since the previous curve point
  /// [] float64: the sum of the minibatches' code perplexities since the previous point
  torch::Tensor batch_perplexity_;
  double first_loss_ = 0;
};

}  // namespace

VqTrainResult train_vqvae(VqVaeImpl& model, int64_t n_train,
                          const std::function<torch::Tensor(const torch::Tensor&)>& batch,
                          const torch::Tensor& test, const VqTrainOptions& o) {
  if (n_train < 1 || o.epochs < 1 || o.batch_size < 1) {
    throw std::invalid_argument(
        "train_vqvae: need at least one training example, epoch and batch element");
  }
  const auto device = model.parameters().front().device();
  const int64_t steps_per_epoch = (n_train + o.batch_size - 1) / o.batch_size;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t points = std::max<int64_t>(1, std::min(o.curve_points, total_steps));
  LoopOptions lo;
  lo.total_samples = n_train * o.epochs;
  lo.batch_size = o.batch_size;
  lo.drop_last = false;  // every example once an epoch, the last minibatch smaller
  // Curve points evenly spaced in steps, the last at the end: point j after
  // step ceil(j T / P), as samples seen (full minibatches, then the epoch's remainder).
  for (int64_t j = 1; j <= points; ++j) {
    const int64_t step = (j * total_steps + points - 1) / points;
    const int64_t within = step % steps_per_epoch;
    lo.marks.push_back((step / steps_per_epoch) * n_train +
                       std::min(within * o.batch_size, n_train));
  }
  lo.label = o.label;
  lo.progress_seconds = o.progress_seconds;
  lo.checkpoint = o.checkpoint;
  VqVaeStep step(model, batch, test.narrow(0, 0, std::min(o.curve_test_examples, test.size(0))), o,
                 device);
  TrainingLoop loop(step, n_train, device, lo);
  const LoopState& s = loop.run();
  model.eval();
  VqTrainResult result;
  for (const auto& row : s.curve) result.curve.push_back(VqCurvePoint::from_json(row));
  result.samples_seen = s.samples_seen;
  result.train_seconds = s.train_seconds();
  result.eval_seconds = s.eval_seconds;
  result.resumed_at = s.resumed_at;
  return result;
}

}  // namespace vaerepro
