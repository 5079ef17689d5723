#include "vaerepro/models.h"

#include <cctype>
#include <sstream>
#include <stdexcept>

#include "vaerepro/cli.h"
#include "vaerepro/distributions.h"

namespace vaerepro {

Activation parse_activation(const std::string& name) {
  if (name == "tanh") return Activation::kTanh;
  if (name == "relu") return Activation::kRelu;
  if (name == "softplus") return Activation::kSoftplus;
  if (name == "sigmoid") return Activation::kSigmoid;
  throw std::invalid_argument("unknown activation '" + name +
                              "' (expected tanh, relu, softplus or sigmoid)");
}

std::string to_string(Activation a) {
  switch (a) {
    case Activation::kTanh:
      return "tanh";
    case Activation::kRelu:
      return "relu";
    case Activation::kSoftplus:
      return "softplus";
    case Activation::kSigmoid:
      return "sigmoid";
  }
  return "?";
}

Likelihood parse_likelihood(const std::string& name) {
  if (name == "bernoulli") return Likelihood::kBernoulli;
  if (name == "gaussian") return Likelihood::kGaussian;
  throw std::invalid_argument("unknown likelihood '" + name + "' (expected bernoulli or gaussian)");
}

std::string to_string(Likelihood l) {
  return l == Likelihood::kBernoulli ? "bernoulli" : "gaussian";
}

std::string Architecture::to_string() const {
  std::ostringstream os;
  os << '[';
  for (auto h : hidden) os << h << ", ";
  os << latent << ']';
  return os.str();
}

Architecture parse_architecture_option(const std::string& text, const std::string& option) {
  try {
    return parse_architecture(text);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + option + ": " + e.what());
  }
}

Architecture parse_architecture(const std::string& text) {
  std::vector<int64_t> values;
  std::string token;
  auto flush = [&]() {
    if (token.empty()) return;
    for (char ch : token) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) {
        throw std::invalid_argument("architecture '" + text + "': entry '" + token +
                                    "' is not a positive integer (write e.g. [500,500,3])");
      }
    }
    if (token.size() > 9) {
      throw std::invalid_argument("architecture '" + text + "': entry '" + token +
                                  "' is absurdly large (at most 999999999)");
    }
    values.push_back(std::stoll(token));
    token.clear();
  };
  for (char ch : text) {
    if (ch == '[' || ch == ']' || ch == ',' || std::isspace(static_cast<unsigned char>(ch))) {
      flush();
    } else {
      token.push_back(ch);
    }
  }
  flush();
  if (values.empty()) {
    throw std::invalid_argument("architecture '" + text +
                                "' is empty: give at least the latent size, e.g. [500,20]");
  }
  for (auto v : values) {
    if (v <= 0) {
      throw std::invalid_argument("architecture '" + text +
                                  "': every width and the latent size must be >= 1");
    }
  }
  Architecture arch;
  arch.latent = values.back();
  values.pop_back();
  arch.hidden = values;
  return arch;
}

torch::Tensor activate(const torch::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kTanh:
      return torch::tanh(x);
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kSoftplus:
      return torch::nn::functional::softplus(x);
    case Activation::kSigmoid:
      return torch::sigmoid(x);
  }
  return x;
}

void init_normal_(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.normal_(0.0, std);
}

ConditionEncoding parse_condition_encoding(const std::string& name) {
  if (name == "none") return ConditionEncoding::kNone;
  if (name == "one-hot") return ConditionEncoding::kOneHot;
  if (name == "raw") return ConditionEncoding::kRaw;
  throw std::invalid_argument("unknown condition encoding '" + name +
                              "' (expected none, one-hot or raw)");
}

std::string to_string(ConditionEncoding e) {
  switch (e) {
    case ConditionEncoding::kNone:
      return "none";
    case ConditionEncoding::kOneHot:
      return "one-hot";
    case ConditionEncoding::kRaw:
      return "raw";
  }
  return "?";
}

int64_t condition_dim(ConditionEncoding e, int64_t num_classes) {
  switch (e) {
    case ConditionEncoding::kNone:
      return 0;
    case ConditionEncoding::kOneHot:
      return num_classes;
    case ConditionEncoding::kRaw:
      return 1;
  }
  return 0;
}

