#include "vaerepro/analysis.h"

#include <algorithm>

#include "vaerepro/distributions.h"

namespace vaerepro {

LatentUsage latent_usage(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c,
                         double threshold, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = vae.is_training();
  vae.eval();
  std::vector<torch::Tensor> means, kls;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    const int64_t len = std::min(batch_size, x.size(0) - s);
    auto post = vae.encoder->forward(x.narrow(0, s, len),
                                     c.defined() ? c.narrow(0, s, len) : torch::Tensor());
    means.push_back(post.mu.to(torch::kDouble));  // [B, Z]
    kls.push_back((-0.5 * (1 + post.logvar - post.mu.pow(2) - post.logvar.exp()))
                      .to(torch::kDouble));  // [B, Z]
  }
  vae.train(was_training);
  auto mu = torch::cat(means).cpu();              // [N, Z]
  auto kl = torch::cat(kls).cpu();                // [N, Z]
  auto activity = mu.var(0, /*unbiased=*/false);  // Cov_x(E_q[z_j]), the diagonal
  auto kl_mean = kl.mean(0);
  LatentUsage u;
  u.threshold = threshold;
  for (int64_t j = 0; j < mu.size(1); ++j) {
    u.activity.push_back(activity[j].item<double>());
    u.kl_per_dim.push_back(kl_mean[j].item<double>());
    u.active_units += u.activity.back() > threshold ? 1 : 0;
  }
  return u;
}

std::vector<double> traversal_values(double limit, int64_t count) {
  std::vector<double> v;
  for (int64_t i = 0; i < count; ++i) {
    v.push_back(count == 1 ? 0.0 : -limit + 2 * limit * static_cast<double>(i) / (count - 1));
  }
  return v;
}

torch::Tensor latent_traversal(VaeImpl& vae, const torch::Tensor& base,
                               const torch::Tensor& condition, int64_t dim,
                               const std::vector<double>& values) {
  TORCH_CHECK(base.dim() == 2 && dim >= 0 && dim < base.size(1), "latent_traversal: dimension ",
              dim, " is outside the code's ", base.size(1));
  torch::NoGradGuard no_grad;
  const int64_t r = base.size(0), v = static_cast<int64_t>(values.size());
  std::vector<double> all = values;
  all.push_back(-1.0);
  all.push_back(1.0);
  const int64_t n = static_cast<int64_t>(all.size());
  auto codes = base.unsqueeze(1).repeat({1, n, 1});  // [R, V + 2, Z]
  auto column = torch::tensor(all, base.options()).view({1, n});
  codes.select(2, dim).copy_(column.expand({r, n}));
  auto flat = codes.view({r * n, base.size(1)});
  torch::Tensor cond;
  if (condition.defined())
    cond = condition.unsqueeze(1).expand({r, n, condition.size(1)}).reshape({r * n, -1});
  auto images =
      vae.decoder->mean(vae.decoder->forward(flat, cond)).view({r, n, -1});  // [R, V + 2, D]
  auto heat = (images.select(1, n - 1) - images.select(1, n - 2)).abs();     // [R, D]
  auto peak = heat.amax(1, /*keepdim=*/true).clamp_min(1e-12);
  return torch::cat({images.narrow(1, 0, v), (heat / peak).unsqueeze(1)}, 1);  // [R, V + 1, D]
}

TraversalRows traversal_rows(VaeImpl& vae, const TensorData& data, ConditionEncoding condition) {
  torch::NoGradGuard no_grad;
  vae.eval();
  TraversalRows rows;
  if (condition != ConditionEncoding::kNone) {
    auto labels = torch::arange(data.num_classes, data.test_labels.options());
    rows.condition = encode_condition(labels, condition, data.num_classes);
    rows.base = torch::zeros({data.num_classes, vae.latent_dim()}, data.test.options());
    rows.description = "labels 0-" + std::to_string(data.num_classes - 1) +
                       " (CVAE), other latents at the prior's mean";
  } else {
    rows.base = vae.encoder->forward(first_rows(data.test, 10)).mu;
    rows.description = "the first ten test images' posterior means";
  }
  return rows;
}

}  // namespace vaerepro
