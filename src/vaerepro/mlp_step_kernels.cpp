#include "vaerepro/mlp_step_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#if defined(__x86_64__) || defined(_M_X64)
#define VAEREPRO_KERNELS_X86 1
#include <immintrin.h>
#endif

namespace vaerepro::kernels {

namespace {

// ------------------------------------------------------------ scalar forms

inline float act_scalar(float y, Unit u) {
  switch (u) {
    case Unit::kTanh:
      return std::tanh(y);
    case Unit::kRelu:
      return y <= 0.0f ? 0.0f : y;  // NaN stays NaN
    case Unit::kSigmoid:
      return 1.0f / (1.0f + std::exp(-y));
  }
  return y;
}

// x l - softplus(l), writing (sigmoid(l) - x) scale into g.
inline float head_scalar(float l, float x, float* g, float scale) {
  const float e = std::exp(-std::fabs(l));
  const float sig = (l >= 0.0f ? 1.0f : e) / (1.0f + e);
  *g = (sig - x) * scale;
  return x * l - (std::max(l, 0.0f) + std::log1p(e));
}

#ifdef VAEREPRO_KERNELS_X86

// exp(x), Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, degree-5 polynomial.
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  // Clamped with x second: min/max return their second operand for NaN, so
  // NaN stays NaN (the trainer's non-finite checks depend on it).
  x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), x);
  x = _mm256_max_ps(_mm256_set1_ps(-88.3762626647949f), x);
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, z, x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  __m256i n = _mm256_cvttps_epi32(fx);
  n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

// log(x) for normal x > 0, Cephes logf: x = m 2^e, m in [sqrt(1/2), sqrt(2)).
__attribute__((target("avx2,fma"))) inline __m256 log256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256i bits = _mm256_castps_si256(x);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
  bits = _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff));
  x = _mm256_or_ps(_mm256_castsi256_ps(bits), _mm256_set1_ps(0.5f));  // [0.5, 1)
  const __m256 small = _mm256_cmp_ps(x, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  const __m256 tmp = _mm256_and_ps(x, small);
  x = _mm256_sub_ps(x, one);
  e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
  x = _mm256_add_ps(x, tmp);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, x), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  x = _mm256_add_ps(x, y);
  return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), x);
}

// log1p(e) for e in [0, 1]: log(u) e / (u - 1) with u = 1 + e (exact when u
// rounds to 1: then e itself), which keeps the relative accuracy for small e.
__attribute__((target("avx2,fma"))) inline __m256 log1p256_unit(__m256 e) {
  const __m256 u = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
  const __m256 d = _mm256_sub_ps(u, _mm256_set1_ps(1.0f));
  const __m256 is_one = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ);
  const __m256 safe_d = _mm256_blendv_ps(d, _mm256_set1_ps(1.0f), is_one);
  const __m256 r = _mm256_div_ps(_mm256_mul_ps(log256(u), e), safe_d);
  return _mm256_blendv_ps(r, e, is_one);
}

__attribute__((target("avx2,fma"))) int64_t bias_activation_avx2(float* h, const float* b, int64_t cols,
                                                                   Unit u) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  int64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 y = _mm256_add_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(b + j));
    __m256 out;
    switch (u) {
      case Unit::kTanh: {  // sign(y) (1 - e) / (1 + e), e = exp(-2|y|)
        const __m256 a = _mm256_andnot_ps(sign_mask, y);
        const __m256 e = exp256(_mm256_mul_ps(_mm256_set1_ps(-2.0f), a));
        const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        out = _mm256_or_ps(t, _mm256_and_ps(y, sign_mask));
        break;
      }
      case Unit::kRelu:  // y second: NaN stays NaN, as torch's relu
        out = _mm256_max_ps(zero, y);
        break;
      case Unit::kSigmoid:
      default:
        out = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, y))));
        break;
    }
    _mm256_storeu_ps(h + j, out);
  }
  return j;
}

__attribute__((target("avx2,fma"))) double bernoulli_head_avx2(const float* raw, const float* b,
                                                                 const float* x, float* g, int64_t n,
                                                                 float scale, int64_t* done) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps(), s = _mm256_set1_ps(scale);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 li = _mm256_add_ps(_mm256_loadu_ps(raw + i), _mm256_loadu_ps(b + i));
    const __m256 xi = _mm256_loadu_ps(x + i);
    const __m256 e = exp256(_mm256_or_ps(li, sign_mask));  // exp(-|l|)
    const __m256 pos = _mm256_cmp_ps(li, zero, _CMP_GE_OQ);
    const __m256 num = _mm256_blendv_ps(e, one, pos);
    const __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_sub_ps(sig, xi), s));
    const __m256 softplus = _mm256_add_ps(_mm256_max_ps(li, zero), log1p256_unit(e));
    acc = _mm256_add_ps(acc, _mm256_fmsub_ps(xi, li, softplus));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  double sum = 0;
  for (float v : lanes) sum += v;
  *done = i;
  return sum;
}

bool detect() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

#endif

const bool kVectorised =
#ifdef VAEREPRO_KERNELS_X86
    detect();
#else
    false;
#endif

constexpr int64_t kGrain = 16384;  // elements per parallel chunk

}  // namespace

bool vectorised() { return kVectorised; }

void bias_activation(float* h, const float* bias, int64_t rows, int64_t cols, Unit unit) {
  const int64_t grain_rows = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  at::parallel_for(0, rows, grain_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = h + r * cols;
      int64_t j = 0;
#ifdef VAEREPRO_KERNELS_X86
      if (kVectorised) j = bias_activation_avx2(row, bias, cols, unit);
#endif
      for (; j < cols; ++j) row[j] = act_scalar(row[j] + bias[j], unit);
    }
  });
}

double bernoulli_head(const float* raw, const float* bias, const float* x, float* grad, int64_t rows,
                      int64_t cols, float scale) {
  const int64_t grain_rows = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  const int64_t chunks = (rows + grain_rows - 1) / grain_rows;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sum = 0;
      for (int64_t r = c * grain_rows, r1 = std::min(rows, r + grain_rows); r < r1; ++r) {
        const int64_t o = r * cols;
        int64_t j = 0;
#ifdef VAEREPRO_KERNELS_X86
        if (kVectorised) sum += bernoulli_head_avx2(raw + o, bias, x + o, grad + o, cols, scale, &j);
#endif
        for (; j < cols; ++j) sum += head_scalar(raw[o + j] + bias[j], x[o + j], grad + o + j, scale);
      }
      partial[static_cast<size_t>(c)] = sum;
    }
  });
  double total = 0;
  for (double p : partial) total += p;  // fixed order: the same sum for any thread count
  return total;
}

}  // namespace vaerepro::kernels
