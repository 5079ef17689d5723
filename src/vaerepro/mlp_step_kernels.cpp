#include "vaerepro/mlp_step_kernels.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

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
  __m256 e =
      _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
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

__attribute__((target("avx2,fma"))) int64_t bias_activation_avx2(float* h, const float* b,
                                                                 int64_t cols, Unit u) {
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

// Sums of selected rows, `V` vectors of 8 columns at a time: V accumulators
// stay in registers while the rows stream past. With kMasked the last
// vector holds only the lanes set in `mask` (the columns' tail): the
// others are neither read nor written.
template <int V, bool kMasked>
__attribute__((target("avx2"))) inline void sum_rows_block(const float* src, int64_t ld,
                                                           const int32_t* idx, int64_t count,
                                                           float* out, __m256i mask) {
  __m256 acc[V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < count; ++k) {
    const float* row = src + static_cast<int64_t>(idx[k]) * ld;
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const __m256 r = kMasked && v == V - 1 ? _mm256_maskload_ps(row + 8 * v, mask)
                                             : _mm256_loadu_ps(row + 8 * v);
      acc[v] = _mm256_add_ps(acc[v], r);
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    if (kMasked && v == V - 1) {
      _mm256_maskstore_ps(out + 8 * v, mask, acc[v]);
    } else {
      _mm256_storeu_ps(out + 8 * v, acc[v]);
    }
  }
}

// The last columns of one output row: `vectors` (1-8) vectors, the last of
// them masked when `masked`.
template <bool kMasked>
__attribute__((target("avx2"))) void sum_rows_tail(const float* src, int64_t ld, const int32_t* idx,
                                                   int64_t count, float* out, int vectors,
                                                   __m256i mask) {
  switch (vectors) {
    case 1:
      sum_rows_block<1, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 2:
      sum_rows_block<2, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 3:
      sum_rows_block<3, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 4:
      sum_rows_block<4, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 5:
      sum_rows_block<5, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 6:
      sum_rows_block<6, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 7:
      sum_rows_block<7, kMasked>(src, ld, idx, count, out, mask);
      break;
    case 8:
      sum_rows_block<8, kMasked>(src, ld, idx, count, out, mask);
      break;
    default:
      break;
  }
}

// Rows [r0, r1) of sum_selected_rows, every column: blocks of 64 columns
// (the outer loop, so that one block of src, at most 256 bytes a row, is
// reused by every row), then the rest in one block whose last vector is
// masked.
__attribute__((target("avx2"))) void sum_selected_rows_avx2(const float* src, int64_t ld_src,
                                                            int64_t n, const int32_t* ptr,
                                                            const int32_t* idx, int64_t r0,
                                                            int64_t r1, float* out,
                                                            int64_t ld_out) {
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    for (int64_t r = r0; r < r1; ++r) {
      sum_rows_block<8, false>(src + c, ld_src, idx + ptr[r], ptr[r + 1] - ptr[r],
                               out + r * ld_out + c, all);
    }
  }
  const int64_t rest = n - c;  // 0..63
  if (rest == 0) return;
  const int vectors = static_cast<int>((rest + 7) / 8);
  const int lanes = static_cast<int>(rest - 8 * (vectors - 1));  // 1..8 in the last vector
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t r = r0; r < r1; ++r) {
    const int32_t* list = idx + ptr[r];
    const int64_t count = ptr[r + 1] - ptr[r];
    float* o = out + r * ld_out + c;
    if (lanes == 8) {
      sum_rows_tail<false>(src + c, ld_src, list, count, o, vectors, all);
    } else {
      sum_rows_tail<true>(src + c, ld_src, list, count, o, vectors, mask);
    }
  }
}

// Appends the columns of the 1s of row x[0, cols) to idx; false when an
// entry is neither 0 nor 1. Returns the columns done (a multiple of 8).
__attribute__((target("avx2"))) bool binary_row_avx2(const float* x, int64_t cols,
                                                     std::vector<int32_t>& idx, int64_t* done) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  int64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    const int ones = _mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ));
    const int zeros = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ));
    if ((ones | zeros) != 0xff) return false;  // NaN compares unequal to both
    for (int m = ones; m != 0; m &= m - 1)
      idx.push_back(static_cast<int32_t>(j + __builtin_ctz(m)));
  }
  *done = j;
  return true;
}

bool detect() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#endif

const bool kCpuHasAvx2Fma =
#ifdef VAEREPRO_KERNELS_X86
    detect();
#else
    false;
#endif
std::atomic<bool> g_vectorised{kCpuHasAvx2Fma};  // set_vectorised() turns it off for tests

inline bool use_avx2() {
  return g_vectorised.load(std::memory_order_relaxed);
}

constexpr int64_t kGrain = 16384;  // elements per parallel chunk

}  // namespace

bool vectorised() {
  return use_avx2();
}

bool set_vectorised(bool on) {
  return g_vectorised.exchange(on && kCpuHasAvx2Fma);
}

