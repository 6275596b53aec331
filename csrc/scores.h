// RMA's score formulas, shared by every kernel so CPU and CUDA agree to the last bit: the score of a top-tau
// mask (docs/algorithm.md, "The problem") and the incremental score of the multiclass merge ("Multiclass merge").
#pragma once

#include "config.h"
#include "core.h"

namespace rankseg {

// Approximate expected score of selecting the `volume` most probable pixels of one class, whose
// probabilities sum to `selected`; `mu` is the sum over all pixels of the class.
struct VolumeScore {
  Metric metric;
  double mu;
  double smooth;

  RANKSEG_HOST_DEVICE double operator()(double selected, double volume) const {
    if (metric == Metric::dice) {
      double score = 2.0 * selected / (mu + volume + 1.0 + smooth);
      if (smooth > 0.0) score += smooth / (mu + volume + smooth);
      return score;
    }
    return (selected + smooth) / (mu - selected + volume + smooth);
  }

  // Dice with s = 0 and IoU are ratios of sums over the selected pixels, so a pixel raises a mask's score v
  // exactly when its probability exceeds pixel_threshold(v); the optimal mask is {p > pixel_threshold(v*)}.
  // Because v* <= 1, that threshold is <= 1/2: every p > 1/2 is always selected.
  RANKSEG_HOST_DEVICE bool threshold_form() const { return metric == Metric::iou || smooth == 0.0; }
  RANKSEG_HOST_DEVICE double pixel_threshold(double value) const {
    return metric == Metric::dice ? value / 2.0 : value / (1.0 + value);
  }

  // Score of the empty mask: s / (mu + s), and 0 when both are 0.
  RANKSEG_HOST_DEVICE double empty() const {
    const double denominator = mu + smooth;
    return denominator > 0.0 ? smooth / denominator : 0.0;
  }
};

// Change of a class's score when one more pixel of probability p joins the `count` pixels (summing to
// `mass`) that the class holds alone; `mu` is the class's total. Per-class constants are folded once.
struct PixelGain {
  enum class Form { dice, smoothed_dice, iou, probability } form;
  double k0 = 0.0, k1 = 0.0, k2 = 0.0, k3 = 0.0;

  // The probability itself, for the merge that labels by the most probable class.
  RANKSEG_HOST_DEVICE static PixelGain probability() {
    PixelGain g(Metric::dice, 0.0, 0.0, 0.0, 0.0);
    g.form = Form::probability;
    return g;
  }

  RANKSEG_HOST_DEVICE PixelGain(Metric metric, double smooth, double mu, double count, double mass) {
    if (metric == Metric::dice && smooth == 0.0) {
      // 2/(d+1) * (p - m/d), d = n + mu + 1
      form = Form::dice;
      const double d = count + mu + 1.0;
      k0 = 2.0 / (d + 1.0);
      k1 = mass / d;
    } else if (metric == Metric::dice) {
      // Exact difference of 2m/A + s/(A-1) when (n, m) -> (n + 1, m + p), A = mu + n + 1 + s:
      // 2(pA - m)/(A(A+1)) - s/(A(A-1)); both terms are formed apart so a large s loses nothing.
      form = Form::smoothed_dice;
      const double a = mu + count + 1.0 + smooth;
      k0 = 2.0 / (a * (a + 1.0));
      k1 = a;
      k2 = mass;
      k3 = smooth / (a * (a - 1.0));
    } else {
      // (p - base (1 - p)) / (D + 1 - p), D = n + mu - m + s, base = (m + s) / D (0 when D = 0)
      form = Form::iou;
      const double d = count + mu - mass + smooth;
      k0 = d;
      k1 = d == 0.0 ? 0.0 : (mass + smooth) / d;
    }
  }

  RANKSEG_HOST_DEVICE double operator()(double p) const {
    switch (form) {
      case Form::dice: return k0 * (p - k1);
      case Form::smoothed_dice: return k0 * (p * k1 - k2) - k3;
      case Form::probability: return p;
      default: return (p - k1 * (1.0 - p)) / (k0 + 1.0 - p);
    }
  }
};

}  // namespace rankseg
