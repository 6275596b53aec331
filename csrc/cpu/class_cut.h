// The optimal volume of one (image, class) without sorting it: a histogram of the probabilities gives exact
// scores at bin boundaries and an upper bound inside each bin; only bins that could beat the best boundary
// are gathered and sorted.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "../scores.h"
#include "load.h"

namespace rankseg::cpu {

// A power of two, so v * kBins is exact and bin k holds exactly the values in [k, k + 1) / kBins.
constexpr int kBins = 4096;
// Every sum is formed per chunk and chunks are merged in order, so results never depend on the thread count.
constexpr int64_t kChunk = int64_t(1) << 20;

// A strided run of one class's probabilities.
template <class S>
struct Pixels {
  const S* data;
  int64_t stride;
  int64_t count;

  value_t<S> operator[](int64_t i) const { return to_value(data[i * stride]); }
  int64_t chunks() const { return (count + kChunk - 1) / kChunk; }
  Pixels chunk(int64_t j) const {
    const int64_t begin = j * kChunk;
    return {data + begin * stride, stride, std::min(kChunk, count - begin)};
  }
};

// Sum, maximum and a validity flag from one streaming pass.
struct Moments {
  double sum = 0.0;
  double max = 0.0;
  bool invalid = false;

  void merge(const Moments& other) {
    sum += other.sum;
    max = std::max(max, other.max);
    invalid = invalid || other.invalid;
  }
};

template <class S, bool kUnitStride>
Moments scan_moments_strided(const Pixels<S>& px) {
  using V = value_t<S>;
  constexpr int kLanes = 8;  // independent accumulators: vectorisable and in a fixed order
  double sum[kLanes] = {};
  V max[kLanes] = {};
  int bad[kLanes] = {};
  const int64_t stride = kUnitStride ? 1 : px.stride;
  auto visit = [&](int lane, V v) {
    sum[lane] += v;
    max[lane] = v > max[lane] ? v : max[lane];
    bad[lane] |= !(v >= V(0) && v <= V(1));  // NaN fails both comparisons
  };
  int64_t i = 0;
  for (; i + kLanes <= px.count; i += kLanes)
    for (int lane = 0; lane < kLanes; ++lane) visit(lane, to_value(px.data[(i + lane) * stride]));
  for (; i < px.count; ++i) visit(0, to_value(px.data[i * stride]));

  Moments m;
  m.sum = ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
  for (int lane = 0; lane < kLanes; ++lane) {
    m.max = std::max(m.max, double(max[lane]));
    m.invalid = m.invalid || bad[lane];
  }
  return m;
}

template <class S>
Moments scan_moments(const Pixels<S>& px) {
  return px.stride == 1 ? scan_moments_strided<S, true>(px) : scan_moments_strided<S, false>(px);
}

struct Histogram {
  std::vector<int64_t> count = std::vector<int64_t>(kBins);
  std::vector<double> sum = std::vector<double>(kBins);

  void clear() {
    std::fill(count.begin(), count.end(), 0);
    std::fill(sum.begin(), sum.end(), 0.0);
  }
  void add(const Histogram& other) {
    for (int k = 0; k < kBins; ++k) {
      count[k] += other.count[k];
      sum[k] += other.sum[k];
    }
  }
};

// Values must already be known to lie in [0, 1].
template <class V>
inline int bin_of(V v) {
  const int k = int(v * V(kBins));
  return k < kBins - 1 ? k : kBins - 1;
}

template <class S>
void accumulate_histogram(const Pixels<S>& px, Histogram& h) {
  for (int64_t i = 0; i < px.count; ++i) {
    const auto v = px[i];
    const int k = bin_of(v);
    h.count[k] += 1;
    h.sum[k] += v;
  }
}

// The best volume seen so far. Ties keep the smaller volume: tau* is the first maximiser.
struct Best {
  double score;
  int64_t volume = 0;
  double selected = 0.0;
  double threshold = std::numeric_limits<double>::infinity();