void bias_activation(float* h, const float* bias, int64_t rows, int64_t cols, Unit unit) {
  const int64_t grain_rows = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  at::parallel_for(0, rows, grain_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = h + r * cols;
      int64_t j = 0;
#ifdef VAEREPRO_KERNELS_X86
      if (use_avx2()) j = bias_activation_avx2(row, bias, cols, unit);
#endif
      for (; j < cols; ++j) row[j] = act_scalar(row[j] + bias[j], unit);
    }
  });
}

bool binary_pattern(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t max_nonzero,
                    Pattern& p) {
  // The pattern's offsets are int32: beyond that, the caller's dense path.
  if (rows >= std::numeric_limits<int32_t>::max() / std::max<int64_t>(1, cols)) return false;
  p.ptr.assign(1, 0);
  p.ptr.reserve(static_cast<size_t>(rows) + 1);
  p.idx.clear();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ld;
    int64_t j = 0;
#ifdef VAEREPRO_KERNELS_X86
    if (use_avx2() && !binary_row_avx2(row, cols, p.idx, &j)) return false;
#endif
    for (; j < cols; ++j) {
      if (row[j] == 1.0f) {
        p.idx.push_back(static_cast<int32_t>(j));
      } else if (row[j] != 0.0f) {
        return false;
      }
    }
    if (static_cast<int64_t>(p.idx.size()) > max_nonzero) return false;
    p.ptr.push_back(static_cast<int32_t>(p.idx.size()));
  }
  return true;
}

void transpose_pattern(const Pattern& p, int64_t cols, Pattern& t) {
  const int64_t rows = static_cast<int64_t>(p.ptr.size()) - 1;
  t.ptr.assign(static_cast<size_t>(cols) + 1, 0);
  for (int32_t j : p.idx) ++t.ptr[static_cast<size_t>(j) + 1];
  for (int64_t j = 0; j < cols; ++j) t.ptr[j + 1] += t.ptr[j];
  t.idx.resize(p.idx.size());
  std::vector<int32_t> next(t.ptr.begin(), t.ptr.end() - 1);
  for (int64_t r = 0; r < rows; ++r) {  // rows ascending: each column's list comes out sorted
    for (int32_t k = p.ptr[r]; k < p.ptr[r + 1]; ++k)
      t.idx[next[p.idx[k]]++] = static_cast<int32_t>(r);
  }
}

void sum_selected_rows(const float* src, int64_t ld_src, int64_t n, const Pattern& p, int64_t rows,
                       float* out, int64_t ld_out) {
  TORCH_CHECK(static_cast<int64_t>(p.ptr.size()) == rows + 1, "sum_selected_rows: the pattern has ",
              p.ptr.size() - 1, " rows, expected ", rows);
  const int32_t* ptr = p.ptr.data();
  const int32_t* idx = p.idx.data();
  // One part per thread, cut where the parts hold equal numbers of selected
  // rows (plus one per output row for writing it), not equal output rows:
  // the lists' lengths vary (a T-shirt lights more pixels than a sandal).
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
  const double work = static_cast<double>(ptr[rows]) + static_cast<double>(rows);
  std::vector<int64_t> cut(static_cast<size_t>(parts) + 1, rows);
  cut[0] = 0;
  for (int64_t q = 1, r = 0; q < parts; ++q) {
    const double target = work * static_cast<double>(q) / static_cast<double>(parts);
    while (r < rows && static_cast<double>(ptr[r]) + static_cast<double>(r) < target) ++r;
    cut[static_cast<size_t>(q)] = r;
  }
  at::parallel_for(0, parts, 1, [&](int64_t q0, int64_t q1) {
    const int64_t r0 = cut[static_cast<size_t>(q0)], r1 = cut[static_cast<size_t>(q1)];
#ifdef VAEREPRO_KERNELS_X86
    if (use_avx2()) {
      sum_selected_rows_avx2(src, ld_src, n, ptr, idx, r0, r1, out, ld_out);
      return;
    }
#endif
    const int64_t c = 0;
    for (int64_t r = r0; r < r1; ++r) {
      float* o = out + r * ld_out;
      for (int64_t j = c; j < n; ++j) o[j] = 0.0f;
      for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) {
        const float* row = src + static_cast<int64_t>(idx[k]) * ld_src;
        for (int64_t j = c; j < n; ++j) o[j] += row[j];
      }
    }
  });
}

double bernoulli_head(const float* raw, const float* bias, const float* x, float* grad,
                      int64_t rows, int64_t cols, float scale) {
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
        if (use_avx2()) sum += bernoulli_head_avx2(raw + o, bias, x + o, grad + o, cols, scale, &j);
#endif
        for (; j < cols; ++j)
          sum += head_scalar(raw[o + j] + bias[j], x[o + j], grad + o + j, scale);
      }
      partial[static_cast<size_t>(c)] = sum;
    }
  });
  double total = 0;
  for (double p : partial) total += p;  // fixed order: the same sum for any thread count
  return total;
}

}  // namespace vaerepro::kernels
