#include "vaerepro/mlp_step.h"

#include "vaerepro/mlp_step_kernels.h"
#include "vaerepro/runtime.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vaerepro {

namespace {

const int64_t kRows[] = {0};  // sum over the batch dimension

bool is_float(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat;
}

kernels::Unit unit_of(Activation a) {
  switch (a) {
    case Activation::kTanh:
      return kernels::Unit::kTanh;
    case Activation::kRelu:
      return kernels::Unit::kRelu;
    default:
      return kernels::Unit::kSigmoid;
  }
}

// Whether this thread may hand work to the others, each running its own
// single-threaded BLAS calls: several threads, not already inside a parallel
// region, and a BLAS that keeps such a call on its caller's thread.
bool can_share_out_products() {
  return at::get_num_threads() >= 2 && !at::in_parallel_region() && blas_calls_stay_on_caller();
}

// f() and g(), independent small products, at once on two threads (each
// product then runs on its own thread) on the CPU; one after the other
// elsewhere. A product too small to split (a latent head: N or K = 20)
// gains nothing from OpenBLAS's two threads but their synchronisation.
template <typename F, typename G>
void side_by_side(bool cpu, F&& f, G&& g) {
  if (!cpu || !can_share_out_products()) {
    f();
    g();
    return;
  }
  at::parallel_for(0, 2, 1, [&](int64_t t0, int64_t t1) {
    torch::NoGradGuard no_grad;  // grad mode is per thread
    for (int64_t t = t0; t < t1; ++t) t == 0 ? f() : g();
  });
}

// out <- act(in W^T + b): on the CPU a matrix product and one pass
// (kernels::bias_activation); elsewhere addmm and the activation in place.
template <typename Activate>
void dense_forward(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& weight,
                   const torch::Tensor& bias, bool cpu, bool split, kernels::Unit unit,
                   Activate&& activate) {
  if (cpu) {
    threaded_product(out, in, weight.t(), split);
    kernels::bias_activation(out.data_ptr<float>(), bias.data_ptr<float>(), out.size(0),
                             out.size(1), unit);
  } else {
    at::addmm_out(out, bias, in, weight.t());
    activate(out);
  }
}

}  // namespace

void threaded_product(torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b,
                      bool split) {
  constexpr int64_t kMinMacs = int64_t{1} << 20, kMinColumns = 64, kAlign = 16;
  const int64_t n = out.size(1);
  if (!split || !out.is_cpu() || n < 2 * kMinColumns || out.size(0) * n * a.size(1) < kMinMacs ||
      !can_share_out_products()) {
    at::mm_out(out, a, b);
    return;
  }
  const int64_t parts = std::min<int64_t>(at::get_num_threads(), n / kMinColumns);
  const int64_t width = ((n + parts - 1) / parts + kAlign - 1) / kAlign * kAlign;
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    torch::NoGradGuard no_grad;  // grad mode is per thread; the workers' is on
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = p * width, c1 = std::min(n, c0 + width);
      if (c0 >= c1) continue;
      torch::Tensor o = out.narrow(1, c0, c1 - c0);
      at::mm_out(o, a, b.narrow(1, c0, c1 - c0));
    }
  });
}

std::string MlpVaeStep::unsupported_reason(VaeImpl& vae) {
  const auto& o = vae.options;
  if (o.likelihood() != Likelihood::kBernoulli) {
    return "the decoder is " + to_string(o.likelihood()) +
           " (the hand-written step is Bernoulli only)";
  }
  if (o.activation() != Activation::kTanh && o.activation() != Activation::kRelu &&
      o.activation() != Activation::kSigmoid) {
    return to_string(o.activation()) +
           " hidden units (the hand-written step has tanh, relu and sigmoid)";
  }
  for (const auto& p : vae.parameters()) {
    if (!is_float(p)) return "parameters are not float32";
  }
  return "";
}

