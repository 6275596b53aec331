// The optimal cut of one (image, class) on the CPU, without sorting it: one streaming pass for its sums and
// the pruning test, then the search its metric needs, then its mask.
//
// Dice with s = 0 and IoU select {p > t*} (scores.h), found by Dinkelbach's iteration: exact count-and-sum
// steps over the band of pixels that can still change the mask (threshold_search.h). Dice with s > 0 uses a
// histogram: exact scores at bin boundaries, an upper bound inside each bin, and an exact sort of only the
// bins that could beat the best boundary (histogram_search.h).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "../core.h"
#include "../scores.h"
#include "../search.h"
#include "histogram_search.h"
#include "parallel.h"
#include "pixels.h"
#include "scratch.h"
#include "solve_trace.h"
#include "streaming.h"
#include "threshold_search.h"

namespace rankseg::cpu {

// Writes mask[i] = p[i] >= threshold for the whole class.
template <class S>
void write_class_mask(const Pixels<S>& px, double threshold, bool parallel, int threads, bool* mask) {
  for_each_chunk(px.chunks(), parallel, threads, [&](int64_t j) {
    const Pixels<S> c = px.chunk(j);
    write_mask(c.data, c.stride, c.count, threshold, mask + j * kChunkPixels);
  });
}

// Solves one (image, class), and writes its mask when `mask` is given. With `parallel` the chunk loops are
// shared by the team of threads (for few, large classes); otherwise the caller runs one class per thread.
// `kept`: whether the pruning rule keeps the class (argmax pruning), or -1 to test max > pruning_prob.
template <class S>
ClassCut solve_class(const Pixels<S>& px, const RmaOptions& options, Scratch<value_t<S>>& ws, bool parallel, bool* mask,
                     int kept = -1) {
  const int64_t chunks = px.chunks();
  const int threads = options.num_threads;
  const bool threshold_form = VolumeScore{options.metric, 0.0, options.smooth}.threshold_form();

  std::vector<Moments> moments(static_cast<size_t>(chunks));
  for_each_chunk(chunks, parallel, threads, [&](int64_t j) {
    const Pixels<S> c = px.chunk(j);
    moments[size_t(j)] = scan_moments(c.data, c.stride, c.count);
  });
  Moments m;
  for (const auto& part : moments) m.merge(part);

  ClassCut cut;
  cut.mu = m.sum.value();
  cut.max = m.max;
  cut.invalid = m.invalid;
  cut.active = !m.invalid && (kept < 0 ? m.max > options.pruning_prob : kept == 1);
  if (cut.invalid) return cut;
  if (!cut.active) {
    if (mask) write_class_mask(px, cut.threshold, parallel, threads, mask);
    return cut;
  }

  SolveTrace* trace = options.trace;
  count_branch(trace, parallel ? &SolveTrace::chunk_parallel : &SolveTrace::per_class);
  const VolumeScore score{options.metric, cut.mu, options.smooth};
  Best best{score.empty()};
  if (threshold_form) {
    ThresholdSearch<value_t<S>> search(score, m.above_half, m.above_half_sum);
    const bool banded = !solve_by_threshold(px, parallel, threads, ws, search, m, trace).sizes.empty();
    count_branch(trace, banded ? &SolveTrace::threshold_band : &SolveTrace::threshold_full);
    best = search.best;
  } else if (!solve_smoothed_on_band(px, m, score, parallel, threads, ws, best, trace)) {
    count_branch(trace, &SolveTrace::histogram);
    solve_by_histogram(px, score, parallel, threads, ws, best);
  }
  cut.volume = best.volume;
  cut.threshold = best.volume > 0 ? best.threshold : std::numeric_limits<double>::infinity();
  if (mask) write_class_mask(px, cut.threshold, parallel, threads, mask);  // read again while still cached
  return cut;
}

}  // namespace rankseg::cpu
