#include "vaerepro/quantizer.h"

#include <cmath>
#include <stdexcept>

namespace vaerepro {

CodebookUpdate parse_codebook_update(const std::string& name) {
  if (name == "gradient") return CodebookUpdate::kGradient;
  if (name == "ema") return CodebookUpdate::kEma;
  throw std::invalid_argument("unknown codebook update '" + name + "' (expected gradient or ema)");
}

std::string to_string(CodebookUpdate u) {
  return u == CodebookUpdate::kGradient ? "gradient" : "ema";
}

CodebookInit parse_codebook_init(const std::string& name) {
  if (name == "uniform") return CodebookInit::kUniform;
  if (name == "data") return CodebookInit::kData;
  if (name == "kmeans") return CodebookInit::kKmeans;
  throw std::invalid_argument("unknown codebook initialisation '" + name +
                              "' (expected uniform, data or kmeans)");
}

std::string to_string(CodebookInit i) {
  switch (i) {
    case CodebookInit::kUniform:
      return "uniform";
    case CodebookInit::kData:
      return "data";
    case CodebookInit::kKmeans:
      return "kmeans";
  }
  return "?";
}

CodebookOptions CodebookOptions::as_written() {
  return CodebookOptions();
}

CodebookOptions CodebookOptions::usual_fixes() {
  CodebookOptions o;
  o.update = CodebookUpdate::kEma;
  o.init = CodebookInit::kData;
  o.restart_threshold = 1.0;  // Jukebox's threshold
  return o;
}

nlohmann::json CodebookOptions::to_json() const {
  nlohmann::json j = {{"update", to_string(update)},
                      {"init", to_string(init)},
                      {"restart_threshold", restart_threshold}};
  j["update_source"] =
      update == CodebookUpdate::kGradient
          ? "vdO2017 eq. (3): Adam on the codebook term ||sg[z_e] - e||^2"
          : "vdO2017 appendix A.1: exponential moving averages of the assigned encoder outputs, "
            "counts Laplace-smoothed as in Sonnet's VectorQuantizerEMA";
  if (update == CodebookUpdate::kEma) {
    j["decay"] = decay;
    j["epsilon"] = epsilon;
  }
  switch (init) {
    case CodebookInit::kUniform:
      j["init_source"] = "U(-1/K, 1/K), the reference code of vdO2017";
      break;
    case CodebookInit::kData:
      j["init_source"] = "K random encoder outputs of the first training batch (Jukebox's init_k)";
      break;
    case CodebookInit::kKmeans:
      j["init_source"] =
          "k-means on the first training batch (lucidrains/vector-quantize-pytorch's kmeans_init)";
      j["kmeans_iterations"] = kmeans_iterations;
      break;
  }
  if (restart_threshold > 0) {
    j["usage_decay"] = usage_decay;
    j["restart_source"] =
        "every step, a code whose moving-average use per step is below the threshold takes a "
        "random "
        "encoder output of the batch (Jukebox's update_k)";
  } else {
    j["restart_source"] = "off (as in vdO2017)";
  }
  return j;
}

void CodebookOptions::validate() const {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("codebook options: " + what);
  };
  if (!(decay > 0 && decay < 1))
    fail("the EMA decay must lie in (0, 1), got " + std::to_string(decay));
  if (!(epsilon > 0)) fail("the EMA epsilon must be positive, got " + std::to_string(epsilon));
  if (kmeans_iterations < 0)
    fail("k-means iterations must be >= 0, got " + std::to_string(kmeans_iterations));
  if (!(restart_threshold >= 0))
    fail("the restart threshold must be >= 0 (0: off), got " + std::to_string(restart_threshold));
  if (!(usage_decay > 0 && usage_decay < 1))
    fail("the usage decay must lie in (0, 1), got " + std::to_string(usage_decay));
}

torch::Tensor straight_through(const torch::Tensor& continuous, const torch::Tensor& quantized) {
  return continuous + (quantized - continuous).detach();
}

torch::Tensor code_perplexity(const torch::Tensor& codes, int64_t num_codes) {
  auto counts = torch::bincount(codes.flatten(), {}, num_codes).to(torch::kFloat64);  // [K]
  auto p = counts / counts.sum().clamp_min(1.0);
  return torch::exp(-(p * torch::log(p.clamp_min(1e-300))).sum()).to(torch::kFloat32);  // []
}

