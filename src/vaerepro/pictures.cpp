#include "vaerepro/pictures.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "vaerepro/estimators.h"
#include "vaerepro/image.h"
#include "vaerepro/schema/metrics.h"

namespace vaerepro {

torch::Tensor reconstruct(VaeImpl& vae, const torch::Tensor& x, const torch::Tensor& c) {
  torch::NoGradGuard no_grad;
  vae.eval();
  return vae.decoder->mean(vae.decoder->forward(vae.encoder->forward(x, c).mu, c));
}

torch::Tensor sample_images(VaeImpl& vae, int64_t n, const torch::TensorOptions& options) {
  torch::NoGradGuard no_grad;
  vae.eval();
  auto z = torch::randn({n, vae.latent_dim()}, options);
  return vae.decoder->mean(vae.decoder->forward(z));
}

void write_reconstructions_png(const std::string& path, VaeImpl& vae, const torch::Tensor& x,
                               const TensorData& data) {
  write_image_grid(path, torch::cat({x, reconstruct(vae, x)}), x.size(0), data.height, data.width);
}

void write_samples_png(const std::string& path, VaeImpl& vae, int64_t n, const TensorData& data) {
  write_image_grid(path, sample_images(vae, n, data.test.options()), 10, data.height, data.width);
}

std::vector<std::string> write_traversal_pngs(VaeImpl& vae, const TraversalRows& rows,
                                              const std::vector<double>& values,
                                              const TensorData& data, const std::string& dir) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> paths;
  for (int64_t j = 0; j < vae.latent_dim(); ++j) {
    auto grid = latent_traversal(vae, rows.base, rows.condition, j, values);  // [R, V + 1, D]
    const std::string rel = "images/traversal-dim" + std::to_string(j + 1) + ".png";
    write_image_grid(dir + "/" + rel, grid.reshape({-1, data.dim()}), grid.size(1), data.height,
                     data.width);
    paths.push_back(rel);
  }
  return paths;
}

torch::Tensor manifold_grid(VaeImpl& vae, int64_t g, const torch::TensorOptions& options) {
  if (vae.latent_dim() != 2) {
    throw std::invalid_argument("a manifold grid needs a 2-D latent space, not Nz = " +
                                std::to_string(vae.latent_dim()));
  }
  torch::NoGradGuard no_grad;
  vae.eval();
  auto q = torch::linspace(0.05, 0.95, g, options);    // prior quantiles
  auto v = std::sqrt(2.0) * torch::erfinv(2 * q - 1);  // Phi^{-1}(q)
  auto grid = torch::stack(torch::meshgrid({v.flip(0), v}, "ij"), -1).view({g * g, 2});
  return vae.decoder->mean(vae.decoder->forward(grid));
}

nlohmann::json marginal_on_first_points(VaeImpl& vae, const torch::Tensor& test, int64_t k,
                                        int64_t points) {
  const int64_t n = std::min<int64_t>(points, test.size(0));
  if (n <= 0) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const auto x = test.narrow(0, 0, n);  // [n, D] as scored
  const SetEstimate log_px = importance_sampled_on_set(vae, x, k);
  const SetEstimate bound = importance_sampled_on_set(vae, x, 1);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  namespace c1 = schema::ch01;
  return {{c1::kK, k},
          {schema::key::kExamples, n},
          {c1::kPoints, n == test.size(0) ? "the whole test set"
                                          : "the first " + std::to_string(n) + " test points"},
          {c1::kLogPx, log_px.to_json()},
          {"elbo_same_points", bound.to_json()},
          {"wall_seconds", seconds}};
}

std::vector<std::vector<double>> latent_scatter_rows(const torch::Tensor& mu,
                                                     const torch::Tensor& labels) {
  const auto m = mu.to(torch::kCPU);
  const auto lab = labels.to(torch::kCPU);
  std::vector<std::vector<double>> rows;
  for (int64_t i = 0; i < m.size(0); ++i) {
    rows.push_back({m[i][0].item<double>(), m[i][1].item<double>(),
                    static_cast<double>(lab[i].item<int64_t>())});
  }
  return rows;
}

}  // namespace vaerepro
