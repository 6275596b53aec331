// Exact expected Dice and IoU under independent Bernoulli(p_i) labels, by quadrature with a proven error
// bound.
//
// With Gamma = sum of Y_i and G(x) = prod (1 - p_k + p_k x) its generating function, E[1/(a + Gamma)] is the
// integral of x^(a-1) G(x) over [0, 1], i.e. of e^(-a t) G(e^(-t)) over t >= 0. Every integrand below is a
// nonnegative combination of exponentials e^(-c t) with rates c in [1 + s, 2N + s + 1] (G is a polynomial in
// e^(-t) with nonnegative coefficients). For such integrands a composite 16-point Gauss-Legendre rule on
// panels [0, h], [h, 2h], [2h, 4h], ... with h = 1 / c_max, truncated at T = 45 / c_min, errs by at most
// 1.92e-19 per panel and e^-45 for the tail, each relative to the exact value of every exponential term, so
// at most (panels * 1.92e-19 + 2.9e-20) relative to the result (about 1e-17 for a million pixels) before
// floating-point rounding. docs/algorithm.md ("The exact solver", "Error bound") derives the constants.
#pragma once

#include <cstdint>
#include <vector>

namespace rankseg::cpu {

// Nodes x_m = e^(-t_m) and weights (in t) of the rule for rates in [c_min, c_max].
struct ExpRule {
  std::vector<double> x, y, weight;  // y = 1 - x, computed without cancellation
};
ExpRule exp_rule(double c_min, double c_max);

// G(x_m) at every node of a rule, and G(0) = P(Gamma = 0), for the probabilities p[0 .. n) where keep[i]
// (or every i when keep is null).
struct GeneratingFunction {
  std::vector<double> at_node;
  double at_zero = 0.0;
};
// With power_series, probabilities up to 1/16 enter through their power sums (expected.cpp), truncated with a
// proven error below 1e-17 relative (rounding of the sums aside, which the products have too), in about 20
// operations per pixel instead of one per node; the exact solver keeps the products, so that its curve is
// computed exactly as before.
GeneratingFunction generating_function(const double* p, int64_t n, const uint8_t* keep, const ExpRule& rule,
                                       bool power_series = false);

// Expected Dice E[(2 sum_{i<tau} Y_i + s) / (tau + Gamma + s)] of the top-tau set of p sorted in descending
// order, for every tau = 0 .. n (out has n + 1 entries). `empty` is the value of 0/0 (s = 0, nothing
// predicted, nothing present).
void expected_dice_curve(const double* sorted_desc, int64_t n, double smooth, double empty, double* out);

// Expected Dice and IoU of the pixels with selected[i] != 0.
double expected_dice(const double* p, const uint8_t* selected, int64_t n, double smooth, double empty);
double expected_iou(const double* p, const uint8_t* selected, int64_t n, double smooth, double empty);

}  // namespace rankseg::cpu
