#include "vaerepro/fused_optim.h"

#include <ATen/Parallel.h>

#if defined(__GNUC__) && defined(__x86_64__)
#define VAEREPRO_X86 1
#include <immintrin.h>
#endif

#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace vaerepro {

FusedOptimizerOptions::Kind parse_fused_kind(const std::string& name) {
  if (name == "adagrad") return FusedOptimizerOptions::Kind::kAdagrad;
  if (name == "adam") return FusedOptimizerOptions::Kind::kAdam;
  if (name == "sgd") return FusedOptimizerOptions::Kind::kSgd;
  throw std::invalid_argument("unknown optimizer '" + name + "' (expected adagrad, adam or sgd)");
}

namespace {

std::unique_ptr<torch::optim::OptimizerOptions> torch_defaults(const FusedOptimizerOptions& o) {
  // The matching torch options, so that param_groups()[0].options().get_lr()
  // and set_lr() behave as with torch::optim.
  switch (o.kind) {
    case FusedOptimizerOptions::Kind::kAdagrad:
      return std::make_unique<torch::optim::AdagradOptions>(
          torch::optim::AdagradOptions(o.lr).weight_decay(o.weight_decay).lr_decay(o.lr_decay));
    case FusedOptimizerOptions::Kind::kAdam:
      return std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
    case FusedOptimizerOptions::Kind::kSgd:
      return std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw std::logic_error("unreachable");
}

FusedOptimizerOptions with_default_eps(FusedOptimizerOptions o) {
  if (o.eps < 0) o.eps = o.kind == FusedOptimizerOptions::Kind::kAdam ? 1e-8 : 1e-10;
  return o;
}

}  // namespace

FusedOptimizer::FusedOptimizer(std::vector<torch::Tensor> params,
                               const FusedOptimizerOptions& options)
    : torch::optim::Optimizer(std::vector<torch::Tensor>(params), torch_defaults(options)),
      options_(with_default_eps(options)) {
  if (params.empty()) throw std::invalid_argument("fused optimizer: no parameters to optimize");
  std::unordered_set<const void*> seen;
  // Each parameter starts on a 64-byte boundary (16 floats), as a tensor of
  // its own would: GEMMs and vector loops on misaligned views ran slower.
  constexpr int64_t kAlign = 16;
  auto aligned = [](int64_t x) { return (x + kAlign - 1) / kAlign * kAlign; };
  int64_t total = 0;
  for (const auto& p : params) {
    if (!p.defined()) throw std::invalid_argument("fused optimizer: an undefined parameter tensor");
    if (!seen.insert(p.unsafeGetTensorImpl()).second) {
      throw std::invalid_argument("fused optimizer: a parameter appears twice");
    }
    if (p.scalar_type() != params.front().scalar_type() || p.device() != params.front().device()) {
      throw std::invalid_argument(
          "fused optimizer: parameters of mixed dtype or device (move the model to one device "
          "first)");
    }
    total = aligned(total) + p.numel();
  }
  torch::NoGradGuard no_grad;
  flat_params_ = torch::zeros({total}, params.front().options().requires_grad(false));
  int64_t offset = 0;
  for (auto& p : params) {
    offset = aligned(offset);
    // The view keeps the parameter's memory layout (an input-major weight,
    // models.h, stays input major); a layout with gaps or overlaps becomes
    // contiguous.
    const auto strides =
        p.is_non_overlapping_and_dense() ? p.strides().vec() : p.contiguous().strides().vec();
    auto view = flat_params_.as_strided(p.sizes(), strides, offset);
    view.copy_(p.detach());
    p.set_data(view);  // the module's tensor now lives in the flat buffer
    segments_.push_back({p, offset, p.numel(), 0, p.sizes().vec(), strides});
    offset += p.numel();
  }
  state1_ = options_.kind == FusedOptimizerOptions::Kind::kSgd ? torch::Tensor()
                                                               : torch::zeros_like(flat_params_);
  if (options_.kind == FusedOptimizerOptions::Kind::kAdam)
    state2_ = torch::zeros_like(flat_params_);
}

torch::Tensor FusedOptimizer::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  const double lr = param_groups_.front().options().get_lr();
  if (flat_params_.is_cpu() && flat_params_.scalar_type() == torch::kFloat) {
    step_cpu_float(lr);
  } else {
    step_generic(lr);
  }
  return loss;
}

