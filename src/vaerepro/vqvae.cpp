#include "vaerepro/vqvae.h"
#include "vaerepro/cli.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace vaerepro {

namespace F = torch::nn::functional;

Reconstruction parse_reconstruction(const std::string& name) {
  if (name == "mse") return Reconstruction::kMse;
  if (name == "bernoulli") return Reconstruction::kBernoulli;
  throw std::invalid_argument("unknown reconstruction '" + name + "' (expected mse or bernoulli)");
}

std::string to_string(Reconstruction r) { return r == Reconstruction::kMse ? "mse" : "bernoulli"; }

VqVaeImpl::VqVaeImpl(const VqVaeOptions& o) : options(o) {
  const ConvOptions conv = ConvOptions(o.channels(), o.dim()).residual_blocks(o.residual_blocks());
  encoder = register_module("encoder", ConvEncoder(conv));
  quantizer = register_module("quantizer", VectorQuantizer(VectorQuantizerOptions(o.codes(), o.dim()).codebook(o.codebook())));
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
                           out.output, target, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
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
  return options.reconstruction() == Reconstruction::kMse ? output.clamp(0.0, 1.0) : torch::sigmoid(output);
}

torch::Tensor VqVaeImpl::log_likelihood(const torch::Tensor& output, const torch::Tensor& x, double sigma2) const {
  auto target = as_images(x);
  if (options.reconstruction() == Reconstruction::kBernoulli) {
    return -F::binary_cross_entropy_with_logits(
                output, target, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                .flatten(1)
                .sum(1);  // [B]
  }
  TORCH_CHECK(sigma2 > 0, "log_likelihood: the Gaussian variance must be positive, got ", sigma2);
  // log N(x; mu, sigma2) summed over pixels, every constant included.
  return (-0.5 * ((output - target).pow(2) / sigma2 + std::log(2 * M_PI * sigma2))).flatten(1).sum(1);  // [B]
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
  auto counts = torch::bincount(codes.flatten().to(torch::kCPU), {}, num_codes).to(torch::kInt64);  // [K]
  CodebookUsage u;
  u.counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + num_codes);
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
  return {{"reconstruction", reconstruction}, {"codebook", codebook},     {"commitment", commitment},
          {"mse_per_pixel", mse_per_pixel},   {"perplexity", perplexity}, {"codes_used", codes_used},
          {"examples", examples}};
}

nlohmann::json VqCurvePoint::to_json() const {
  return {{"samples_seen", samples_seen}, {"epochs", epochs},         {"train", train.to_json()},
          {"test", test.to_json()},       {"batch_perplexity", batch_perplexity}, {"restarts", restarts},
          {"dead_codes", dead_codes},     {"wall_seconds", wall_seconds}};
}