MlpVaeStep::MlpVaeStep(VaeImpl& vae, MlpStepOptions options)
    : vae_(vae),
      options_(options),
      activation_(vae.options.activation()),
      input_dim_(vae.options.input_dim()),
      condition_dim_(vae.options.condition_dim()),
      latent_(vae.options.arch().latent) {
  const std::string why = unsupported_reason(vae);
  if (!why.empty()) throw std::invalid_argument("MlpVaeStep: " + why);
  auto dense = [](const torch::nn::Linear& l) {
    Dense d;
    d.weight = l->weight;
    d.bias = l->bias;
    return d;
  };
  for (const auto& l : vae.encoder->body->layers()) encoder_.push_back(dense(l));
  for (const auto& l : vae.decoder->body->layers()) decoder_.push_back(dense(l));
  mu_head_ = dense(vae.encoder->mu_head);
  logvar_head_ = dense(vae.encoder->logvar_head);
  out_head_ = dense(vae.decoder->loc_head);
  enc_h_.resize(encoder_.size());
  enc_g_.resize(encoder_.size());
  dec_h_.resize(decoder_.size());
  dec_g_.resize(decoder_.size());
  buffers_ = {&input_, &mu_,  &logvar_,  &eps_,    &sd_,       &z_in_,
              &dz_in_, &dmu_, &dlogvar_, &logits_, &softplus_, &dlogits_};
  for (auto* v : {&enc_h_, &enc_g_, &dec_h_, &dec_g_}) {
    for (auto& b : *v) buffers_.push_back(&b);
  }
}

void MlpVaeStep::ensure_capacity(int64_t batch) {
  if (batch == batch_) return;
  if (batch > capacity_) {
    const auto opt = mu_head_.weight.options().requires_grad(false);
    auto make = [&](Buffer& b, int64_t cols) { b.full = torch::empty({batch, cols}, opt); };
    if (condition_dim_ > 0) make(input_, input_dim_ + condition_dim_);
    for (size_t i = 0; i < encoder_.size(); ++i) {
      make(enc_h_[i], encoder_[i].weight.size(0));
      make(enc_g_[i], encoder_[i].weight.size(0));
    }
    for (auto* b : {&mu_, &logvar_, &eps_, &sd_, &dmu_, &dlogvar_}) make(*b, latent_);
    make(z_in_, latent_ + condition_dim_);
    make(dz_in_, latent_ + condition_dim_);
    for (size_t i = 0; i < decoder_.size(); ++i) {
      make(dec_h_[i], decoder_[i].weight.size(0));
      make(dec_g_[i], decoder_[i].weight.size(0));
    }
    for (auto* b : {&logits_, &softplus_, &dlogits_}) make(*b, input_dim_);
    kl_scratch_ = torch::empty({}, opt);
    capacity_ = batch;
  }
  for (auto* b : buffers_) {
    if (b->full.defined()) b->view = b->full.narrow(0, 0, batch);
  }
  batch_ = batch;
}

void MlpVaeStep::bind_gradients() {
  // The gradients are the parameters' own .grad() tensors, kept from step to
  // step; they are (re)made only when missing (the first step, or after
  // someone reset them).
  // A gradient has its parameter's strides (an input-major weight has an
  // input-major gradient), so the fused optimizer pairs them element by
  // element in memory.
  auto bind = [](torch::Tensor& param, torch::Tensor& grad) {
    torch::Tensor g = param.grad();
    const bool dense = param.is_non_overlapping_and_dense();  // else: a contiguous gradient
    if (!g.defined() || g.sizes() != param.sizes() ||
        (dense ? g.strides() != param.strides() : !g.is_contiguous())) {
      g = dense ? torch::zeros_like(param, torch::MemoryFormat::Preserve)
                : torch::zeros_like(param, torch::MemoryFormat::Contiguous);
      param.mutable_grad() = g;
    }
    grad = g;
  };
  for (auto* v : {&encoder_, &decoder_}) {
    for (auto& d : *v) {
      bind(d.weight, d.weight_grad);
      bind(d.bias, d.bias_grad);
    }
  }
  for (auto* d : {&mu_head_, &logvar_head_, &out_head_}) {
    bind(d->weight, d->weight_grad);
    bind(d->bias, d->bias_grad);
  }
}

void MlpVaeStep::activate_(torch::Tensor& h) const {
  switch (activation_) {
    case Activation::kTanh:
      h.tanh_();
      return;
    case Activation::kRelu:
      h.relu_();
      return;
    case Activation::kSigmoid:
      h.sigmoid_();
      return;
    default:
      TORCH_CHECK(false, "MlpVaeStep: unsupported activation");
  }
}

