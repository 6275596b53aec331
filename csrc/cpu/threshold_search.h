// Dinkelbach's threshold search (search.h) over one class on the CPU: the band of the class is gathered once
// (band.h), then each step reads the band instead of every pixel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "../search.h"
#include "band.h"
#include "lanes.h"
#include "parallel.h"
#include "pixels.h"
#include "scratch.h"
#include "solve_trace.h"
#include "streaming.h"

namespace rankseg::cpu {

// The band-capacity rule: a chunk's band holds at most half the bytes of the pixels it comes from, so the band
// never costs more than half the input. The GPU applies the same rule to take the CPU's route (cuda/class_cut.cu).
template <class S>
int64_t band_capacity(int64_t pixels) {
  return pixels * int64_t(sizeof(S)) / (2 * int64_t(sizeof(value_t<S>)));
}

// The band a threshold search copied: chunk j's values start at values + j * segment. No sizes when the band
// was too large to copy and the search read every pixel instead.
template <class V>
struct Band {
  const V* values = nullptr;
  int64_t segment = 0;
  std::vector<int64_t> sizes;
};

// Dinkelbach's iteration (search.h), from {p > 1/2}, which every optimal mask contains: so each step only
// looks at the band between its first threshold and 1/2, gathered once and read from then on. A band too
// large to copy is searched by passes over every pixel instead, with the same steps and outcome.
template <class S>
Band<value_t<S>> solve_by_threshold(const Pixels<S>& px, bool parallel, int threads, Scratch<value_t<S>>& ws,
                                    ThresholdSearch<value_t<S>>& search, const Moments& m, SolveTrace* trace) {
  using V = value_t<S>;
  const int64_t chunks = px.chunks();
  const int64_t segment = band_capacity<S>(kChunkPixels) + kLanes;
  V* band = ws.band(chunks * segment);
  std::vector<int64_t> band_size(static_cast<size_t>(chunks), -1);
  const V lo = search.threshold();
  if (band) {
    for_each_chunk(chunks, parallel, threads, [&](int64_t j) {
      const Pixels<S> c = px.chunk(j);
      band_size[size_t(j)] =
          gather_band(c.data, c.stride, c.count, lo, V(0.5), band + j * segment, band_capacity<S>(c.count));
    });
  }
  const bool banded = std::all_of(band_size.begin(), band_size.end(), [](int64_t n) { return n >= 0; });

  std::vector<UpperSet> parts(static_cast<size_t>(chunks));
  auto upper_set_at = [&](V t) {
    for_each_chunk(chunks, parallel, threads, [&](int64_t j) {
      const Pixels<S> c = px.chunk(j);
      parts[size_t(j)] = banded ? upper_set(band + j * segment, 1, band_size[size_t(j)], double(t))
                                : upper_set(c.data, c.stride, c.count, double(t));
    });
    UpperSet u;
    for (const auto& part : parts) u.merge(part);
    if (banded) {  // the pixels above 1/2 are selected at every step
      u.count += m.above_half;
      u.sum.add(m.above_half_sum);
    }
    return u;
  };
  while (search.take(upper_set_at(search.threshold()))) {
  }
  record_steps(trace, search.steps);
  return banded ? Band<V>{band, segment, std::move(band_size)} : Band<V>{};
}

}  // namespace rankseg::cpu
