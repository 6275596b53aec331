// A histogram of probabilities on a fixed grid of [0, 1]: count and sum per bin.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../exact_sum.h"
#include "pixels.h"

namespace rankseg::cpu {

// A power of two, so v * kHistogramBins is exact and bin k holds exactly the values in [k, k + 1) / kHistogramBins.
constexpr int kHistogramBins = 4096;

// Values must already be known to lie in [0, 1].
template <class V>
inline int bin_of(V v) {
  const int k = int(v * V(kHistogramBins));
  return k < kHistogramBins - 1 ? k : kHistogramBins - 1;
}

// Empty until cleared, so scratch space costs nothing for the metrics that never build one.
struct Histogram {
  std::vector<int64_t> count;
  std::vector<ExactSum> sum;

  void clear() {
    count.assign(kHistogramBins, 0);
    sum.assign(kHistogramBins, ExactSum{});
  }
  void add(const Histogram& other) {
    for (int k = 0; k < kHistogramBins; ++k) {
      count[k] += other.count[k];
      sum[k].add(other.sum[k]);
    }
  }
  template <class V>
  void insert(V v) {
    const int k = bin_of(v);
    count[k] += 1;
    sum[k].add(fixed_point(double(v)));
  }
};

template <class S>
void accumulate_histogram(const Pixels<S>& px, Histogram& h) {
  for (int64_t i = 0; i < px.count; ++i) h.insert(px[i]);
}

// Visits the non-empty bins from the highest down, with the volume and sum of everything above each (starting
// from pixels above the histogram's range, when there are such).
template <class F>
void for_each_bin_desc(const Histogram& h, int64_t above, ExactSum above_sum, F&& visit) {
  for (int k = kHistogramBins - 1; k >= 0; --k) {
    if (h.count[k] == 0) continue;
    visit(k, above, above_sum);
    above += h.count[k];
    above_sum.add(h.sum[k]);
  }
}

}  // namespace rankseg::cpu
