// Band gathering: eight pixels at a time with an AVX2 permutation where the CPU has one, one at a time
// otherwise. Both copy the same values in the same order.
#include "band.h"

#include <array>

#include "lanes.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RANKSEG_X86 1
#include <immintrin.h>
#endif

namespace rankseg::cpu {
namespace {

template <class S, class V>
int64_t gather_one_by_one(const S* p, int64_t stride, int64_t n, V lo, V hi, V* out, int64_t capacity) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    const V v = to_value(p[i * stride]);
    out[k] = v;  // written always, kept when in the band: no branch to mispredict
    k += (lo <= v) & (v <= hi);
    if (k > capacity) return -1;
  }
  return k;
}

#ifdef RANKSEG_X86
// For each 8-bit lane mask, the lanes it selects, first to last: a permutation that packs them to the front.
constexpr std::array<std::array<int32_t, 8>, 256> packing_orders() {
  std::array<std::array<int32_t, 8>, 256> orders{};
  for (int mask = 0; mask < 256; ++mask) {
    int k = 0;
    for (int l = 0; l < 8; ++l) {
      if (mask >> l & 1) orders[size_t(mask)][size_t(k++)] = l;
    }
  }
  return orders;
}
alignas(32) constexpr std::array<std::array<int32_t, 8>, 256> kPackingOrder = packing_orders();

template <class S>
__attribute__((target("avx2"), always_inline)) inline int64_t gather_avx2_strided(const S* p, int64_t stride, int64_t n,
                                                                                  float lo, float hi, float* out,
                                                                                  int64_t capacity) {
  int64_t k = 0, i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Float8 v = load8(p + i * stride, stride);
    const Mask8 in = both(at_least(v, lo), at_most(v, hi));
    const int lanes = _mm256_movemask_ps(bit_cast<__m256>(&in));
    const __m256i order = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPackingOrder[size_t(lanes)].data()));
    _mm256_storeu_ps(out + k, _mm256_permutevar8x32_ps(bit_cast<__m256>(&v), order));
    k += __builtin_popcount(unsigned(lanes));
    if (k > capacity) return -1;
  }
  const int64_t rest = gather_one_by_one(p + i * stride, stride, n - i, lo, hi, out + k, capacity - k);
  return rest < 0 ? -1 : k + rest;
}

// The contiguous case gets its own copy of the loop, with plain vector loads.
template <class S>
__attribute__((target("avx2"))) int64_t gather_avx2(const S* p, int64_t stride, int64_t n, float lo, float hi,
                                                    float* out, int64_t capacity) {
  return stride == 1 ? gather_avx2_strided(p, int64_t(1), n, lo, hi, out, capacity)
                     : gather_avx2_strided(p, stride, n, lo, hi, out, capacity);
}

bool has_avx2() {
#if defined(RANKSEG_SINGLE_ISA)  // one instruction set, chosen by -march (see config.h)
#if defined(__AVX2__)
  return true;
#else
  return false;
#endif
#else
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
#endif
}
#endif

template <class S>
int64_t gather(const S* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity) {
#ifdef RANKSEG_X86
  if (has_avx2()) return gather_avx2(p, stride, n, lo, hi, out, capacity);
#endif
  return gather_one_by_one(p, stride, n, lo, hi, out, capacity);
}

}  // namespace

int64_t gather_band(const float* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity) {
  return gather(p, stride, n, lo, hi, out, capacity);
}
int64_t gather_band(const Half* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity) {
  return gather(p, stride, n, lo, hi, out, capacity);
}
int64_t gather_band(const BFloat16* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity) {
  return gather(p, stride, n, lo, hi, out, capacity);
}
int64_t gather_band(const double* p, int64_t stride, int64_t n, double lo, double hi, double* out, int64_t capacity) {
  return gather_one_by_one(p, stride, n, lo, hi, out, capacity);
}

}  // namespace rankseg::cpu
