// RankDice's approximate scores (Dai & Li 2023, JMLR 24(224)): the expected Dice of each top-tau set with
// the Poisson-binomial count of positives replaced by its refined normal approximation, restricted to the
// central 1 - eps of its mass.
#pragma once

#include <cstdint>
#include <vector>

namespace rankseg::cpu {

// The refined normal approximation of a Poisson-binomial with this mean, variance and third central moment:
// P(X <= k) = clip(Phi(z) + skew (1 - z^2) phi(z) / 6, 0, 1) at z = (k + 1/2 - mean) / sd.
struct RefinedNormal {
  double mean, variance, third;

  static RefinedNormal of(const double* p, int64_t n);
  RefinedNormal without(double p) const;  // the same distribution with one Bernoulli(p) taken out
  double cdf(double k) const;
  // P(X = k) for k = lo .. hi, scaled to sum to 1.
  std::vector<double> pmf(int64_t lo, int64_t hi) const;
  // The smallest integer range [lo, hi] within [0, n] outside which at most eps of the mass lies (eps / 2 on
  // each side).
  void central_range(double eps, int64_t n, int64_t& lo, int64_t& hi) const;
};

// The largest volume worth scoring: the first tau with S_tau >= (tau + s + n) p_(tau+1), else n (the
// RankDice paper's bound on the optimal volume).
int64_t volume_bound(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth);

// Scores of tau = 0 .. volume_bound, for p sorted in descending order (prefix_sums[tau] = S_tau).
// Blind approximation: every E[1 / (tau + s + 1 + Gamma_(-j))] taken as E[1 / (tau + s + 1 + Gamma)].
std::vector<double> ba_scores(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth,
                              double eps);
// Truncated refined normal approximation: each Gamma_(-j) approximated on its own.
std::vector<double> trna_scores(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth,
                                double eps);

}  // namespace rankseg::cpu
