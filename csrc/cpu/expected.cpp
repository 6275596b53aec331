// Exact expected Dice and IoU (expected.h).
#include "expected.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace rankseg::cpu {

namespace {

// 16-point Gauss-Legendre on [-1, 1]: the positive nodes and their weights (the rule is symmetric).
constexpr double kNode[8] = {0.09501250983763744, 0.2816035507792589, 0.45801677765722737, 0.6178762444026438,
                             0.755404408355003,   0.8656312023878318, 0.9445750230732326,  0.9894009349916499};
constexpr double kWeight[8] = {0.18945061045506864, 0.18260341504492364, 0.16915651939500265,  0.1495959888165767,
                               0.12462897125553407, 0.0951585116824926,  0.062253523938647456, 0.027152459411754176};
constexpr double kTailExponent = 45.0;  // e^-45 = 2.9e-20: the truncated tail, relative
constexpr int kRenormalise = 8;         // factors >= e^-45 > 2^-65: eight of them cannot underflow

// Probabilities q <= kSeriesLimit enter log G through power sums instead of one product per node:
// log(1 - q y) = -sum_k (q y)^k / k with y = 1 - x in [0, 1], so their part of log G(x) is
// -sum_k y^k P_k / k with P_k = sum q^k. Cutting after kSeriesTerms terms errs by at most
// P_1 kSeriesLimit^K / ((K + 1) (1 - kSeriesLimit)) in log G, i.e. relative to G: below 5.6e-18 for any class of
// fewer than 2^31 pixels (P_1 <= 2^27); larger sums are checked and fall back to the products. Most pixels of
// most classes are far below the limit, so G costs about kSeriesTerms operations per pixel instead of one per
// node (several hundred).
constexpr double kSeriesLimit = 1.0 / 16;
constexpr int kSeriesTerms = 20;
constexpr double kSeriesError = 1e-17;
constexpr int kPowerChains = 32;  // pixels whose powers are computed side by side (independent chains)

void add_panel(double a, double b, ExpRule& rule) {
  const double mid = (a + b) / 2, half = (b - a) / 2;
  for (int k = 0; k < 8; ++k) {
    for (const double sign : {-1.0, 1.0}) {
      const double t = mid + sign * half * kNode[k];
      rule.x.push_back(std::exp(-t));
      rule.y.push_back(-std::expm1(-t));  // 1 - x without cancellation where x is near 1
      rule.weight.push_back(half * kWeight[k]);
    }
  }
}

// The integral over t of e^(-a t) G(e^(-t)) (2 e^(-t) H(e^(-t)) + s), where h_m = H(x_m): with a = |S| + s
// and H the sum of p_i / (1 - p_i + p_i x) over S, the expected Dice of S.
double dice_integral(const ExpRule& rule, const GeneratingFunction& g, const std::vector<double>& h, double a,
                     double smooth) {
  double total = 0.0;
  for (size_t m = 0; m < rule.x.size(); ++m) {
    const double x = rule.x[m];
    total += rule.weight[m] * std::pow(x, a) * g.at_node[m] * (2.0 * x * h[m] + smooth);
  }
  return total;
}

// The integral over t of e^(-a t) G(e^(-t)): E[1 / (a + Gamma)].
double reciprocal_moment(const ExpRule& rule, const GeneratingFunction& g, double a) {
  double total = 0.0;
  for (size_t m = 0; m < rule.x.size(); ++m) total += rule.weight[m] * std::pow(rule.x[m], a) * g.at_node[m];
  return total;
}

// E[s / (s + Gamma)], and `empty` * P(Gamma = 0) when s = 0: split as P(Gamma = 0) plus an integral of
// G - G(0), whose exponentials all decay at rates >= 1 + s.
double empty_set_score(const ExpRule& rule, const GeneratingFunction& g, double smooth, double empty) {
  if (smooth == 0.0) return empty * g.at_zero;
  double total = 0.0;
  for (size_t m = 0; m < rule.x.size(); ++m)
    total += rule.weight[m] * std::pow(rule.x[m], smooth) * (g.at_node[m] - g.at_zero);
  return g.at_zero + smooth * total;
}

ExpRule rule_for(int64_t n, double smooth) { return exp_rule(1.0 + smooth, 2.0 * double(n) + smooth + 1.0); }

}  // namespace

ExpRule exp_rule(double c_min, double c_max) {
  ExpRule rule;
  const double end = kTailExponent / c_min;
  double a = 0.0, b = 1.0 / c_max;
  for (;;) {
    add_panel(a, b, rule);
    if (b >= end) break;
    a = b;
    b = 2.0 * b;
  }
  return rule;
}

namespace {

// P_k = sum of q^k, k = 1 .. kSeriesTerms, over the kept probabilities q <= kSeriesLimit (the others are 0 in
// `small`, which contributes nothing).
std::vector<double> power_sums(const std::vector<double>& small) {
  double sums[kSeriesTerms][kPowerChains] = {};
  const size_t n = small.size();
  for (size_t start = 0; start < n; start += kPowerChains) {
    double q[kPowerChains] = {}, power[kPowerChains];
    const size_t chains = std::min<size_t>(kPowerChains, n - start);
    for (size_t j = 0; j < chains; ++j) q[j] = small[start + j];
    for (int j = 0; j < kPowerChains; ++j) power[j] = q[j];
    for (int k = 0; k < kSeriesTerms; ++k) {
      for (int j = 0; j < kPowerChains; ++j) {
        sums[k][j] += power[j];
        power[j] *= q[j];
      }
    }
  }
  std::vector<double> out(kSeriesTerms, 0.0);
  for (int k = 0; k < kSeriesTerms; ++k)
    for (int j = 0; j < kPowerChains; ++j) out[size_t(k)] += sums[k][j];
  return out;
}

// -sum_k y^k P_k / k, by Horner.
double series_log(const std::vector<double>& sums, double y) {
  double total = 0.0;
  for (int k = kSeriesTerms; k >= 1; --k) total = total * y + sums[size_t(k - 1)] / k;
  return -y * total;
}

}  // namespace

