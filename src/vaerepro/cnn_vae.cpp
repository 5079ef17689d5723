#include "vaerepro/cnn_vae.h"

#include <sstream>

#include "vaerepro/distributions.h"

namespace vaerepro {

namespace nn = torch::nn;

CnnVaeImpl::CnnVaeImpl(const CnnVaeOptions& o) : options(o) {
  TORCH_CHECK(o.latent() > 0 && o.channels1() > 0 && o.channels2() > 0,
              "CnnVae: sizes must be positive");
  TORCH_CHECK(o.height() % 4 == 0 && o.width() % 4 == 0,
              "CnnVae: the image's sides must be multiples of 4 (two stride-2 layers), got ",
              o.height(), "x", o.width());
  const int64_t c1 = o.channels1(), c2 = o.channels2();
  const int64_t features = c2 * (o.height() / 4) * (o.width() / 4);
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, c1, 4).stride(2).padding(1)));
  enc_bn1 = register_module("enc_bn1", nn::BatchNorm2d(c1));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(c1, c2, 4).stride(2).padding(1)));
  enc_bn2 = register_module("enc_bn2", nn::BatchNorm2d(c2));
  mu_head = register_module("mu", nn::Linear(features, o.latent()));
  logvar_head = register_module("logvar", nn::Linear(features, o.latent()));
  dec_in = register_module("dec_in", nn::Linear(o.latent(), features));
  dec_bn0 = register_module("dec_bn0", nn::BatchNorm2d(c2));
  deconv1 = register_module(
      "deconv1", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c2, c1, 4).stride(2).padding(1)));
  dec_bn1 = register_module("dec_bn1", nn::BatchNorm2d(c1));
  deconv2 = register_module(
      "deconv2", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c1, 1, 4).stride(2).padding(1)));
}

GaussianPosterior CnnVaeImpl::encode(const torch::Tensor& x) {
  const double slope = options.leaky_slope();
  auto h = x.reshape({-1, 1, options.height(), options.width()});  // [B, 1, H, W]
  h = torch::leaky_relu(enc_bn1(conv1(h)), slope);                 // [B, C1, H/2, W/2]
  h = torch::leaky_relu(enc_bn2(conv2(h)), slope).flatten(1);      // [B, C2 * H/4 * W/4]
  return {mu_head(h), logvar_head(h)};
}

torch::Tensor CnnVaeImpl::decode(const torch::Tensor& z) {
  auto lead = z.sizes().vec();
  lead.pop_back();
  auto h = dec_in(z.reshape({-1, options.latent()}));  // [N, F]
  h = h.reshape(
      {-1, options.channels2(), options.height() / 4, options.width() / 4});  // [N, C2, H/4, W/4]
  h = torch::relu(dec_bn0(h));
  h = torch::relu(dec_bn1(deconv1(h)));  // [N, C1, H/2, W/2]
  auto logits = deconv2(h).flatten(1);   // [N, D]
  lead.push_back(logits.size(1));
  return logits.reshape(lead);  // [.., D]
}

torch::Tensor CnnVaeImpl::log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                                      const torch::Tensor&, int64_t k) {
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  auto q = encode(x_in);
  auto mu = q.mu.unsqueeze(0), logvar = q.logvar.unsqueeze(0);  // [1, B, Z]
  auto z = mu + torch::exp(0.5 * logvar) *
                    torch::randn({k, mu.size(1), mu.size(2)}, mu.options());        // [K, B, Z]
  auto log_lik = bernoulli_log_prob(decode(z), x.unsqueeze(0));                     // [K, B]
  return log_lik + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar);  // [K, B]
}

ElboTerms CnnVaeImpl::elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                                 const torch::Tensor&) {
  auto q = encode(x_in);
  auto z = reparameterize(q.mu, q.logvar);                   // [B, Z]
  auto log_lik = bernoulli_log_prob(decode(z), x);           // [B]
  auto kl = gaussian_kl_to_standard_normal(q.mu, q.logvar);  // [B]
  return {log_lik - kl, log_lik, kl};
}

std::vector<torch::Tensor> CnnVaeImpl::posterior_means(const torch::Tensor& x,
                                                       const torch::Tensor&) {
  return {encode(x).mu};
}

torch::Tensor CnnVaeImpl::reconstruct(const torch::Tensor& x, const torch::Tensor&) {
  return torch::sigmoid(decode(encode(x).mu));
}

torch::Tensor CnnVaeImpl::sample(int64_t n, const torch::Tensor&) {
  return torch::sigmoid(decode(torch::randn({n, options.latent()}, mu_head->weight.options())));
}

std::string CnnVaeImpl::describe() const {
  std::ostringstream os;
  os << "conv4x4/2(" << options.channels1() << ")-BN-LReLU-conv4x4/2(" << options.channels2()
     << ")-BN-LReLU-z(" << options.latent()
     << "), mirrored with transposed convolutions, BN and ReLU";
  return os.str();
}

}  // namespace vaerepro