VqSetMetrics evaluate_vqvae(VqVaeImpl& model, const torch::Tensor& x, int64_t batch_size) {
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
    mse += (model.mean_image(out.output).flatten(1) - xb.flatten(1)).pow(2).to(torch::kFloat64).mean(1).sum().item<double>();
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

VqTrainResult train_vqvae(VqVaeImpl& model, int64_t n_train,
                          const std::function<torch::Tensor(const torch::Tensor&)>& batch,
                          const torch::Tensor& test, const VqTrainOptions& o) {
  if (n_train < 1 || o.epochs < 1 || o.batch_size < 1) {
    throw std::invalid_argument("train_vqvae: need at least one training example, epoch and batch element");
  }
  torch::optim::Adam optimizer(model.parameters(), torch::optim::AdamOptions(o.lr));
  const auto device = model.quantizer->codebook.device();
  const int64_t steps_per_epoch = (n_train + o.batch_size - 1) / o.batch_size;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t points = std::max<int64_t>(1, std::min(o.curve_points, total_steps));
  const auto test_subset = test.narrow(0, 0, std::min(o.curve_test_examples, test.size(0)));
  VqTrainResult result;
  const auto t0 = std::chrono::steady_clock::now();
  auto last_progress = t0;
  double eval_seconds = 0;
  // Window sums of the minibatch terms between curve points (float64).
  double w_rec = 0, w_cb = 0, w_cm = 0, w_mse = 0;
  int64_t w_n = 0, w_steps = 0, step = 0, next_point = 1;
  auto w_batch_perplexity = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  double first_loss = 0;
  std::vector<torch::Tensor> w_codes;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    auto perm = torch::randperm(n_train, torch::TensorOptions().dtype(torch::kInt64).device(device));
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      throw_if_stopped(o.label);  // no checkpoint: a stopped VQ-VAE trains afresh on resume
      model.train();
      auto idx = perm.narrow(0, s * o.batch_size, std::min(o.batch_size, n_train - s * o.batch_size));
      auto xb = batch(idx);  // [B, 784]
      auto out = model.forward(xb);
      auto l = model.loss(out, xb);
      auto loss = l.total.mean();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      ++step;
      {
        torch::NoGradGuard no_grad;
        const double rec = l.reconstruction.to(torch::kFloat64).sum().item<double>();
        const double cb = l.codebook.to(torch::kFloat64).sum().item<double>();
        const double cm = l.commitment.to(torch::kFloat64).sum().item<double>();
        if (!std::isfinite(rec) || !std::isfinite(cb) || !std::isfinite(cm)) {
          throw std::runtime_error(o.label + ": the VQ-VAE loss became non-finite at step " + std::to_string(step) +
                                   " (reconstruction " + std::to_string(rec) + ", codebook " + std::to_string(cb) +
                                   ", commitment " + std::to_string(cm) + "); Adam learning rate " +
                                   std::to_string(o.lr) + ": try a smaller --lr");
        }
        // A finite loss can still explode (the codebook term growing to 1e17
        // with one code left in use): compared with the first step's.
        const double per_example = (rec + cb + cm) / static_cast<double>(xb.size(0));
        if (step == 1) first_loss = per_example;
        const double limit = o.divergence_factor * std::max(std::abs(first_loss), 1.0);
        if (o.divergence_factor > 0 && per_example > limit) {
          std::ostringstream os;
          os << o.label << ": the VQ-VAE diverged at step " << step << ": its loss is " << per_example
             << " per example (reconstruction " << rec / xb.size(0) << ", codebook " << cb / xb.size(0)
             << ", commitment " << cm / xb.size(0) << "), more than " << o.divergence_factor
             << " times the first step's " << first_loss << "; Adam learning rate " << o.lr
             << ": try a smaller --lr";
          throw std::runtime_error(os.str());
        }
        w_rec += rec;
        w_cb += cb;
        w_cm += cm;
        w_mse += (model.mean_image(out.output).flatten(1) - xb.flatten(1)).pow(2).to(torch::kFloat64).mean(1).sum().item<double>();
        w_n += xb.size(0);
        w_codes.push_back(out.quantized.codes);
        w_batch_perplexity += out.quantized.batch_perplexity.to(torch::kFloat64);
        ++w_steps;
      }
      result.samples_seen += xb.size(0);
      // Curve points evenly spaced in steps, the last at the end.
      if (step * points >= next_point * total_steps) {
        ++next_point;
        const auto te = std::chrono::steady_clock::now();
        model.eval();
        VqCurvePoint p;
        p.samples_seen = result.samples_seen;
        p.epochs = static_cast<double>(result.samples_seen) / static_cast<double>(n_train);
        p.train.reconstruction = w_rec / w_n;
        p.train.codebook = w_cb / w_n;
        p.train.commitment = w_cm / w_n;
        p.train.mse_per_pixel = w_mse / w_n;
        const auto usage = codebook_usage(torch::cat(w_codes), model.options.codes());
        p.train.perplexity = usage.perplexity;
        p.train.codes_used = usage.used;
        p.train.examples = w_n;
        p.test = evaluate_vqvae(model, test_subset);
        p.batch_perplexity = w_batch_perplexity.item<double>() / static_cast<double>(std::max<int64_t>(1, w_steps));
        p.restarts = model.quantizer->restarts();
        p.dead_codes = model.quantizer->codes_below(std::max(1.0, model.options.codebook().restart_threshold));
        eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - te).count();
        p.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        result.curve.push_back(p);
        w_rec = w_cb = w_cm = w_mse = 0;
        w_n = w_steps = 0;
        w_batch_perplexity.zero_();
        w_codes.clear();
      }
      const auto now = std::chrono::steady_clock::now();
      if (o.progress_seconds > 0 && std::chrono::duration<double>(now - last_progress).count() > o.progress_seconds) {
        last_progress = now;
        std::cout << o.label << ": step " << step << "/" << total_steps << ", loss " << loss.item<double>() << "\n"
                  << std::flush;
      }
    }
  }
  model.eval();
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - eval_seconds;
  return result;
}

}  // namespace vaerepro