VectorQuantizerImpl::VectorQuantizerImpl(const VectorQuantizerOptions& o) : options(o) {
  if (o.codes() < 1 || o.dim() < 1) {
    throw std::invalid_argument(
        "VectorQuantizer: codes and dim must be >= 1 (got K = " + std::to_string(o.codes()) +
        ", D = " + std::to_string(o.dim()) + ")");
  }
  o.codebook().validate();
  // U(-1/K, 1/K), as the reference implementations of vdO2017 initialise the
  // codebook; kData and kKmeans overwrite it at the first training step.
  auto init = torch::empty({o.codes(), o.dim()}).uniform_(-1.0 / o.codes(), 1.0 / o.codes());
  if (o.codebook().update == CodebookUpdate::kGradient) {
    codebook = register_parameter("codebook", init);
  } else {
    codebook = register_buffer(
        "codebook", init);  // no gradient: Sonnet's EMA embeddings are not trained by Adam
  }
  ema_count = register_buffer("ema_count", torch::ones({o.codes()}));
  ema_sum = register_buffer("ema_sum", init.clone());
  usage = register_buffer("usage", torch::full({o.codes()}, o.codebook().restart_threshold));
  steps = register_buffer("steps", torch::zeros({}, torch::kInt64));
  restart_count = register_buffer("restart_count", torch::zeros({}, torch::kInt64));
}

torch::Tensor VectorQuantizerImpl::nearest(const torch::Tensor& flat) const {
  torch::NoGradGuard no_grad;
  // ||f - e||^2 = ||f||^2 - 2 f.e + ||e||^2, [M, K]
  auto d = flat.pow(2).sum(1, true) - 2 * torch::matmul(flat, codebook.t()) +
           codebook.pow(2).sum(1).unsqueeze(0);
  return d.argmin(1);  // [M]
}

torch::Tensor VectorQuantizerImpl::lookup(const torch::Tensor& codes) const {
  TORCH_CHECK(codes.dim() == 3, "VectorQuantizer::lookup: expected code maps [B, H, W], got ",
              codes.sizes());
  // index_select, not F::embedding: its backward keeps only the indices and
  // the codebook's size (LibTorch 1.13's embedding saves the codebook
  // itself), so forward() may update the codebook in place after the lookup.
  auto e = codebook.index_select(0, codes.flatten())
               .view({codes.size(0), codes.size(1), codes.size(2), -1});  // [B, H, W, D]
  return e.permute({0, 3, 1, 2}).contiguous();                            // [B, D, H, W]
}

namespace {
/// `k` row indices into `m` rows: without replacement when m >= k.
torch::Tensor draw_rows(int64_t m, int64_t k, const torch::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  return m >= k ? torch::randperm(m, opts).narrow(0, 0, k) : torch::randint(m, {k}, opts);  // [k]
}

/// Counts [K] (float) and sums [K, D] of the rows of `flat` [M, D] per code.
std::pair<torch::Tensor, torch::Tensor> per_code(const torch::Tensor& flat,
                                                 const torch::Tensor& codes, int64_t k) {
  auto counts = torch::zeros({k}, flat.options())
                    .index_add_(0, codes, torch::ones({codes.size(0)}, flat.options()));
  auto sums = torch::zeros({k, flat.size(1)}, flat.options()).index_add_(0, codes, flat);
  return {counts, sums};
}
}  // namespace

void VectorQuantizerImpl::initialise_from(const torch::Tensor& flat_in) {
  torch::NoGradGuard no_grad;
  const auto& co = options.codebook();
  const int64_t k = options.codes();
  auto flat = flat_in.detach().to(codebook.dtype());
  TORCH_CHECK(flat.dim() == 2 && flat.size(1) == options.dim() && flat.size(0) > 0,
              "VectorQuantizer::initialise_from: expected [M, ", options.dim(),
              "] with M >= 1, got ", flat.sizes());
  codebook.copy_(flat.index_select(0, draw_rows(flat.size(0), k, flat.device())));
  if (co.init == CodebookInit::kKmeans) {
    // Lloyd's algorithm; an empty cluster keeps its vector (as lucidrains' kmeans).
    for (int64_t it = 0; it < co.kmeans_iterations; ++it) {
      auto [counts, sums] = per_code(flat, nearest(flat), k);
      auto means = sums / counts.clamp_min(1.0).unsqueeze(1);
      codebook.copy_(torch::where((counts > 0).unsqueeze(1), means, codebook));
    }
  }
  ema_count.fill_(1.0);
  ema_sum.copy_(codebook);
}

