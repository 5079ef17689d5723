#include "vaerepro/iwae.h"

#include <sstream>

#include "vaerepro/distributions.h"

namespace vaerepro {

GaussianLayerImpl::GaussianLayerImpl(int64_t in, std::vector<int64_t> hidden, int64_t out,
                                     Activation activation) {
  body = register_module("body", Mlp(MlpOptions(in, std::move(hidden)).activation(activation)));
  mu_head = register_module("mu", torch::nn::Linear(body->out_features(), out));
  logvar_head = register_module("logvar", torch::nn::Linear(body->out_features(), out));
}

GaussianPosterior GaussianLayerImpl::forward(const torch::Tensor& h) {
  auto hidden = body->forward(h);
  return {mu_head(hidden), logvar_head(hidden)};
}

TwoLayerVaeImpl::TwoLayerVaeImpl(const TwoLayerVaeOptions& o) : options(o) {
  TORCH_CHECK(o.input_dim() > 0 && o.z1() > 0 && o.z2() > 0 && o.hidden1() > 0 && o.hidden2() > 0,
              "TwoLayerVae: every size must be positive (D ", o.input_dim(), ", z1 ", o.z1(),
              ", z2 ", o.z2(), ", hidden ", o.hidden1(), "/", o.hidden2(), ")");
  const int64_t h1 = o.hidden1(), h2 = o.hidden2();
  q1 = register_module(
      "q1", GaussianLayer(o.input_dim(), std::vector<int64_t>{h1, h1}, o.z1(), o.activation()));
  q2 = register_module("q2",
                       GaussianLayer(o.z1(), std::vector<int64_t>{h2, h2}, o.z2(), o.activation()));
  p1 = register_module("p1",
                       GaussianLayer(o.z2(), std::vector<int64_t>{h2, h2}, o.z1(), o.activation()));
  px_body =
      register_module("px_body", Mlp(MlpOptions(o.z1(), {h1, h1}).activation(o.activation())));
  px_logits = register_module("px_logits", torch::nn::Linear(h1, o.input_dim()));
}

TwoLayerSample TwoLayerVaeImpl::draw(const torch::Tensor& x_in, const torch::Tensor& x, int64_t k) {
  TORCH_CHECK(k >= 1, "importance samples must be >= 1, got ", k);
  auto a = q1->forward(x_in);                                 // [B, Z1]
  auto mu1 = a.mu.unsqueeze(0), lv1 = a.logvar.unsqueeze(0);  // [1, B, Z1]
  auto h1 = mu1 + torch::exp(0.5 * lv1) *
                      torch::randn({k, mu1.size(1), mu1.size(2)}, mu1.options());  // [K, B, Z1]
  auto b = q2->forward(h1);                                                        // [K, B, Z2]
  auto h2 = b.mu + torch::exp(0.5 * b.logvar) * torch::randn_like(b.mu);           // [K, B, Z2]
  auto prior1 = p1->forward(h2);                                                   // [K, B, Z1]
  auto logits = px_logits(px_body->forward(h1));                                   // [K, B, D]
  TwoLayerSample s;
  s.h1 = h1;
  s.h2 = h2;
  s.log_q = gaussian_log_prob(h1, mu1, lv1) + gaussian_log_prob(h2, b.mu, b.logvar);  // [K, B]
  s.log_prior = standard_normal_log_prob(h2) + gaussian_log_prob(h1, prior1.mu, prior1.logvar);
  s.log_likelihood = bernoulli_log_prob(logits, x.unsqueeze(0));  // [K, B]
  return s;
}

torch::Tensor TwoLayerVaeImpl::log_weights(const torch::Tensor& x_in, const torch::Tensor& x,
                                           const torch::Tensor&, int64_t k) {
  auto s = draw(x_in, x, k);
  return s.log_likelihood + s.log_prior - s.log_q;  // [K, B]
}

ElboTerms TwoLayerVaeImpl::elbo_terms(const torch::Tensor& x_in, const torch::Tensor& x,
                                      const torch::Tensor&) {
  auto s = draw(x_in, x, 1);
  auto log_lik = s.log_likelihood.squeeze(0);    // [B]
  auto kl = (s.log_q - s.log_prior).squeeze(0);  // [B] one-sample estimate
  return {log_lik - kl, log_lik, kl};
}

std::vector<torch::Tensor> TwoLayerVaeImpl::posterior_means(const torch::Tensor& x,
                                                            const torch::Tensor&) {
  auto a = q1->forward(x);  // [B, Z1]
  constexpr int64_t kDraws = 16;
  auto h1 = a.mu.unsqueeze(0) +
            torch::exp(0.5 * a.logvar).unsqueeze(0) *
                torch::randn({kDraws, a.mu.size(0), a.mu.size(1)}, a.mu.options());  // [16, B, Z1]
  return {a.mu, q2->forward(h1).mu.mean(0)};  // [B, Z1], [B, Z2]
}

torch::Tensor TwoLayerVaeImpl::reconstruct(const torch::Tensor& x, const torch::Tensor&) {
  return torch::sigmoid(px_logits(px_body->forward(q1->forward(x).mu)));  // [B, D]
}

torch::Tensor TwoLayerVaeImpl::sample(int64_t n, const torch::Tensor&) {
  auto h2 = torch::randn({n, options.z2()}, px_logits->weight.options());  // [n, Z2]
  auto prior1 = p1->forward(h2);
  auto h1 = prior1.mu + torch::exp(0.5 * prior1.logvar) * torch::randn_like(prior1.mu);  // [n, Z1]
  return torch::sigmoid(px_logits(px_body->forward(h1)));
}

std::string TwoLayerVaeImpl::describe() const {
  std::ostringstream os;
  os << "x-" << options.hidden1() << "-" << options.hidden1() << "-h1(" << options.z1() << ")-"
     << options.hidden2() << "-" << options.hidden2() << "-h2(" << options.z2() << ") "
     << to_string(options.activation());
  return os.str();
}

}  // namespace vaerepro