namespace {

// The loops below run 8 floats at a time with AVX (when the CPU has AVX2),
// 4 with SSE2 (every x86-64) and one at a time elsewhere, with the very
// operations, in the same order, of the scalar form in each tail loop. The
// compiler does not vectorise std::sqrt itself here (errno), hence the
// intrinsics. Each tail loop is the reference.
#ifdef VAEREPRO_X86
__attribute__((target("avx2"))) int64_t adagrad_avx2(float* p, float* s, const float* g, int64_t n,
                                                     float neg_clr, float eps, float wd) {
  const __m256 a = _mm256_set1_ps(neg_clr), e = _mm256_set1_ps(eps), w = _mm256_set1_ps(wd);
  const bool decay = wd != 0.0f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pi = _mm256_loadu_ps(p + i);
    __m256 gi = _mm256_loadu_ps(g + i);
    if (decay) gi = _mm256_add_ps(gi, _mm256_mul_ps(w, pi));
    const __m256 sum = _mm256_add_ps(_mm256_loadu_ps(s + i), _mm256_mul_ps(gi, gi));
    _mm256_storeu_ps(s + i, sum);
    const __m256 step = _mm256_div_ps(gi, _mm256_add_ps(_mm256_sqrt_ps(sum), e));
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_mul_ps(a, step)));
  }
  return i;
}

int64_t adagrad_sse(float* p, float* s, const float* g, int64_t n, float neg_clr, float eps,
                    float wd) {
  const __m128 a = _mm_set1_ps(neg_clr), e = _mm_set1_ps(eps), w = _mm_set1_ps(wd);
  const bool decay = wd != 0.0f;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 pi = _mm_loadu_ps(p + i);
    __m128 gi = _mm_loadu_ps(g + i);
    if (decay) gi = _mm_add_ps(gi, _mm_mul_ps(w, pi));
    const __m128 sum = _mm_add_ps(_mm_loadu_ps(s + i), _mm_mul_ps(gi, gi));
    _mm_storeu_ps(s + i, sum);
    const __m128 step = _mm_div_ps(gi, _mm_add_ps(_mm_sqrt_ps(sum), e));
    _mm_storeu_ps(p + i, _mm_add_ps(pi, _mm_mul_ps(a, step)));
  }
  return i;
}

__attribute__((target("avx2"))) int64_t adam_avx2(float* p, float* m, float* v, const float* g,
                                                  int64_t n, float neg_step, float sqrt_bc2,
                                                  float eps, float b1, float one_minus_b1, float b2,
                                                  float one_minus_b2, float wd) {
  const __m256 a = _mm256_set1_ps(neg_step), sb = _mm256_set1_ps(sqrt_bc2), e = _mm256_set1_ps(eps);
  const __m256 vb1 = _mm256_set1_ps(b1), vb1c = _mm256_set1_ps(one_minus_b1);
  const __m256 vb2 = _mm256_set1_ps(b2), vb2c = _mm256_set1_ps(one_minus_b2),
               w = _mm256_set1_ps(wd);
  const bool decay = wd != 0.0f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pi = _mm256_loadu_ps(p + i);
    __m256 gi = _mm256_loadu_ps(g + i);
    if (decay) gi = _mm256_add_ps(gi, _mm256_mul_ps(w, pi));
    const __m256 mi =
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), vb1), _mm256_mul_ps(vb1c, gi));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vb2),
                                    _mm256_mul_ps(vb2c, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sb), e);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_mul_ps(a, _mm256_div_ps(mi, denom))));
  }
  return i;
}

