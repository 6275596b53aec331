// Streaming passes over one class, eight lanes at a time. Each entry point is cloned for AVX2 and the
// baseline (GCC/Clang target_clones); the clones run the same lane arithmetic, so they agree bit for bit.
#include "streaming.h"

#include <algorithm>
#include <cmath>

#include "lanes.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RANKSEG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RANKSEG_CLONES
#endif

namespace rankseg::cpu {

void Moments::merge(const Moments& other) {
  sum += other.sum;
  max = std::max(max, other.max);
  invalid = invalid || other.invalid;
  above_count += other.above_count;
  above_sum += other.above_sum;
}

namespace {

// Invalid values cost nothing extra: NaN poisons the sum, infinities and out-of-range values the extremes.
template <class S>
[[gnu::always_inline]] inline Moments scan_moments_impl(const S* p, int64_t stride, int64_t n, double level) {
  const Double4 zero = {};
  Double4 sum[2] = {}, above_sum[2] = {}, max[2] = {}, min[2] = {zero + 1.0, zero + 1.0};
  Mask4 above_count[2] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Eight e = load8(p + i * stride, stride);
    const Double4 half[2] = {e.lo, e.hi};
    for (int h = 0; h < 2; ++h) {
      const Double4 v = half[h];
      const Mask4 above = v > level;
      sum[h] += v;
      above_sum[h] += above ? v : zero;
      above_count[h] -= above;
      max[h] = v > max[h] ? v : max[h];
      min[h] = v < min[h] ? v : min[h];
    }
  }
  for (; i < n; ++i) {  // the tail goes to lane 0
    const double v = to_value(p[i * stride]);
    sum[0][0] += v;
    above_sum[0][0] += v > level ? v : 0.0;
    above_count[0][0] += v > level;
    max[0][0] = v > max[0][0] ? v : max[0][0];
    min[0][0] = v < min[0][0] ? v : min[0][0];
  }
  Moments m;
  double low = 1.0;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 4; ++l) {
      m.sum += sum[h][l];
      m.above_sum += above_sum[h][l];
      m.above_count += above_count[h][l];
      m.max = std::max(m.max, max[h][l]);
      low = std::min(low, min[h][l]);
    }
  }
  m.invalid = !(std::isfinite(m.sum) && low >= 0.0 && m.max <= 1.0);
  return m;
}

template <class S>
[[gnu::always_inline]] inline void count_sum_impl(const S* p, int64_t stride, int64_t n, double t, int64_t& count,
                                                  double& sum) {
  const Double4 zero = {};
  Double4 s[2] = {};
  Mask4 c[2] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Eight e = load8(p + i * stride, stride);
    const Mask4 in_lo = e.lo >= t, in_hi = e.hi >= t;
    s[0] += in_lo ? e.lo : zero;
    s[1] += in_hi ? e.hi : zero;
    c[0] -= in_lo;
    c[1] -= in_hi;
  }
  for (; i < n; ++i) {
    const double v = to_value(p[i * stride]);
    s[0][0] += v >= t ? v : 0.0;
    c[0][0] += v >= t;
  }
  count = 0;
  sum = 0.0;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 4; ++l) {
      count += c[h][l];
      sum += s[h][l];
    }
  }
}

template <class S>
[[gnu::always_inline]] inline void write_mask_impl(const S* p, int64_t stride, int64_t n, double t, bool* out) {
  const value_t<S> threshold = value_t<S>(t);  // exact: thresholds are values of the input's type
  if (stride == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = to_value(p[i]) >= threshold;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = to_value(p[i * stride]) >= threshold;
  }
}

}  // namespace

#define RANKSEG_STREAMING(S)                                                                             \
  RANKSEG_CLONES Moments scan_moments(const S* p, int64_t stride, int64_t n, double level) {             \
    return scan_moments_impl(p, stride, n, level);                                                       \
  }                                                                                                      \
  RANKSEG_CLONES void count_sum_from(const S* p, int64_t stride, int64_t n, double t, int64_t& count,    \
                                     double& sum) {                                                      \
    count_sum_impl(p, stride, n, t, count, sum);                                                         \
  }                                                                                                      \
  RANKSEG_CLONES void write_mask(const S* p, int64_t stride, int64_t n, double t, bool* out) {           \
    write_mask_impl(p, stride, n, t, out);                                                               \
  }

RANKSEG_STREAMING(float)
RANKSEG_STREAMING(double)
RANKSEG_STREAMING(Half)
RANKSEG_STREAMING(BFloat16)

}  // namespace rankseg::cpu
