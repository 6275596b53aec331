// Dice with s > 0 on the CPU: a histogram of the class (or of the band of a threshold search, where that
// suffices) gives exact scores at bin boundaries and an upper bound inside each bin; only the bins that could
// beat the best boundary are sorted exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "../exact_sum.h"
#include "../scores.h"
#include "../search.h"
#include "histogram.h"
#include "lanes.h"
#include "parallel.h"
#include "pixels.h"
#include "scratch.h"
#include "solve_trace.h"
#include "streaming.h"
#include "threshold_search.h"

namespace rankseg::cpu {

// When a histogram holds only part of a class: the pixels above its range, which every candidate mask holds
// (how many, their sum), and the smallest value it holds, below which no candidate mask reaches.
struct Held {
  int64_t count = 0;
  ExactSum sum;
  double lowest = 0.0;
};

// Scores every bin boundary exactly (all pixels of a higher bin outrank every pixel of a lower one), then
// marks the bins whose interior could still beat the best of them. Returns how many pixels were marked.
inline int64_t score_boundaries(const Histogram& h, const VolumeScore& score, Best& best,
                                std::vector<uint8_t>& candidate, const Held& held = {}) {
  for_each_bin_desc(h, held.count, held.sum, [&](int k, int64_t above, const ExactSum& above_sum) {
    const int64_t volume = above + h.count[k];
    best.offer(score(above_sum.plus(h.sum[k]).value(), double(volume)), volume,
               std::max(double(k) / kHistogramBins, held.lowest));
  });

  // Inside bin k the j-th pixel adds at most hi, so S <= above_sum + j * hi. Along that ray the score falls
  // then rises (Dice s > 0; monotone in the threshold forms), so its maximum over j is at j = 1 or j = n.
  // The slack only admits extra bins: it guards against rounding, never drops a needed one.
  const double floor = best.score - 1e-12 * std::abs(best.score);
  int64_t marked = 0;
  candidate.assign(kHistogramBins, 0);
  for_each_bin_desc(h, held.count, held.sum, [&](int k, int64_t above, const ExactSum& above_sum) {
    const int64_t n = h.count[k];
    if (n < 2) return;  // a single pixel has no interior cut
    const double hi = double(k + 1) / kHistogramBins;
    const double s = above_sum.value();
    const double bound = std::max(score(s + hi, double(above + 1)), score(s + double(n) * hi, double(above + n)));
    if (bound >= floor) {
      candidate[k] = 1;
      marked += n;
    }
  });
  return marked;
}

// Exact scores at every cut inside the marked bins. `values` holds exactly the marked bins' pixels. Only cuts
// between distinct values are scored: a cut never splits equal probabilities, since within a run of equal
// values the score is monotone or falls then rises, so its best is at an end of the run.
template <class V>
void refine_candidates(std::vector<V>& values, const Histogram& h, const std::vector<uint8_t>& candidate,
                       const VolumeScore& score, Best& best, const Held& held = {}) {
  std::sort(values.begin(), values.end(), std::greater<V>());
  size_t pos = 0;
  for_each_bin_desc(h, held.count, held.sum, [&](int k, int64_t above, const ExactSum& above_sum) {
    if (!candidate[k]) return;
    const int64_t n = h.count[k];
    ExactSum selected = above_sum;
    for (int64_t j = 0; j + 1 < n; ++j) {  // j = n - 1 is the bin boundary, already scored
      const V v = values[pos + j];
      selected.add(fixed_point(double(v)));
      if (values[pos + j + 1] == v) continue;
      best.offer(score(selected.value(), double(above + j + 1)), above + j + 1, double(v));
    }
    pos += size_t(n);
  });
}

template <class S>
void solve_by_histogram(const Pixels<S>& px, const VolumeScore& score, bool parallel, int threads,
                        Scratch<value_t<S>>& ws, Best& best) {
  using V = value_t<S>;
  const int64_t chunks = px.chunks();
  // Per-chunk histograms, merged in chunk order. One class per thread reuses a single partial histogram.
  std::vector<Histogram> parts(parallel ? static_cast<size_t>(chunks) : 0);
  ws.total.clear();
  if (parallel) {
    for_each_chunk(chunks, true, threads, [&](int64_t j) {
      parts[size_t(j)].clear();
      accumulate_histogram(px.chunk(j), parts[size_t(j)]);
    });
    for (const auto& part : parts) ws.total.add(part);
  } else {
    for (int64_t j = 0; j < chunks; ++j) {
      ws.part.clear();
      accumulate_histogram(px.chunk(j), ws.part);
      ws.total.add(ws.part);
    }
  }

  const int64_t marked = score_boundaries(ws.total, score, best, ws.candidate);
  if (marked == 0) return;
  ws.values.resize(size_t(marked));
  const uint8_t* candidate = ws.candidate.data();
  auto gather = [&](const Pixels<S>& c, V* out) {
    for (int64_t i = 0; i < c.count; ++i) {
      const V v = c[i];
      if (candidate[bin_of(v)]) *out++ = v;
    }
  };
  if (parallel) {  // each chunk writes where its marked pixels start
    std::vector<int64_t> offset(static_cast<size_t>(chunks) + 1, 0);
    for (int64_t j = 0; j < chunks; ++j) {
      int64_t c = 0;
      for (int k = 0; k < kHistogramBins; ++k) c += candidate[k] ? parts[size_t(j)].count[k] : 0;
      offset[size_t(j) + 1] = offset[size_t(j)] + c;
    }
    for_each_chunk(chunks, true, threads,
                   [&](int64_t j) { gather(px.chunk(j), ws.values.data() + offset[size_t(j)]); });
  } else {
    gather(px, ws.values.data());
  }
  refine_candidates(ws.values, ws.total, ws.candidate, score, best);
}

// Dice with s > 0, read from the band of a threshold search. Adding a pixel p to a mask (S, V) changes the
// score by 2(pA - S)/(A(A + 1)) - s/(A(A - 1)), A = mu + V + 1 + s (scores.h). When mu > s that is positive
// for every p > 1/2 (as 2S <= mu + V), so the optimal mask holds them all. And once the next pixel is at or
// below S/A, it and every pixel after it lower the score; S/A is largest, R*, on the mask {p > R*} that the
// threshold search of the ratio 2S/(mu + s + V + 1) finds. So only the band values in (R*, 1/2] are
// histogrammed and refined. Returns false where this does not apply; `best` is then untouched.
template <class S>
bool solve_smoothed_on_band(const Pixels<S>& px, const Moments& m, const VolumeScore& score, bool parallel, int threads,
                            Scratch<value_t<S>>& ws, Best& best, SolveTrace* trace) {
  using V = value_t<S>;
  // s is kept far above the rounding of R*, so no pixel just past R* can gain by rounding alone.
  if (!(score.mu > score.smooth && score.smooth > 1e-9 * (score.mu + double(px.count)))) return false;
  ThresholdSearch<V> ratio({score.metric, score.mu + score.smooth, 0.0}, m.above_half, m.above_half_sum);
  const Band<V> band = solve_by_threshold(px, parallel, threads, ws, ratio, m, trace);
  if (band.sizes.empty()) return false;
  count_branch(trace, &SolveTrace::smoothed_band);

  const V cut = V(ratio.best.threshold);  // the band values that may join: v >= cut
  const Held held{m.above_half, m.above_half_sum, double(cut)};
  if (held.count > 0)
    best.offer(score(held.sum.value(), double(held.count)), held.count, double(smallest_above<V>(0.5)));
  // The band values that may join (v >= cut), packed in pixel order, then histogrammed.
  int64_t size = 0;
  for (const int64_t n : band.sizes) size += n;
  ws.values.resize(size_t(size + kLanes));
  int64_t kept = 0;
  for (size_t j = 0; j < band.sizes.size(); ++j) {
    kept += gather_band(band.values + int64_t(j) * band.segment, 1, band.sizes[j], cut, V(0.5), ws.values.data() + kept,
                        size - kept);
  }
  ws.total.clear();
  for (int64_t i = 0; i < kept; ++i) ws.total.insert(ws.values[size_t(i)]);
  if (score_boundaries(ws.total, score, best, ws.candidate, held) == 0) return true;
  int64_t marked = 0;  // in place and branch-free: the values in bins that may still win
  for (int64_t i = 0; i < kept; ++i) {
    const V v = ws.values[size_t(i)];
    ws.values[size_t(marked)] = v;
    marked += ws.candidate[bin_of(v)] != 0;
  }
  ws.values.resize(size_t(marked));
  refine_candidates(ws.values, ws.total, ws.candidate, score, best, held);
  return true;
}

}  // namespace rankseg::cpu
