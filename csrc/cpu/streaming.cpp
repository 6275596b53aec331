// Streaming passes over one class, eight lanes at a time (lanes.h). Each entry point is cloned for
// x86-64-v3 (AVX2) and the baseline (GCC target_clones: RANKSEG_CLONES, config.h); the clones run the same
// lane arithmetic (built without floating-point contraction, see CMakeLists.txt), so they agree bit for bit.
#include "streaming.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../config.h"
#include "lanes.h"

namespace rankseg::cpu {

void Moments::merge(const Moments& other) {
  sum.add(other.sum);
  max = std::max(max, other.max);
  invalid = invalid || other.invalid;
  above_half += other.above_half;
  above_half_sum.add(other.above_half_sum);
}

namespace {

// Lane reductions.
int64_t total(Mask8 m) {
  int64_t s = 0;
  for (int l = 0; l < kLanes; ++l) s += m[l];
  return s;
}
int64_t total(const EightMask& m) {
  int64_t s = 0;
  for (int l = 0; l < 4; ++l) s += m.lo[l] + m.hi[l];
  return s;
}
double smallest(Float8 v) {
  float s = v[0];
  for (int l = 1; l < kLanes; ++l) s = std::min(s, v[l]);
  return s;
}
double smallest(const Eight& e) {
  double s = e.lo[0];
  for (int l = 1; l < 4; ++l) s = std::min(s, e.lo[l]);
  for (int l = 0; l < 4; ++l) s = std::min(s, e.hi[l]);
  return s;
}
uint64_t largest(Bits8 b) {
  uint32_t s = 0;
  for (int l = 0; l < kLanes; ++l) s = std::max(s, b[l]);
  return s;
}
uint64_t largest(const EightBits& b) {
  uint64_t s = 0;
  for (int l = 0; l < 4; ++l) s = std::max(s, std::max(b.lo[l], b.hi[l]));
  return s;
}

// The last n < 8 pixels, the other lanes set to `fill`: a value the pass ignores.
template <class S>
[[gnu::always_inline]] inline typename LaneTypes<S>::Values load_tail(const S* p, int64_t stride, int64_t n,
                                                                      value_t<S> fill) {
  typename LaneTypes<S>::Values v = splat(typename LaneTypes<S>::Values{}, fill);
  for (int64_t i = 0; i < n; ++i) set_lane(v, int(i), to_value(p[i * stride]));
  return v;
}

// Calls step(values, k) for every block of eight pixels, the tail last. Blocks alternate between two sets
// of accumulators (k = 0, 1) where that matters, so consecutive additions do not wait for each other.
template <class S, class Step>
[[gnu::always_inline]] inline void for_each_block_strided(const S* p, int64_t stride, int64_t n, value_t<S> fill,
                                                          Step& step) {
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    step(load8(p + i * stride, stride), 0);
    step(load8(p + (i + kLanes) * stride, stride), 1);
  }
  int k = 0;
  if (i + kLanes <= n) {
    step(load8(p + i * stride, stride), 0);
    i += kLanes;
    k = 1;
  }
  if (i < n) step(load_tail(p + i * stride, stride, n - i, fill), k);
}

// The contiguous case gets its own copy of the loop, with plain vector loads.
template <class S, class Step>
[[gnu::always_inline]] inline void for_each_block(const S* p, int64_t stride, int64_t n, value_t<S> fill, Step&& step) {
  if (stride == 1) {
    for_each_block_strided(p, int64_t(1), n, fill, step);
  } else {
    for_each_block_strided(p, stride, n, fill, step);
  }
}

// Exact validity and maximum, for the rare class whose bit patterns did not prove every value in [0, 1]
// (a -0.0 is valid but has the sign bit set).
template <class S>
void rescan_extremes(const S* p, int64_t stride, int64_t n, Moments& m) {
  m.max = 0.0;
  m.invalid = false;
  for (int64_t i = 0; i < n; ++i) {
    const double v = to_value(p[i * stride]);
    m.invalid = m.invalid || !(v >= 0.0 && v <= 1.0);
    m.max = std::max(m.max, v);
  }
}

// The sum of the values above 1/2. A float in (1/2, 1] is a whole number of 2^-24 steps, at most 2^24 of
// them, and its q (exact_sum.h) is that number times 2^19: 64 per lane fit in 32 bits before moving to 64
// bits, fewer instructions than widening to double.
struct AboveHalfFloat {
  Bits8 run{};
  int run_length = 0;
  Bits4 total[2] = {};

  [[gnu::always_inline]] void add(Mask8 in, Float8 v, int) {
    // Invalid values above 1 are capped first so the conversion stays in range; only lanes in (1/2, 1] count.
    const Float8 capped = v < 1.0f ? v : Float8{} + 1.0f;
    const Mask8 steps = __builtin_convertvector(capped * 0x1p24f, Mask8);
    run += Bits8(in & steps);
    if (++run_length == 64) flush();
  }
  [[gnu::always_inline]] void flush() {
    total[0] += Bits4{run[0], run[1], run[2], run[3]};
    total[1] += Bits4{run[4], run[5], run[6], run[7]};
    run = Bits8{};
    run_length = 0;
  }
  ExactSum value() {
    flush();
    uint64_t steps = 0;
    for (int l = 0; l < 4; ++l) steps += total[0][l] + total[1][l];
    return ExactSum{steps << (kFixedBits - 24), 0};
  }
};

// float64 values take the general route.
struct AboveHalfDouble {
  FixedEight sum;