torch::Tensor encode_condition(const torch::Tensor& labels, ConditionEncoding e,
                               int64_t num_classes) {
  switch (e) {
    case ConditionEncoding::kNone:
      return {};
    case ConditionEncoding::kOneHot:
      return torch::one_hot(labels.to(torch::kLong), num_classes).to(torch::kFloat);  // [B, C]
    case ConditionEncoding::kRaw:
      return labels.to(torch::kFloat).unsqueeze(-1);  // [B, 1]
  }
  return {};
}

MlpImpl::MlpImpl(const MlpOptions& options_) : options(options_) {
  int64_t in = options.in_features();
  for (size_t i = 0; i < options.widths().size(); ++i) {
    auto layer =
        register_module("fc" + std::to_string(i), torch::nn::Linear(in, options.widths()[i]));
    layers_.push_back(layer);
    in = options.widths()[i];
  }
  out_features_ = in;
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  for (auto& layer : layers_) x = activate(layer(x), options.activation());
  return x;
}

namespace {
torch::Tensor with_condition(const torch::Tensor& x, const torch::Tensor& c, int64_t expected_dim) {
  if (expected_dim == 0) {
    TORCH_CHECK(!c.defined() || c.numel() == 0,
                "this model is unconditional but a condition was given");
    return x;
  }
  TORCH_CHECK(c.defined() && c.size(-1) == expected_dim, "the model expects a condition of size ",
              expected_dim);
  if (c.dim() < x.dim()) {  // broadcast [B, C] over leading sample dims [K, B, C]
    auto shape = x.sizes().vec();
    shape.back() = c.size(-1);
    return torch::cat({x, c.expand(shape)}, -1);
  }
  return torch::cat({x, c}, -1);  // [.., D + C]
}
}  // namespace

void store_input_major(const torch::nn::Linear& layer) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = layer->weight;  // [out, in]
  torch::Tensor t = torch::empty({w.size(1), w.size(0)}, w.options());
  t.copy_(w.t());
  layer->weight.set_data(t.t());  // the same [out, in] values, strides (1, out)
}

GaussianEncoderImpl::GaussianEncoderImpl(const GaussianEncoderOptions& options_)
    : options(options_) {
  body = register_module(
      "body", Mlp(MlpOptions(options.input_dim() + options.condition_dim(), options.arch().hidden)
                      .activation(options.activation())));
  mu_head = register_module("mu", torch::nn::Linear(body->out_features(), options.arch().latent));
  logvar_head =
      register_module("logvar", torch::nn::Linear(body->out_features(), options.arch().latent));
}

GaussianPosterior GaussianEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto h = body->forward(with_condition(x, c, options.condition_dim()));  // [B, H]
  return {mu_head(h), logvar_head(h)};
}

DecoderImpl::DecoderImpl(const DecoderOptions& options_) : options(options_) {
  std::vector<int64_t> widths(options.arch().hidden.rbegin(), options.arch().hidden.rend());
  body = register_module("body",
                         Mlp(MlpOptions(options.arch().latent + options.condition_dim(), widths)
                                 .activation(options.activation())));
  loc_head = register_module("loc", torch::nn::Linear(body->out_features(), options.output_dim()));
  if (options.likelihood() == Likelihood::kGaussian &&
      options.variance() == VarianceMode::kPerPixelHead) {
    logvar_head =
        register_module("logvar", torch::nn::Linear(body->out_features(), options.output_dim()));
  }
}

DecoderOutput DecoderImpl::forward(const torch::Tensor& z, const torch::Tensor& c) {
  auto h = body->forward(with_condition(z, c, options.condition_dim()));  // [.., H]
  auto loc = loc_head(h);                                                 // [.., D]
  if (options.likelihood() == Likelihood::kBernoulli) return {loc, {}};
  if (options.sigmoid_mean()) loc = torch::sigmoid(loc);
  torch::Tensor logvar = options.variance() == VarianceMode::kPerPixelHead
                             ? logvar_head(h)
                             : torch::full_like(loc, options.fixed_logvar());
  return {loc, logvar};
}