GeneratingFunction generating_function(const double* p, int64_t n, const uint8_t* keep, const ExpRule& rule,
                                       bool power_series) {
  const size_t nodes = rule.x.size();
  std::vector<double> mantissa(nodes, 1.0);
  std::vector<int64_t> exponent(nodes, 0);
  double log_at_zero = 0.0;
  int pending = 0;
  auto renormalise = [&] {
    for (size_t m = 0; m < nodes; ++m) {
      int e = 0;
      mantissa[m] = std::frexp(mantissa[m], &e);
      exponent[m] += e;
    }
  };
  std::vector<double> small;
  double small_total = 0.0;
  for (int64_t i = 0; power_series && i < n; ++i) {
    if (keep && !keep[i]) continue;
    if (p[i] <= kSeriesLimit) {
      small.push_back(p[i]);
      small_total += p[i];
    }
  }
  const double truncation =
      small_total * std::pow(kSeriesLimit, kSeriesTerms) / ((kSeriesTerms + 1) * (1 - kSeriesLimit));
  const bool series = power_series && truncation <= kSeriesError;
  for (int64_t i = 0; i < n; ++i) {
    if ((keep && !keep[i]) || (series && p[i] <= kSeriesLimit)) continue;
    const double q = p[i], r = 1.0 - q;
    for (size_t m = 0; m < nodes; ++m) mantissa[m] *= r + q * rule.x[m];
    log_at_zero += std::log(r);  // -inf once some p is 1: G(0) = 0
    if (++pending == kRenormalise) {
      renormalise();
      pending = 0;
    }
  }
  renormalise();
  if (series && !small.empty()) {
    const std::vector<double> sums = power_sums(small);
    for (size_t m = 0; m < nodes; ++m) {
      // Multiply by e^L as 2^e * e^(L - e ln 2): L may be far below the smallest double's logarithm.
      const double log_factor = series_log(sums, rule.y[m]);
      const double e = std::floor(log_factor / std::log(2.0));
      mantissa[m] *= std::exp(log_factor - e * std::log(2.0));
      exponent[m] += int64_t(e);
    }
    log_at_zero += series_log(sums, 1.0);
  }
  GeneratingFunction g;
  g.at_node.resize(nodes);
  for (size_t m = 0; m < nodes; ++m) g.at_node[m] = std::ldexp(mantissa[m], int(std::max<int64_t>(exponent[m], -2000)));
  g.at_zero = std::exp(log_at_zero);
  return g;
}

void expected_dice_curve(const double* sorted_desc, int64_t n, double smooth, double empty, double* out) {
  const ExpRule rule = rule_for(n, smooth);
  const GeneratingFunction g = generating_function(sorted_desc, n, nullptr, rule);
  out[0] = empty_set_score(rule, g, smooth, empty);
  const size_t nodes = rule.x.size();
  // term[m] = w_m x_m^(tau + s) G(x_m) and h[m] = H_tau(x_m), both updated as tau grows.
  std::vector<double> term(nodes), h(nodes, 0.0);
  for (size_t m = 0; m < nodes; ++m) term[m] = rule.weight[m] * std::pow(rule.x[m], smooth) * g.at_node[m];
  for (int64_t tau = 1; tau <= n; ++tau) {
    const double q = sorted_desc[tau - 1], r = 1.0 - q;
    double total = 0.0;
    for (size_t m = 0; m < nodes; ++m) {
      const double x = rule.x[m];
      h[m] += q / (r + q * x);
      term[m] *= x;
      total += term[m] * (2.0 * x * h[m] + smooth);
    }
    out[tau] = total;
  }
}

double expected_dice(const double* p, const uint8_t* selected, int64_t n, double smooth, double empty) {
  const ExpRule rule = rule_for(n, smooth);
  const GeneratingFunction g = generating_function(p, n, nullptr, rule, true);
  int64_t volume = 0;
  std::vector<double> h(rule.x.size(), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (!selected[i]) continue;
    ++volume;
    for (size_t m = 0; m < rule.x.size(); ++m) h[m] += p[i] / (1.0 - p[i] + p[i] * rule.x[m]);
  }
  if (volume == 0) return empty_set_score(rule, g, smooth, empty);
  return dice_integral(rule, g, h, double(volume) + smooth, smooth);
}

double expected_iou(const double* p, const uint8_t* selected, int64_t n, double smooth, double empty) {
  // IoU = (T + s) / (|S| + R + s): T (labels inside S) and R (outside) are independent, so the expectation
  // factors into E[T + s] * E[1 / (|S| + s + R)].
  const ExpRule rule = rule_for(n, smooth);
  std::vector<uint8_t> outside(static_cast<size_t>(n));
  int64_t volume = 0;
  double inside = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    outside[size_t(i)] = !selected[i];
    volume += selected[i] != 0;
    inside += selected[i] ? p[i] : 0.0;
  }
  const GeneratingFunction g = generating_function(p, n, outside.data(), rule, true);
  if (volume == 0) return empty_set_score(rule, g, smooth, empty);
  return (inside + smooth) * reciprocal_moment(rule, g, double(volume) + smooth);
}

}  // namespace rankseg::cpu