// g <- g * act'(pre), where act' is written with the activation's output h.
void MlpVaeStep::activation_backward_(torch::Tensor& g, const torch::Tensor& h) const {
  switch (activation_) {
    case Activation::kTanh:  // 1 - h^2
      at::tanh_backward_out(g, g, h);
      return;
    case Activation::kRelu:  // h > 0 exactly where the input was
      at::threshold_backward_out(g, g, h, 0);
      return;
    case Activation::kSigmoid:  // h (1 - h)
      at::sigmoid_backward_out(g, g, h);
      return;
    default:
      TORCH_CHECK(false, "MlpVaeStep: unsupported activation");
  }
}

void MlpVaeStep::dense_backward(Dense& d, const torch::Tensor& g,
                                const torch::Tensor& input) const {
  threaded_product(d.weight_grad, g.t(), input, options_.split_products);  // [out, in]
  at::sum_out(d.bias_grad, g, at::IntArrayRef(kRows));                     // [out]
}

bool MlpVaeStep::input_major(const Dense& d) {
  const auto& w = d.weight;
  return w.dim() == 2 && w.stride(0) == 1 && w.stride(1) == w.size(0) && d.weight_grad.defined() &&
         d.weight_grad.strides() == w.strides();
}

// h_1 = act(x W^T + c V^T + b), W^T's rows those of the lit pixels.
void MlpVaeStep::first_layer_sparse_forward(const torch::Tensor& c, kernels::Unit unit) {
  Dense& f = encoder_.front();
  torch::Tensor& h = enc_h_.front().view;  // [B, H]
  const int64_t width = h.size(1);
  const torch::Tensor wt = f.weight.t();  // [D (+ C), H], contiguous
  kernels::sum_selected_rows(wt.data_ptr<float>(), width, width, lit_, h.size(0),
                             h.data_ptr<float>(), width);
  if (condition_dim_ > 0) h.addmm_(c, wt.narrow(0, input_dim_, condition_dim_));
  kernels::bias_activation(h.data_ptr<float>(), f.bias.data_ptr<float>(), h.size(0), width, unit);
}

// dW^T = x^T g (for each pixel, the rows of g of the images where it is lit),
// dV^T = c^T g, db = sum_rows g.
void MlpVaeStep::first_layer_sparse_backward(const torch::Tensor& c) {
  Dense& f = encoder_.front();
  const torch::Tensor& g = enc_g_.front().view;  // [B, H]
  const int64_t width = g.size(1);
  torch::Tensor gwt = f.weight_grad.t();  // [D (+ C), H], contiguous
  kernels::sum_selected_rows(g.data_ptr<float>(), width, width, lit_by_pixel_, input_dim_,
                             gwt.data_ptr<float>(), width);
  if (condition_dim_ > 0) {
    torch::Tensor gv = gwt.narrow(0, input_dim_, condition_dim_);
    at::mm_out(gv, c.t(), g);
  }
  at::sum_out(f.bias_grad, g, at::IntArrayRef(kRows));
}