int64_t adam_sse(float* p, float* m, float* v, const float* g, int64_t n, float neg_step,
                 float sqrt_bc2, float eps, float b1, float one_minus_b1, float b2,
                 float one_minus_b2, float wd) {
  const __m128 a = _mm_set1_ps(neg_step), sb = _mm_set1_ps(sqrt_bc2), e = _mm_set1_ps(eps);
  const __m128 vb1 = _mm_set1_ps(b1), vb1c = _mm_set1_ps(one_minus_b1);
  const __m128 vb2 = _mm_set1_ps(b2), vb2c = _mm_set1_ps(one_minus_b2), w = _mm_set1_ps(wd);
  const bool decay = wd != 0.0f;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 pi = _mm_loadu_ps(p + i);
    __m128 gi = _mm_loadu_ps(g + i);
    if (decay) gi = _mm_add_ps(gi, _mm_mul_ps(w, pi));
    const __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), vb1), _mm_mul_ps(vb1c, gi));
    const __m128 vi =
        _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), vb2), _mm_mul_ps(vb2c, _mm_mul_ps(gi, gi)));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    const __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), sb), e);
    _mm_storeu_ps(p + i, _mm_add_ps(pi, _mm_mul_ps(a, _mm_div_ps(mi, denom))));
  }
  return i;
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

void adagrad_loop(float* p, float* s, const float* g, int64_t n, float neg_clr, float eps,
                  float wd) {
  int64_t i = 0;
#ifdef VAEREPRO_X86
  i = have_avx2() ? adagrad_avx2(p, s, g, n, neg_clr, eps, wd)
                  : adagrad_sse(p, s, g, n, neg_clr, eps, wd);
#endif
  for (; i < n; ++i) {
    const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    const float sum = s[i] + gi * gi;
    s[i] = sum;
    p[i] = p[i] + neg_clr * (gi / (std::sqrt(sum) + eps));
  }
}

void adam_loop(float* p, float* m, float* v, const float* g, int64_t n, float neg_step,
               float sqrt_bc2, float eps, float b1, float one_minus_b1, float b2,
               float one_minus_b2, float wd) {
  int64_t i = 0;
#ifdef VAEREPRO_X86
  i = have_avx2() ? adam_avx2(p, m, v, g, n, neg_step, sqrt_bc2, eps, b1, one_minus_b1, b2,
                              one_minus_b2, wd)
                  : adam_sse(p, m, v, g, n, neg_step, sqrt_bc2, eps, b1, one_minus_b1, b2,
                             one_minus_b2, wd);
#endif
  for (; i < n; ++i) {
    const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    const float mi = m[i] * b1 + one_minus_b1 * gi;
    const float vi = v[i] * b2 + one_minus_b2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] + neg_step * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

void sgd_loop(float* __restrict p, const float* __restrict g, int64_t n, float neg_lr, float wd) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    p[i] = p[i] + neg_lr * gi;
  }
}

/// One parameter's slice of the CPU loop with its per-step coefficients.
struct Job {
  int64_t begin = 0, end = 0;   ///< range in the flat buffer
  const float* grad = nullptr;  ///< at `begin`
  float a = 0, b = 0, c = 0;    ///< kind-specific coefficients
};
}  // namespace