torch::Tensor DecoderImpl::log_prob(const DecoderOutput& out, const torch::Tensor& x) const {
  if (options.likelihood() == Likelihood::kBernoulli) return bernoulli_log_prob(out.loc, x);
  return gaussian_log_prob(x, out.loc, out.logvar);
}

torch::Tensor DecoderImpl::mean(const DecoderOutput& out) const {
  if (options.likelihood() == Likelihood::kBernoulli) return torch::sigmoid(out.loc);
  return out.loc.clamp(0.0, 1.0);
}

VaeImpl::VaeImpl(const VaeOptions& options_) : options(options_) {
  encoder = register_module(
      "encoder", GaussianEncoder(GaussianEncoderOptions(options.input_dim(), options.arch())
                                     .condition_dim(options.condition_dim())
                                     .activation(options.activation())));
  decoder = register_module("decoder", Decoder(DecoderOptions(options.input_dim(), options.arch())
                                                   .condition_dim(options.condition_dim())
                                                   .activation(options.activation())
                                                   .likelihood(options.likelihood())
                                                   .variance(options.variance())
                                                   .fixed_logvar(options.fixed_logvar())
                                                   .sigmoid_mean(options.sigmoid_mean())));
  if (options.init_std() > 0) init_normal_(*this, options.init_std());
  // After the initialisation, which then draws into a contiguous tensor as
  // before: ATen fills a strided tensor with other generator calls, which
  // would change every model a seed gives.
  if (!encoder->body->layers().empty()) store_input_major(encoder->body->layers().front());
}

VaeOutput VaeImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto posterior = encoder->forward(x, c);
  auto z = reparameterize(posterior.mu, posterior.logvar);  // [B, Z]
  auto decoded = decoder->forward(z, c);
  return {posterior, z, decoded};
}

int64_t VaeImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace vaerepro

namespace vaerepro {

namespace F = torch::nn::functional;

ResidualBlockImpl::ResidualBlockImpl(int64_t channels) {
  conv3 = register_module(
      "conv3", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
  conv1 =
      register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 1)));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  return x + conv1(torch::relu(conv3(torch::relu(x))));
}

ConvEncoderImpl::ConvEncoderImpl(const ConvOptions& o) : options(o) {
  const int64_t f = o.channels();
  down1 = register_module(
      "down1",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(o.image_channels(), f, 4).stride(2).padding(1)));
  down2 = register_module(
      "down2", torch::nn::Conv2d(torch::nn::Conv2dOptions(f, f, 4).stride(2).padding(1)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.residual_blocks(); ++i) blocks->push_back(ResidualBlock(f));
  out = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(f, o.out_channels(), 1)));
}

torch::Tensor ConvEncoderImpl::forward(const torch::Tensor& x) {
  auto h = torch::relu(down1(x));  // [B, F, 14, 14]
  h = down2(h);                    // [B, F, 7, 7]
  for (auto& block : *blocks) h = block->as<ResidualBlock>()->forward(h);
  return out(torch::relu(h));  // [B, E, 7, 7]
}

ConvDecoderImpl::ConvDecoderImpl(const ConvOptions& o) : options(o) {
  const int64_t f = o.channels();
  in = register_module(
      "in", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.out_channels(), f, 3).padding(1)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.residual_blocks(); ++i) blocks->push_back(ResidualBlock(f));
  up1 = register_module(
      "up1",
      torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(f, f, 4).stride(2).padding(1)));
  up2 = register_module(
      "up2", torch::nn::ConvTranspose2d(
                 torch::nn::ConvTranspose2dOptions(f, o.image_channels(), 4).stride(2).padding(1)));
}

torch::Tensor ConvDecoderImpl::forward(const torch::Tensor& z) {
  auto h = in(z);  // [B, F, 7, 7]
  for (auto& block : *blocks) h = block->as<ResidualBlock>()->forward(h);
  h = torch::relu(up1(torch::relu(h)));  // [B, F, 14, 14]
  return up2(h);                         // [B, C, 28, 28]
}

}  // namespace vaerepro