void VectorQuantizerImpl::update(const torch::Tensor& flat_in, const torch::Tensor& codes) {
  torch::NoGradGuard no_grad;
  const auto& co = options.codebook();
  const int64_t k = options.codes();
  auto flat = flat_in.detach().to(codebook.dtype());  // [M, D]
  auto [counts, sums] = per_code(flat, codes.flatten(), k);
  usage.mul_(co.usage_decay).add_(counts, 1.0 - co.usage_decay);
  if (co.update == CodebookUpdate::kEma) {
    // vdO2017 appendix A.1; Laplace smoothing as Sonnet's VectorQuantizerEMA.
    ema_count.mul_(co.decay).add_(counts, 1.0 - co.decay);
    ema_sum.mul_(co.decay).add_(sums, 1.0 - co.decay);
    auto n = ema_count.sum();
    auto smoothed = (ema_count + co.epsilon) / (n + k * co.epsilon) * n;  // [K]
    codebook.copy_(ema_sum / smoothed.unsqueeze(1));
  }
  if (co.restart_threshold > 0) {
    // Jukebox's update_k: dead codes take random encoder outputs of this
    // batch; torch::where keeps every other row bit-identical. No sync.
    auto dead = usage < co.restart_threshold;  // [K]
    auto fresh =
        flat.index_select(0, torch::randint(flat.size(0), {k}, codes.options()));  // [K, D]
    codebook.copy_(torch::where(dead.unsqueeze(1), fresh, codebook));
    usage.copy_(torch::where(dead, torch::full_like(usage, co.restart_threshold), usage));
    if (co.update == CodebookUpdate::kEma) {
      // lucidrains' expire_codes_: the restarted code's statistics say "used
      // `threshold` times, at the new vector", so the next average keeps it there.
      ema_count.copy_(
          torch::where(dead, torch::full_like(ema_count, co.restart_threshold), ema_count));
      ema_sum.copy_(torch::where(dead.unsqueeze(1), fresh * co.restart_threshold, ema_sum));
    }
    restart_count.add_(dead.sum());
  }
  steps.add_(1);
}

int64_t VectorQuantizerImpl::codes_below(double threshold) const {
  return (usage < threshold).sum().item<int64_t>();
}

int64_t VectorQuantizerImpl::restarts() const {
  return restart_count.item<int64_t>();
}

Quantized VectorQuantizerImpl::forward(const torch::Tensor& z_e) {
  TORCH_CHECK(z_e.dim() == 4 && z_e.size(1) == options.dim(), "VectorQuantizer: expected z_e [B, ",
              options.dim(), ", H, W], got ", z_e.sizes());
  const int64_t b = z_e.size(0), h = z_e.size(2), w = z_e.size(3);
  auto flat = z_e.permute({0, 2, 3, 1}).reshape({-1, options.dim()});  // [M, D]
  if (is_training() && !init_checked_) {
    // Once per module: a checkpoint restored before training has steps > 0.
    init_checked_ = true;
    if (options.codebook().init != CodebookInit::kUniform && steps.item<int64_t>() == 0)
      initialise_from(flat);
  }
  auto codes = nearest(flat);                // [M]
  auto z_q = lookup(codes.view({b, h, w}));  // [B, D, H, W]
  Quantized q;
  q.codes = codes.view({b, h, w});
  q.z_q = z_q;
  q.straight_through = straight_through(z_e, z_q);
  q.codebook_loss = (z_e.detach() - z_q).pow(2).flatten(1).mean(1);    // [B]
  q.commitment_loss = (z_e - z_q.detach()).pow(2).flatten(1).mean(1);  // [B]
  q.batch_perplexity = code_perplexity(codes, options.codes());
  // lookup's index_select saved only the indices for its backward pass, so
  // updating the codebook in place here leaves this step's gradients as computed.
  if (is_training()) update(flat, codes);
  return q;
}

}  // namespace vaerepro