// One function of about 185 lines, on purpose: the forward pass, the loss and
// the backward pass share this step's locals (the sparse pattern's verdict,
// the encoder's input and output views, the condition's columns, the CPU/GPU
// and split choices), and the backward pass reads them in the reverse order
// of the forward one; the sections below (forward, loss, backward) keep that
// order readable in one place, where pieces would pass a dozen of them back
// and forth. Its already separate pieces are the per-layer kernels above.
void MlpVaeStep::compute_gradients(const torch::Tensor& x, const torch::Tensor& c, double beta,
                                   torch::Tensor sums_out) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == input_dim_, "MlpVaeStep: x must be [B, ", input_dim_,
              "], got ", x.sizes());
  TORCH_CHECK(is_float(x), "MlpVaeStep: x must be float32");
  if (condition_dim_ > 0) {
    TORCH_CHECK(
        c.defined() && c.dim() == 2 && c.size(0) == x.size(0) && c.size(1) == condition_dim_,
        "MlpVaeStep: the model expects a condition [B, ", condition_dim_, "]");
  } else {
    TORCH_CHECK(!c.defined() || c.numel() == 0,
                "this model is unconditional but a condition was given");
  }
  torch::NoGradGuard no_grad;
  const int64_t b = x.size(0);
  ensure_capacity(b);
  bind_gradients();
  const torch::Tensor xc = x.contiguous();
  const double inv_b = 1.0 / static_cast<double>(b);
  const bool cpu = xc.is_cpu();
  const bool split = options_.split_products;

  // Binary x on the CPU: the first layer as sums of selected rows.
  const bool sparse =
      cpu && options_.sparse_binary_input && !encoder_.empty() && input_major(encoder_.front()) &&
      kernels::binary_pattern(
          xc.data_ptr<float>(), b, input_dim_, input_dim_,
          static_cast<int64_t>(options_.max_density * static_cast<double>(b * input_dim_)), lit_);
  if (sparse) kernels::transpose_pattern(lit_, input_dim_, lit_by_pixel_);
  ++steps_;
  sparse_steps_ += sparse ? 1 : 0;

  // ---------------------------------------------------------------- forward
  torch::Tensor in = xc;  // [B, D (+ C)]
  if (condition_dim_ > 0) {
    // The sparse first layer reads x's pattern and only the condition's columns.
    if (!sparse) input_.view.narrow(1, 0, input_dim_).copy_(xc);
    input_.view.narrow(1, input_dim_, condition_dim_).copy_(c);
    in = input_.view;
  }
  // The condition as float, the columns after x in the encoder's input.
  const torch::Tensor cond =
      condition_dim_ > 0 ? input_.view.narrow(1, input_dim_, condition_dim_) : torch::Tensor();
  const torch::Tensor* h = &in;
  const kernels::Unit unit = unit_of(activation_);
  auto act = [this](torch::Tensor& t) { activate_(t); };
  for (size_t i = 0; i < encoder_.size(); ++i) {
    if (i == 0 && sparse) {
      first_layer_sparse_forward(cond, unit);
    } else {
      dense_forward(enc_h_[i].view, *h, encoder_[i].weight, encoder_[i].bias, cpu, split, unit,
                    act);
    }
    h = &enc_h_[i].view;
  }
  const torch::Tensor& enc_out = *h;  // [B, H]
  side_by_side(
      cpu && split, [&] { at::addmm_out(mu_.view, mu_head_.bias, enc_out, mu_head_.weight.t()); },
      [&] { at::addmm_out(logvar_.view, logvar_head_.bias, enc_out, logvar_head_.weight.t()); });
  eps_.view.normal_();  // the draw training_loss makes: randn_like(mu)

  // z = mu + exp(logvar / 2) eps into the decoder's input; KL summed.
  torch::Tensor z = z_in_.view.narrow(1, 0, latent_);  // [B, Z], row stride Z + C
  double kl_sum = 0;
  if (cpu) {
    const float* m = mu_.view.data_ptr<float>();
    const float* lv = logvar_.view.data_ptr<float>();
    const float* e = eps_.view.data_ptr<float>();
    float* sd = sd_.view.data_ptr<float>();
    float* zp = z.data_ptr<float>();
    const int64_t zs = z.stride(0);
    double acc = 0;
    for (int64_t r = 0; r < b; ++r) {
      float row = 0;
      for (int64_t j = 0; j < latent_; ++j) {
        const int64_t k = r * latent_ + j;
        const float s = std::exp(0.5f * lv[k]);
        sd[k] = s;
        zp[r * zs + j] = m[k] + s * e[k];
        row += 1.0f + lv[k] - m[k] * m[k] - s * s;
      }
      acc += row;
    }
    kl_sum = -0.5 * acc;
  } else {
    at::mul_out(sd_.view, logvar_.view, 0.5);
    sd_.view.exp_();
    at::addcmul_out(z, mu_.view, sd_.view, eps_.view);
    // KL = -1/2 sum(1 + logvar - mu^2 - sd^2)
    at::sum_out(kl_scratch_, logvar_.view - mu_.view.square() - sd_.view.square());
    kl_scratch_.add_(static_cast<double>(b * latent_)).mul_(-0.5);
  }
  if (condition_dim_ > 0) z_in_.view.narrow(1, latent_, condition_dim_).copy_(c);

  h = &z_in_.view;
  for (size_t i = 0; i < decoder_.size(); ++i) {
    dense_forward(dec_h_[i].view, *h, decoder_[i].weight, decoder_[i].bias, cpu, split, unit, act);
    h = &dec_h_[i].view;
  }
  const torch::Tensor& dec_out = *h;

  // ------------------------------------------------------------------- loss
  // log p(x|z) = sum x l - softplus(l); d loss / d l = (sigmoid(l) - x) / B.
  if (cpu) {
    // logits without their bias; the head adds it, in one pass with the rest.
    threaded_product(logits_.view, dec_out, out_head_.weight.t(), split);
    const double ll = kernels::bernoulli_head(
        logits_.view.data_ptr<float>(), out_head_.bias.data_ptr<float>(), xc.data_ptr<float>(),
        dlogits_.view.data_ptr<float>(), b, input_dim_, static_cast<float>(inv_b));
    if (sums_out.defined()) {
      sums_out.select(0, 0).fill_(ll);
      sums_out.select(0, 1).fill_(kl_sum);
    }
  } else {
    at::addmm_out(logits_.view, out_head_.bias, dec_out, out_head_.weight.t());  // [B, D]
    // softplus with torch's threshold 20, as training_loss
    auto xl = at::dot(xc.reshape({-1}), logits_.view.reshape({-1}));
    at::softplus_out(softplus_.view, logits_.view, 1, 20);
    at::sigmoid_out(dlogits_.view, logits_.view);
    dlogits_.view.sub_(xc).mul_(inv_b);
    if (sums_out.defined()) {
      sums_out.select(0, 0).copy_(xl - softplus_.view.sum());
      sums_out.select(0, 1).copy_(kl_scratch_);
    }
  }

  // --------------------------------------------------------------- backward
  const torch::Tensor* g = &dlogits_.view;
  for (size_t i = decoder_.size(); i-- > 0;) {
    Dense& above = i + 1 < decoder_.size() ? decoder_[i + 1] : out_head_;
    dense_backward(above, *g, dec_h_[i].view);
    threaded_product(dec_g_[i].view, *g, above.weight, split);  // d h_i
    activation_backward_(dec_g_[i].view, dec_h_[i].view);
    g = &dec_g_[i].view;
  }
  Dense& first_dec = decoder_.empty() ? out_head_ : decoder_.front();
  side_by_side(
      cpu && split, [&] { dense_backward(first_dec, *g, z_in_.view); },
      [&] { threaded_product(dz_in_.view, *g, first_dec.weight, split); });  // [B, Z + C]
  const torch::Tensor dz = dz_in_.view.narrow(1, 0, latent_);

  // Through z = mu + sd eps and beta KL / B.
  const double k = beta * inv_b;
  if (cpu) {
    const float* m = mu_.view.data_ptr<float>();
    const float* e = eps_.view.data_ptr<float>();
    const float* sd = sd_.view.data_ptr<float>();
    const float* gz = dz.data_ptr<float>();
    const int64_t gs = dz.stride(0);
    float* gm = dmu_.view.data_ptr<float>();
    float* gl = dlogvar_.view.data_ptr<float>();
    const float kf = static_cast<float>(k);
    for (int64_t r = 0; r < b; ++r) {
      for (int64_t j = 0; j < latent_; ++j) {
        const int64_t q = r * latent_ + j;
        const float gzq = gz[r * gs + j];
        gm[q] = gzq + kf * m[q];
        gl[q] = 0.5f * (gzq * e[q] * sd[q] + kf * (sd[q] * sd[q] - 1.0f));
      }
    }
  } else {
    at::add_out(dmu_.view, dz, mu_.view, k);
    at::mul_out(dlogvar_.view, sd_.view, sd_.view);
    dlogvar_.view.sub_(1.0).mul_(k).addcmul_(dz, eps_.view * sd_.view).mul_(0.5);
  }
  // The heads' gradients beside the gradient they send down.
  side_by_side(
      cpu && split,
      [&] {
        dense_backward(mu_head_, dmu_.view, enc_out);
        dense_backward(logvar_head_, dlogvar_.view, enc_out);
      },
      [&] {
        if (encoder_.empty()) return;  // the heads read x itself: nothing below
        torch::Tensor& gh = enc_g_.back().view;
        at::mm_out(gh, dmu_.view, mu_head_.weight);
        at::addmm_out(gh, gh, dlogvar_.view, logvar_head_.weight);
      });
  if (encoder_.empty()) return;
  for (size_t i = encoder_.size(); i-- > 0;) {
    activation_backward_(enc_g_[i].view, enc_h_[i].view);
    if (i == 0 && sparse) {
      first_layer_sparse_backward(cond);
      continue;
    }
    const torch::Tensor& below = i == 0 ? in : enc_h_[i - 1].view;
    dense_backward(encoder_[i], enc_g_[i].view, below);
    if (i > 0) threaded_product(enc_g_[i - 1].view, enc_g_[i].view, encoder_[i].weight, split);
  }
}

}  // namespace vaerepro