void FusedOptimizer::step_cpu_float(double lr) {
  using Kind = FusedOptimizerOptions::Kind;
  const auto& o = options_;
  std::vector<Job> jobs;
  std::vector<torch::Tensor> keep;  // contiguous copies of odd gradients, alive for the loop
  jobs.reserve(segments_.size());
  for (auto& s : segments_) {
    torch::Tensor g = s.param.grad();
    if (!g.defined()) continue;
    TORCH_CHECK(!g.is_sparse(), "fused optimizer: sparse gradients are not supported");
    // The loop pairs gradient and parameter element by element in memory:
    // a gradient of another layout is first copied into the parameter's.
    if (g.scalar_type() != torch::kFloat || !g.is_cpu() ||
        g.strides() != c10::IntArrayRef(s.strides)) {
      g = torch::empty_strided(s.sizes, s.strides, flat_params_.options()).copy_(g);
      keep.push_back(g);
    }
    ++s.steps;
    Job j;
    j.begin = s.offset;
    j.end = s.offset + s.numel;
    j.grad = g.data_ptr<float>();
    const double t = static_cast<double>(s.steps);
    switch (o.kind) {
      case Kind::kAdagrad:
        j.a = static_cast<float>(-(lr / (1 + (t - 1) * o.lr_decay)));  // -clr
        break;
      case Kind::kAdam: {
        const double bc1 = 1 - std::pow(o.beta1, t);
        const double bc2 = 1 - std::pow(o.beta2, t);
        j.a = static_cast<float>(-(lr / bc1));     // -step_size
        j.b = static_cast<float>(std::sqrt(bc2));  // sqrt(bias_correction2)
        break;
      }
      case Kind::kSgd:
        j.a = static_cast<float>(-lr);
        break;
    }
    jobs.push_back(j);
  }
  if (jobs.empty()) return;
  float* p = flat_params_.data_ptr<float>();
  float* s1 = state1_.defined() ? state1_.data_ptr<float>() : nullptr;
  float* s2 = state2_.defined() ? state2_.data_ptr<float>() : nullptr;
  const float wd = static_cast<float>(o.weight_decay);
  const float eps = static_cast<float>(o.eps);
  const float b1 = static_cast<float>(o.beta1), one_minus_b1 = static_cast<float>(1 - o.beta1);
  const float b2 = static_cast<float>(o.beta2), one_minus_b2 = static_cast<float>(1 - o.beta2);
  const Kind kind = o.kind;
  const int64_t total = flat_params_.numel();
  // One loop over the flat buffer; each chunk walks the parameters it overlaps.
  at::parallel_for(0, total, 16384, [&](int64_t begin, int64_t end) {
    for (const Job& j : jobs) {
      const int64_t lo = std::max(begin, j.begin), hi = std::min(end, j.end);
      if (lo >= hi) continue;
      const float* g = j.grad + (lo - j.begin);
      const int64_t len = hi - lo;
      switch (kind) {
        case Kind::kAdagrad:
          adagrad_loop(p + lo, s1 + lo, g, len, j.a, eps, wd);
          break;
        case Kind::kAdam:
          adam_loop(p + lo, s1 + lo, s2 + lo, g, len, j.a, j.b, eps, b1, one_minus_b1, b2,
                    one_minus_b2, wd);
          break;
        case Kind::kSgd:
          sgd_loop(p + lo, g, len, j.a, wd);
          break;
      }
    }
  });
}

void FusedOptimizer::step_generic(double lr) {
  // torch::optim's own sequence of operations, on this optimizer's flat views
  // (any device or dtype; used on CUDA).
  using Kind = FusedOptimizerOptions::Kind;
  const auto& o = options_;
  for (auto& s : segments_) {
    auto& p = s.param;
    torch::Tensor grad = p.grad();
    if (!grad.defined()) continue;
    ++s.steps;
    const double t = static_cast<double>(s.steps);
    if (o.weight_decay != 0) grad = grad.add(p, o.weight_decay);
    switch (o.kind) {
      case Kind::kAdagrad: {
        auto sum = s.in(state1_);  // the CPU loop's layout
        const double clr = lr / (1 + (t - 1) * o.lr_decay);
        sum.addcmul_(grad, grad, 1.0);
        p.addcdiv_(grad, sum.sqrt().add_(o.eps), -clr);
        break;
      }
      case Kind::kAdam: {
        auto m = s.in(state1_);
        auto v = s.in(state2_);
        const double bc1 = 1 - std::pow(o.beta1, t);
        const double bc2 = 1 - std::pow(o.beta2, t);
        m.mul_(o.beta1).add_(grad, 1 - o.beta1);
        v.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
        p.addcdiv_(m, (v.sqrt() / std::sqrt(bc2)).add_(o.eps), -(lr / bc1));
        break;
      }
      case Kind::kSgd:
        p.add_(grad, -lr);
        break;
    }
  }
}