  [[gnu::always_inline]] void add(const EightMask& in, const Eight& v, int) { sum.add(pick(in, v, Eight{})); }
  ExactSum value() const { return ExactSum{sum.total(), 0}; }
};

// One pass: the sum, the pixels above 1/2, and the largest bit pattern. For non-negative IEEE values the
// bit patterns order like the values, and anything negative, NaN or above 1 has a larger pattern than 1.
template <class S>
[[gnu::always_inline]] inline Moments scan_moments_impl(const S* p, int64_t stride, int64_t n) {
  using Lanes = LaneTypes<S>;
  using V = value_t<S>;
  FixedEight sum;
  typename Lanes::Mask above_count{};
  typename Lanes::Bits high{};
  std::conditional_t<std::is_same_v<V, float>, AboveHalfFloat, AboveHalfDouble> above_sum;
  for_each_block(p, stride, n, V(0), [&](const typename Lanes::Values& v, int k) {  // 0 adds nothing
    high = max_bits(high, bits(v));
    sum.add(widen(v));
    const auto in = above(v, V(0.5));
    count(above_count, in);
    above_sum.add(in, v, k);
  });
  Moments m;
  m.sum = ExactSum{sum.total(), 0};
  m.above_half = total(above_count);
  m.above_half_sum = above_sum.value();
  const V one = 1;
  using Word = std::conditional_t<sizeof(V) == 4, uint32_t, uint64_t>;
  const Word top = Word(largest(high));
  if (top <= bit_cast<Word>(&one)) {
    m.max = bit_cast<V>(&top);
  } else {
    rescan_extremes(p, stride, n, m);
  }
  return m;
}

template <class S>
[[gnu::always_inline]] inline UpperSet upper_set_impl(const S* p, int64_t stride, int64_t n, double t) {
  using Lanes = LaneTypes<S>;
  using V = value_t<S>;
  const V threshold = V(t);  // exact: thresholds are values of the input's type
  const typename Lanes::Values zero{};
  const typename Lanes::Values inf = splat(zero, std::numeric_limits<V>::infinity());
  FixedEight sum;
  typename Lanes::Mask selected{};
  typename Lanes::Values low[2] = {inf, inf};
  for_each_block(p, stride, n, V(-1), [&](const typename Lanes::Values& v, int k) {  // -1 is never selected
    const auto in = at_least(v, threshold);
    count(selected, in);
    sum.add(widen(pick(in, v, zero)));
    const typename Lanes::Values candidate = pick(in, v, inf);
    low[k] = pick(below(candidate, low[k]), candidate, low[k]);
  });
  return {total(selected), ExactSum{sum.total(), 0}, std::min(smallest(low[0]), smallest(low[1]))};
}

// Valid 16-bit values order like their bit patterns once the sign of -0.0 is dropped, so the mask compares
// integers: the smallest pattern whose value reaches t is found once, by bisection.
template <class S>
uint16_t smallest_bits_at_least(double t) {
  // [0, +inf]: values rise with the patterns over this range, and +inf always reaches t.
  uint32_t lo = 0, hi = std::is_same_v<S, Half> ? 0x7c00 : 0x7f80;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (to_value(S{uint16_t(mid)}) >= t) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return uint16_t(lo);
}

template <class S>
[[gnu::always_inline]] inline void write_mask_impl(const S* p, int64_t stride, int64_t n, double t, bool* out) {
  if constexpr (sizeof(S) == 2) {
    const uint16_t threshold = smallest_bits_at_least<S>(t);
    for (int64_t i = 0; i < n; ++i) out[i] = (p[i * stride].bits & 0x7fff) >= threshold;
  } else {
    const S threshold = S(t);
    if (stride == 1) {
      for (int64_t i = 0; i < n; ++i) out[i] = p[i] >= threshold;
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = p[i * stride] >= threshold;
    }
  }
}

}  // namespace

#define RANKSEG_STREAMING(S)                                                                   \
  RANKSEG_CLONES Moments scan_moments(const S* p, int64_t stride, int64_t n) {                 \
    return scan_moments_impl(p, stride, n);                                                    \
  }                                                                                            \
  RANKSEG_CLONES UpperSet upper_set(const S* p, int64_t stride, int64_t n, double t) {         \
    return upper_set_impl(p, stride, n, t);                                                    \
  }                                                                                            \
  RANKSEG_CLONES void write_mask(const S* p, int64_t stride, int64_t n, double t, bool* out) { \
    write_mask_impl(p, stride, n, t, out);                                                     \
  }

RANKSEG_STREAMING(float)
RANKSEG_STREAMING(double)
RANKSEG_STREAMING(Half)
RANKSEG_STREAMING(BFloat16)

}  // namespace rankseg::cpu
