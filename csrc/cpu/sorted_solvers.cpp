// The solvers that sort each class and the exact expected scores of given masks, on the CPU: the exact
// expected-Dice solver and RankDice's BA, TRNA and BA+TRNA (docs/algorithm.md, "The exact solver" and "BA, TRNA
// and BA+TRNA"). Classes are spread over threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "../backends.h"
#include "../values.h"
#include "argmax_winners.h"
#include "expected.h"
#include "invalid_values.h"
#include "merge.h"
#include "parallel.h"
#include "rankdice.h"

namespace rankseg::cpu {

namespace {

constexpr double kCohensDBound = 0.2;  // BA+TRNA: BA where 1 / sd < 0.2, TRNA elsewhere

// The first probability of (image, class) s = b * classes + c.
template <class S>
const S* class_data(const ProbsView& v, int64_t s) {
  return static_cast<const S*>(v.data) + (s / v.classes) * v.stride_b + (s % v.classes) * v.stride_c;
}

// One class's probabilities as doubles; false if one is NaN or outside [0, 1].
template <class S>
bool read_class(const ProbsView& v, int64_t s, std::vector<double>& out) {
  const S* p = class_data<S>(v, s);
  out.resize(size_t(v.pixels));
  bool valid = true;
  for (int64_t i = 0; i < v.pixels; ++i) {
    const double x = double(to_value(p[i * v.stride_n]));
    valid = valid && x >= 0.0 && x <= 1.0;
    out[size_t(i)] = x;
  }
  return valid;
}

// Runs body(s, values) for every (image, class) s, spread over threads, with the class's probabilities as
// doubles; afterwards, if a class held NaN or a value outside [0, 1], throws for the first such class.
template <class S, class F>
void for_each_class(const ProbsView& v, int threads, F&& body) {
  const int64_t pairs = v.batch * v.classes;
  std::vector<uint8_t> invalid(static_cast<size_t>(pairs), 0);
  auto solve = [&](int64_t s, std::vector<double>& values) {
    if (read_class<S>(v, s, values)) {
      body(s, values);
    } else {
      invalid[size_t(s)] = 1;
    }
  };
  if (serial(threads)) {
    std::vector<double> values;
    for (int64_t s = 0; s < pairs; ++s) solve(s, values);
  } else {
#pragma omp parallel num_threads(threads)
    {
      std::vector<double> values;
#pragma omp for schedule(dynamic, 1)
      for (int64_t s = 0; s < pairs; ++s) solve(s, values);
    }
  }
  const int64_t bad = std::find(invalid.begin(), invalid.end(), 1) - invalid.begin();
  if (bad < pairs) throw_invalid_values(bad / v.classes, bad % v.classes);
}

// Scores of tau = 0 .. k (k <= n) for one class sorted in descending order.
std::vector<double> volume_scores(const std::vector<double>& sorted, const SortedOptions& o) {
  const int64_t n = int64_t(sorted.size());
  if (o.solver == Solver::exact) {
    std::vector<double> scores(sorted.size() + 1);
    expected_dice_curve(sorted.data(), n, o.smooth, 0.0, scores.data());
    return scores;
  }
  std::vector<double> prefix(sorted.size() + 1, 0.0);
  std::partial_sum(sorted.begin(), sorted.end(), prefix.begin() + 1);
  bool blind = o.solver == Solver::ba;
  if (o.solver == Solver::ba_trna) {
    const RefinedNormal count = RefinedNormal::of(sorted.data(), n);
    blind = count.variance > 0.0 && 1.0 / std::sqrt(count.variance) < kCohensDBound;
  }
  return blind ? ba_scores(sorted.data(), prefix.data(), n, o.smooth, o.eps)
               : trna_scores(sorted.data(), prefix.data(), n, o.smooth, o.eps);
}

// The cut of one class: the first best volume among those that do not split equal probabilities. `kept` as
// in solve_class (class_cut.h).
ClassCut solve_sorted(std::vector<double>& values, const SortedOptions& o, int kept) {
  ClassCut cut;
  cut.max = *std::max_element(values.begin(), values.end());
  cut.mu = std::accumulate(values.begin(), values.end(), 0.0);
  cut.active = kept < 0 ? cut.max > o.pruning_prob : kept == 1;
  if (!cut.active) return cut;
  std::sort(values.begin(), values.end(), std::greater<double>());
  const std::vector<double> scores = volume_scores(values, o);
  int64_t best = 0;
  for (int64_t tau = 1; tau < int64_t(scores.size()); ++tau) {
    const bool between_values = tau == int64_t(values.size()) || values[size_t(tau)] < values[size_t(tau - 1)];
    if (between_values && scores[size_t(tau)] > scores[size_t(best)]) best = tau;
  }
  cut.volume = best;
  cut.threshold = best > 0 ? values[size_t(best - 1)] : HUGE_VAL;
  return cut;
}

// The sorting solver's cut of every (image, class); with `mask`, writes each class's mask too.
template <class S>
std::vector<ClassCut> sorted_cuts(const ProbsView& v, const SortedOptions& o, bool* mask) {
  std::vector<ClassCut> cuts(static_cast<size_t>(v.batch * v.classes));
  const std::vector<uint8_t> winners =
      o.pruning == Pruning::argmax ? argmax_winners<S>(v, o.num_threads) : std::vector<uint8_t>{};
  for_each_class<S>(v, o.num_threads, [&](int64_t s, std::vector<double>& values) {
    cuts[size_t(s)] = solve_sorted(values, o, winners.empty() ? -1 : int(winners[size_t(s)]));
    if (!mask) return;
    const S* p = class_data<S>(v, s);
    const double threshold = cuts[size_t(s)].threshold;
    for (int64_t i = 0; i < v.pixels; ++i) mask[s * v.pixels + i] = double(to_value(p[i * v.stride_n])) >= threshold;
  });
  return cuts;
}

}  // namespace

void sorted_multilabel(const ProbsView& probs, const SortedOptions& options, bool* out) {
  with_storage_type(probs.dtype, [&](auto tag) { sorted_cuts<decltype(tag)>(probs, options, out); });
}

void sorted_multiclass(const ProbsView& probs, const SortedOptions& options, Unassigned policy, int64_t void_index,
                       int64_t* out) {
  with_storage_type(probs.dtype, [&](auto tag) {
    using S = decltype(tag);
    const std::vector<ClassCut> cuts = sorted_cuts<S>(probs, options, nullptr);
    const Image<S> shape{nullptr, probs.stride_c, probs.stride_n, probs.classes, probs.pixels};
    RmaOptions merge{Metric::dice, options.smooth, options.pruning_prob, options.num_threads, options.pruning};
    merge.merge = options.merge;
    merge_batch(static_cast<const S*>(probs.data), probs.batch, probs.stride_b, shape, cuts.data(), merge, policy,
                void_index, out);
  });
}

void expected_scores(const ProbsView& probs, const bool* masks, Metric metric, double smooth, double empty,
                     int num_threads, double* out) {
  with_storage_type(probs.dtype, [&](auto tag) {
    for_each_class<decltype(tag)>(probs, num_threads, [&](int64_t s, const std::vector<double>& values) {
      const auto* selected = reinterpret_cast<const uint8_t*>(masks + s * probs.pixels);
      out[s] = metric == Metric::dice ? expected_dice(values.data(), selected, probs.pixels, smooth, empty)
                                      : expected_iou(values.data(), selected, probs.pixels, smooth, empty);
    });
  });
}

}  // namespace rankseg::cpu
