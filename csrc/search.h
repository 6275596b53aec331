// The decisions of the search for one class's optimal cut, shared by the CPU and CUDA kernels: the devices
// differ in how they read the pixels, never in what they conclude from the sums, so their masks agree bit
// for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "config.h"
#include "exact_sum.h"
#include "scores.h"

namespace rankseg {

// The outcome for one (image, class).
struct ClassCut {
  double mu = 0.0;              // sum of the class's probabilities
  double max = 0.0;             // largest probability
  bool invalid = false;         // a value was NaN or outside [0, 1]
  bool active = false;          // passed the pruning test (max > pruning_prob)
  int64_t volume = 0;           // tau*, the number of selected pixels
  double threshold = HUGE_VAL;  // the mask is p >= threshold (+inf: empty)
};

// The best volume seen so far. Ties keep the smaller volume: tau* is the first maximiser. The outcome does
// not depend on the order of the offers.
struct Best {
  double score;
  int64_t volume = 0;
  double threshold = HUGE_VAL;  // the mask is p >= threshold

  RANKSEG_HOST_DEVICE void offer(double s, int64_t v, double thr) {
    if (s > score || (s == score && v < volume)) {
      score = s;
      volume = v;
      threshold = thr;
    }
  }
};

// The pixels with p >= t: how many, their exact sum, and the smallest of them (+inf if none).
struct UpperSet {
  int64_t count = 0;
  ExactSum sum;
  double min = HUGE_VAL;

  RANKSEG_HOST_DEVICE void merge(const UpperSet& other) {
    count += other.count;
    sum.add(other.sum);
    min = other.min < min ? other.min : min;
  }
};

// The smallest value of type V that is > t, so that "p > t" reads "p >= result" in V.
template <class V>
RANKSEG_HOST_DEVICE V smallest_above(double t) {
  const V v = V(t);
  if (double(v) > t) return v;
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(V) == 4) {
    return nextafterf(v, HUGE_VALF);
  } else {
    return nextafter(v, HUGE_VAL);
  }
#else
  return std::nextafter(v, std::numeric_limits<V>::infinity());
#endif
}

// Dinkelbach's iteration for the threshold forms (Dice with s = 0, IoU; scores.h), one step at a time: from
// a mask of score l, the mask {p > pixel_threshold(l)} scores at least as well, and strictly better unless l
// is optimal. The first mask that does not improve is the smallest optimal one. It starts from {p > 1/2},
// which every optimal mask contains.
//
// It ends, with no step cap, by the code's own comparisons (no rounding argument is needed): take() asks for
// another step only when the next threshold t' exceeds u.min, the smallest value the mask {p >= t} just
// selected, and u.min >= t. So the next mask {p >= t'} lies inside this one and lacks the pixel at u.min:
// every further step removes at least one distinct value, and a class of n pixels takes at most n + 1 steps.
template <class V>
struct ThresholdSearch {
  VolumeScore score;
  Best best;
  int64_t steps = 0;  // upper sets taken (reported by the CPU's solve trace)

  // above_half, above_half_sum: the pixels with p > 1/2.
  RANKSEG_HOST_DEVICE ThresholdSearch(const VolumeScore& s, int64_t above_half, const ExactSum& above_half_sum)
      : score(s), best{s.empty()} {
    if (above_half > 0)
      best.offer(score(above_half_sum.value(), double(above_half)), above_half, double(smallest_above<V>(0.5)));
  }

  // Where the next step cuts: the mask is {p >= threshold()}. Before the first step, the lowest such cut.
  RANKSEG_HOST_DEVICE V threshold() const { return smallest_above<V>(score.pixel_threshold(best.score)); }

  // Takes the upper set at threshold() (with every pixel above 1/2 counted in count and sum; its min may
  // leave them out). Returns whether another step is needed.
  RANKSEG_HOST_DEVICE bool take(const UpperSet& u) {
    ++steps;
    const V t = threshold();
    if (u.count == 0) return false;
    const double s = score(u.sum.value(), double(u.count));
    const bool improved = s > best.score;
    best.offer(s, u.count, double(t));  // an equal score with fewer pixels still wins the tie
    // Every selected pixel clears the next threshold too: the next mask would be this one.
    return improved && !(u.min >= double(threshold()));
  }
};

}  // namespace rankseg