void FusedOptimizer::save(torch::serialize::OutputArchive& archive) const {
  std::vector<int64_t> steps, sizes;
  for (const auto& s : segments_) {
    steps.push_back(s.steps);
    sizes.push_back(s.numel);
  }
  archive.write("fused_optimizer/kind", torch::tensor(static_cast<int64_t>(options_.kind)));
  archive.write("fused_optimizer/lr",
                torch::tensor(param_groups_.front().options().get_lr(), torch::kDouble));
  archive.write("fused_optimizer/steps", torch::tensor(steps));
  archive.write("fused_optimizer/sizes", torch::tensor(sizes));
  if (state1_.defined()) archive.write("fused_optimizer/state1", canonical(state1_).cpu());
  if (state2_.defined()) archive.write("fused_optimizer/state2", canonical(state2_).cpu());
}

// The file keeps each parameter's state in the parameter's logical
// (row-major) order, whatever its memory layout: files written before
// parameters kept their own layouts hold exactly that, and a file does not
// depend on how a model stores its weights.
torch::Tensor FusedOptimizer::canonical(const torch::Tensor& flat) const {
  torch::Tensor out = torch::zeros_like(flat);
  for (const auto& s : segments_) {
    out.narrow(0, s.offset, s.numel).view(s.sizes).copy_(s.in(flat));
  }
  return out;
}

void FusedOptimizer::from_canonical(torch::Tensor& flat, const torch::Tensor& saved) const {
  TORCH_CHECK(saved.numel() == flat.numel(), "fused optimizer: the saved state has ", saved.numel(),
              " entries, this optimizer ", flat.numel());
  const torch::Tensor src = saved.to(flat.device(), flat.scalar_type()).contiguous();
  for (const auto& s : segments_) {
    s.in(flat).copy_(src.narrow(0, s.offset, s.numel).view(s.sizes));
  }
}

void FusedOptimizer::load(torch::serialize::InputArchive& archive) {
  torch::Tensor kind, lr, steps, sizes;
  archive.read("fused_optimizer/kind", kind);
  archive.read("fused_optimizer/lr", lr);
  archive.read("fused_optimizer/steps", steps);
  archive.read("fused_optimizer/sizes", sizes);
  if (kind.item<int64_t>() != static_cast<int64_t>(options_.kind)) {
    throw std::runtime_error("fused optimizer: the saved state is of another optimizer kind");
  }
  if (sizes.numel() != static_cast<int64_t>(segments_.size())) {
    throw std::runtime_error("fused optimizer: the saved state has " +
                             std::to_string(sizes.numel()) + " parameters, this model " +
                             std::to_string(segments_.size()));
  }
  auto sz = sizes.accessor<int64_t, 1>();
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (sz[static_cast<int64_t>(i)] != segments_[i].numel) {
      throw std::runtime_error("fused optimizer: saved parameter " + std::to_string(i) +
                               " has another size than this model's");
    }
  }
  torch::NoGradGuard no_grad;
  if (state1_.defined()) {
    torch::Tensor t;
    archive.read("fused_optimizer/state1", t);
    from_canonical(state1_, t);
  }
  if (state2_.defined()) {
    torch::Tensor t;
    archive.read("fused_optimizer/state2", t);
    from_canonical(state2_, t);
  }
  auto st = steps.accessor<int64_t, 1>();
  for (size_t i = 0; i < segments_.size(); ++i) segments_[i].steps = st[static_cast<int64_t>(i)];
  param_groups_.front().options().set_lr(lr.item<double>());
}

}  // namespace vaerepro
