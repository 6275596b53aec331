// The optimal volume of one (image, class) without sorting it.
//
// Dice with s = 0 and IoU select {p > t*} (scores.h), found by Dinkelbach's iteration: exact count-and-sum
// steps over the band of pixels that can still change the mask. Dice with s > 0 uses a histogram: exact
// scores at bin boundaries, an upper bound inside each bin, and an exact sort of only the bins that could
// beat the best boundary.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../scores.h"
#include "../search.h"
#include "band.h"
#include "histogram.h"
#include "lanes.h"
#include "parallel.h"
#include "pixels.h"
#include "streaming.h"

namespace rankseg::cpu {

// The error every CPU solver raises for a class holding NaN, an infinity or a value outside [0, 1].
[[noreturn]] inline void throw_invalid_values(int64_t image, int64_t cls) {
  throw std::invalid_argument("probs must contain only finite values in [0, 1]; image " + std::to_string(image) +
                              ", class " + std::to_string(cls) + " has NaN, infinity or a value outside [0, 1]");
}

// Per-thread scratch space, reused across classes.
template <class V>
struct Scratch {
  Histogram total, part;
  std::vector<uint8_t> candidate;
  std::vector<V> values;

  // Room for n band values, grown on demand and never zero-filled: pages nobody writes cost nothing. Null
  // when the memory is not there (the search then reads every pixel instead): nothing may throw in a
  // parallel region.
  V* band(int64_t n) {
    if (n > band_room) {
      band_values.reset(new (std::nothrow) V[size_t(n)]);
      band_room = band_values ? n : 0;
    }
    return band_values.get();
  }

 private:
  std::unique_ptr<V[]> band_values;
  int64_t band_room = 0;
};

// Adds one to a counter of the solve trace, if one was asked for; callers may run in parallel.
inline void count(SolveTrace* trace, int64_t SolveTrace::*counter) {
  if (!trace) return;
  int64_t& c = trace->*counter;
#pragma omp atomic
  ++c;
}

inline void count_steps(SolveTrace* trace, int64_t steps) {
  if (!trace) return;
#pragma omp critical(rankseg_trace)
  trace->max_steps = std::max(trace->max_steps, steps);
}

// Runs body(j) for every chunk, on the whole team when `parallel`. Callers merge per-chunk results in order.
template <class F>
void for_each_chunk(int64_t chunks, bool parallel, int threads, F&& body) {
  parallel_for_static(chunks, parallel ? threads : 1, body);
}

// Writes mask[i] = p[i] >= threshold for the whole class.
template <class S>
void write_class_mask(const Pixels<S>& px, double threshold, bool parallel, int threads, bool* mask) {
  for_each_chunk(px.chunks(), parallel, threads, [&](int64_t j) {
    const Pixels<S> c = px.chunk(j);
    write_mask(c.data, c.stride, c.count, threshold, mask + j * kChunk);
  });
}

// At most half the bytes of the pixels it comes from: the band never costs more than half the input.
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

  template <class F>
  void for_each(F&& f) const {
    for (size_t j = 0; j < sizes.size(); ++j) {
      for (int64_t i = 0; i < sizes[j]; ++i) f(values[int64_t(j) * segment + i]);
    }
  }
};