  void offer(double s, int64_t v, double sel, double thr) {
    if (s > score || (s == score && v < volume)) {
      score = s;
      volume = v;
      selected = sel;
      threshold = thr;
    }
  }
};

// Visits the non-empty bins from the highest down, with the volume and sum of everything above each.
template <class F>
void for_each_bin_desc(const Histogram& h, F&& visit) {
  int64_t above = 0;
  double above_sum = 0.0;
  for (int k = kBins - 1; k >= 0; --k) {
    if (h.count[k] == 0) continue;
    visit(k, above, above_sum);
    above += h.count[k];
    above_sum += h.sum[k];
  }
}

// Scores every bin boundary exactly (all pixels of a higher bin outrank every pixel of a lower one), then
// marks the bins whose interior could still beat the best of them. Returns how many pixels were marked.
inline int64_t score_boundaries(const Histogram& h, const VolumeScore& score, Best& best,
                                std::vector<uint8_t>& candidate) {
  for_each_bin_desc(h, [&](int k, int64_t above, double above_sum) {
    const int64_t volume = above + h.count[k];
    const double selected = above_sum + h.sum[k];
    best.offer(score(selected, double(volume)), volume, selected, double(k) / kBins);
  });

  // Inside bin k the j-th pixel adds at most hi, so S <= above_sum + j * hi. Along that ray every score is
  // monotone (IoU, Dice s = 0) or falls then rises (Dice s > 0), so its maximum over j is at j = 1 or j = n.
  // The slack only admits extra bins: it guards against rounding, never drops a needed one.
  const double floor = best.score - 1e-12 * std::abs(best.score);
  int64_t marked = 0;
  std::fill(candidate.begin(), candidate.end(), 0);
  for_each_bin_desc(h, [&](int k, int64_t above, double above_sum) {
    const int64_t n = h.count[k];
    if (n < 2) return;  // a single pixel has no interior cut
    const double hi = double(k + 1) / kBins;
    const double bound = std::max(score(above_sum + hi, double(above + 1)),
                                  score(above_sum + double(n) * hi, double(above + n)));
    if (bound >= floor) {
      candidate[k] = 1;
      marked += n;
    }
  });
  return marked;
}

// Exact scores at every cut inside the marked bins. `values` holds exactly the marked bins' pixels. Only
// block ends are scored: a cut never splits equal probabilities, since within such a block each score is
// monotone (or falls then rises), so its best is at an end.
template <class V>
void refine_candidates(std::vector<V>& values, const Histogram& h, const std::vector<uint8_t>& candidate,
                       const VolumeScore& score, Best& best) {
  std::sort(values.begin(), values.end(), std::greater<V>());
  size_t pos = 0;
  for_each_bin_desc(h, [&](int k, int64_t above, double above_sum) {
    if (!candidate[k]) return;
    const int64_t n = h.count[k];
    double selected = above_sum;
    for (int64_t j = 0; j + 1 < n; ++j) {  // j = n - 1 is the bin boundary, already scored
      const V v = values[pos + j];
      selected += v;
      if (values[pos + j + 1] == v) continue;
      best.offer(score(selected, double(above + j + 1)), above + j + 1, selected, double(v));
    }
    pos += size_t(n);
  });
}

struct ClassCut {
  double mu = 0.0;        // sum of the class's probabilities
  double max = 0.0;       // largest probability
  bool invalid = false;   // a value was NaN or outside [0, 1]
  bool active = false;    // passed the pruning test (max > pruning_prob)
  int64_t volume = 0;     // tau*, the number of selected pixels
  double selected = 0.0;  // sum of the selected probabilities
  double threshold = std::numeric_limits<double>::infinity();  // the mask is p >= threshold
};

// Per-thread scratch space, reused across classes.
template <class V>
struct Workspace {
  Histogram total, part;
  std::vector<uint8_t> candidate = std::vector<uint8_t>(kBins);
  std::vector<V> values;
};

// Solves one (image, class). With `parallel_chunks` the chunk loops are shared by the team of threads
// (for few, large classes); otherwise the caller is already running one class per thread.
template <class S>
ClassCut solve_class(const Pixels<S>& px, const RmaOptions& options, Workspace<value_t<S>>& ws,
                     bool parallel_chunks) {
  using V = value_t<S>;
  const int64_t chunks = px.chunks();
  const int threads = options.num_threads;

  std::vector<Moments> moments(static_cast<size_t>(chunks));
#pragma omp parallel for num_threads(threads) if (parallel_chunks) schedule(static)
  for (int64_t j = 0; j < chunks; ++j) moments[size_t(j)] = scan_moments(px.chunk(j));
  Moments m;
  for (const auto& part : moments) m.merge(part);

  ClassCut cut;
  cut.mu = m.sum;
  cut.max = m.max;
  cut.invalid = m.invalid;
  cut.active = !m.invalid && m.max > options.pruning_prob;
  if (!cut.active) return cut;

  // Per-chunk histograms, merged in chunk order.
  std::vector<Histogram> parts(parallel_chunks ? size_t(chunks) : 0);
  ws.total.clear();
  if (parallel_chunks) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t j = 0; j < chunks; ++j) accumulate_histogram(px.chunk(j), parts[size_t(j)]);
    for (const auto& part : parts) ws.total.add(part);
  } else {
    for (int64_t j = 0; j < chunks; ++j) {
      ws.part.clear();
      accumulate_histogram(px.chunk(j), ws.part);
      ws.total.add(ws.part);
    }
  }

  const VolumeScore score{options.metric, cut.mu, options.smooth};
  Best best{score.empty()};
  const int64_t marked = score_boundaries(ws.total, score, best, ws.candidate);

  if (marked > 0) {
    ws.values.resize(size_t(marked));
    const uint8_t* candidate = ws.candidate.data();
    if (parallel_chunks) {  // each chunk writes where its marked pixels start
      std::vector<int64_t> offset(size_t(chunks) + 1, 0);
      for (int64_t j = 0; j < chunks; ++j) {
        int64_t c = 0;
        for (int k = 0; k < kBins; ++k) c += candidate[k] ? parts[size_t(j)].count[k] : 0;
        offset[size_t(j) + 1] = offset[size_t(j)] + c;
      }
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t j = 0; j < chunks; ++j) {
        const Pixels<S> c = px.chunk(j);
        V* out = ws.values.data() + offset[size_t(j)];
        for (int64_t i = 0; i < c.count; ++i) {
          const V v = c[i];
          if (candidate[bin_of(v)]) *out++ = v;
        }
      }
    } else {
      V* out = ws.values.data();
      for (int64_t i = 0; i < px.count; ++i) {
        const V v = px[i];
        if (candidate[bin_of(v)]) *out++ = v;
      }
    }
    refine_candidates(ws.values, ws.total, ws.candidate, score, best);
  }

  cut.volume = best.volume;
  cut.selected = best.selected;
  cut.threshold = best.volume > 0 ? best.threshold : std::numeric_limits<double>::infinity();
  return cut;
}

}  // namespace rankseg::cpu
