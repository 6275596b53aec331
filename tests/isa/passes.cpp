// Prints what every streaming pass and the band gather compute on fixed inputs, bit for bit, so that builds
// for different instruction sets can be compared (tests/test_isa.py).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/band.h"
#include "cpu/streaming.h"

using namespace rankseg;
using namespace rankseg::cpu;

namespace {

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

uint16_t half_bits(float f) {  // round to nearest, by hand: no half type is needed
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if (f < 6.103515625e-05f) return uint16_t(std::lround(f * 16777216.0f));  // subnormal halves: k * 2^-24
  const uint32_t rounded = x + 0xfff + ((x >> 13) & 1);
  return uint16_t(((rounded >> 13) - (112u << 10)) & 0x7fff);
}

template <class S, class V>
void report(const char* name, const std::vector<S>& x, int64_t n, int64_t stride) {
  const Moments m = scan_moments(x.data(), stride, n);
  const UpperSet u = upper_set(x.data(), stride, n, 0.3125);
  std::vector<V> band(size_t(n) + 8);
  const int64_t k = gather_band(x.data(), stride, n, V(0.25), V(0.5), band.data(), n);
  double mix = 0.0;
  for (int64_t i = 0; i < k; ++i) mix = mix * 1.0000001 + double(band[size_t(i)]);
  std::printf("%s n=%lld stride=%lld: %016llx %016llx %016llx %lld %d | %016llx %016llx %lld | %lld %016llx\n", name,
              (long long)n, (long long)stride, (unsigned long long)m.sum.lo, (unsigned long long)bits(m.max),
              (unsigned long long)m.above_half_sum.lo, (long long)m.above_half, int(m.invalid),
              (unsigned long long)u.sum.lo, (unsigned long long)bits(u.min), (long long)u.count, (long long)k,
              (unsigned long long)bits(mix));
}

}  // namespace

int main() {
  std::mt19937 rng(5);
  std::normal_distribution<double> normal;
  for (const int64_t n : {1, 7, 8, 15, 16, 17, 1000, 100003}) {
    std::vector<double> d(size_t(2 * n));
    for (double& v : d) v = 1.0 / (1.0 + std::exp(-2.0 * normal(rng)));
    d[0] = 0.0;
    if (n > 5) d[5] = 1e-7;  // a float16 subnormal
    if (n > 6) d[6] = 0.5;
    const std::vector<float> f(d.begin(), d.end());
    std::vector<Half> h(d.size());
    std::vector<BFloat16> b(d.size());
    for (size_t i = 0; i < d.size(); ++i) {
      h[i].bits = half_bits(f[i]);
      uint32_t x;
      std::memcpy(&x, &f[i], sizeof x);
      b[i].bits = uint16_t(x >> 16);
    }
    for (const int64_t stride : {1, 2}) {
      report<float, float>("float32", f, n, stride);
      report<double, double>("float64", d, n, stride);
      report<Half, float>("float16", h, n, stride);
      report<BFloat16, float>("bfloat16", b, n, stride);
    }
  }
}