// Dinkelbach's iteration (search.h), from {p > 1/2}, which every optimal mask contains: so each step only
// looks at the band between its first threshold and 1/2, gathered once and read from then on. A band too
// large to copy is searched by passes over every pixel instead, with the same steps and outcome.
template <class S>
Band<value_t<S>> solve_by_threshold(const Pixels<S>& px, bool parallel, int threads, Scratch<value_t<S>>& ws,
                                    ThresholdSearch<value_t<S>>& search, const Moments& m, SolveTrace* trace) {
  using V = value_t<S>;
  const int64_t chunks = px.chunks();
  const int64_t segment = band_capacity<S>(kChunk) + kLanes;
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
  count_steps(trace, search.steps);
  return banded ? Band<V>{band, segment, std::move(band_size)} : Band<V>{};
}

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
               std::max(double(k) / kBins, held.lowest));
  });

  // Inside bin k the j-th pixel adds at most hi, so S <= above_sum + j * hi. Along that ray the score falls
  // then rises (Dice s > 0; monotone in the threshold forms), so its maximum over j is at j = 1 or j = n.
  // The slack only admits extra bins: it guards against rounding, never drops a needed one.
  const double floor = best.score - 1e-12 * std::abs(best.score);
  int64_t marked = 0;
  candidate.assign(kBins, 0);
  for_each_bin_desc(h, held.count, held.sum, [&](int k, int64_t above, const ExactSum& above_sum) {
    const int64_t n = h.count[k];
    if (n < 2) return;  // a single pixel has no interior cut
    const double hi = double(k + 1) / kBins;
    const double s = above_sum.value();
    const double bound = std::max(score(s + hi, double(above + 1)), score(s + double(n) * hi, double(above + n)));
    if (bound >= floor) {
      candidate[k] = 1;
      marked += n;
    }
  });
  return marked;
}

// Exact scores at every cut inside the marked bins. `values` holds exactly the marked bins' pixels. Only
// block ends are scored: a cut never splits equal probabilities, since within such a block the score is
// monotone or falls then rises, so its best is at an end.
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
      for (int k = 0; k < kBins; ++k) c += candidate[k] ? parts[size_t(j)].count[k] : 0;
      offset[size_t(j) + 1] = offset[size_t(j)] + c;
    }
    for_each_chunk(chunks, true, threads, [&](int64_t j) { gather(px.chunk(j), ws.values.data() + offset[size_t(j)]); });
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
bool solve_smoothed_on_band(const Pixels<S>& px, const Moments& m, const VolumeScore& score, bool parallel,
                            int threads, Scratch<value_t<S>>& ws, Best& best, SolveTrace* trace) {
  using V = value_t<S>;
  // s is kept far above the rounding of R*, so no pixel just past R* can gain by rounding alone.
  if (!(score.mu > score.smooth && score.smooth > 1e-9 * (score.mu + double(px.count)))) return false;
  ThresholdSearch<V> ratio({score.metric, score.mu + score.smooth, 0.0}, m.above_half, m.above_half_sum);
  const Band<V> band = solve_by_threshold(px, parallel, threads, ws, ratio, m, trace);
  if (band.sizes.empty()) return false;
  count(trace, &SolveTrace::smoothed_band);

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
    kept += gather_band(band.values + int64_t(j) * band.segment, 1, band.sizes[j], cut, V(0.5),
                        ws.values.data() + kept, size - kept);
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

// Solves one (image, class), and writes its mask when `mask` is given. With `parallel` the chunk loops are
// shared by the team of threads (for few, large classes); otherwise the caller runs one class per thread.
// `kept`: whether the pruning rule keeps the class (argmax pruning), or -1 to test max > pruning_prob.
template <class S>
ClassCut solve_class(const Pixels<S>& px, const RmaOptions& options, Scratch<value_t<S>>& ws, bool parallel,
                     bool* mask, int kept = -1) {
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
  count(trace, parallel ? &SolveTrace::chunk_parallel : &SolveTrace::per_class);
  const VolumeScore score{options.metric, cut.mu, options.smooth};
  Best best{score.empty()};
  if (threshold_form) {
    ThresholdSearch<value_t<S>> search(score, m.above_half, m.above_half_sum);
    const bool banded = !solve_by_threshold(px, parallel, threads, ws, search, m, trace).sizes.empty();
    count(trace, banded ? &SolveTrace::threshold_band : &SolveTrace::threshold_full);
    best = search.best;
  } else if (!solve_smoothed_on_band(px, m, score, parallel, threads, ws, best, trace)) {
    count(trace, &SolveTrace::histogram);
    solve_by_histogram(px, score, parallel, threads, ws, best);
  }
  cut.volume = best.volume;
  cut.threshold = best.volume > 0 ? best.threshold : std::numeric_limits<double>::infinity();
  if (mask) write_class_mask(px, cut.threshold, parallel, threads, mask);  // read again while still cached
  return cut;
}

}  // namespace rankseg::cpu
