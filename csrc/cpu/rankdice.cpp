// RankDice's BA and TRNA scores (rankdice.h).
#include "rankdice.h"

#include <algorithm>
#include <cmath>

namespace rankseg::cpu {

namespace {

constexpr double kDegenerateVariance = 1e-12;  // below this the count is taken as certain

// E[(2 S_tau + s) ...] terms share the sums over the support of sum_l w_l / (l + offset).
double weighted_reciprocal(const std::vector<double>& w, int64_t lo, double offset) {
  double total = 0.0;
  for (size_t l = 0; l < w.size(); ++l) {
    const double denominator = double(lo + int64_t(l)) + offset;
    if (denominator > 0.0) total += w[l] / denominator;  // 0/0 (nothing predicted, nothing present) counts 0
  }
  return total;
}

}  // namespace

RefinedNormal RefinedNormal::of(const double* p, int64_t n) {
  RefinedNormal r{0.0, 0.0, 0.0};
  for (int64_t i = 0; i < n; ++i) {
    const double v = p[i] * (1.0 - p[i]);
    r.mean += p[i];
    r.variance += v;
    r.third += v * (1.0 - 2.0 * p[i]);
  }
  return r;
}

RefinedNormal RefinedNormal::without(double p) const {
  const double v = p * (1.0 - p);
  return {mean - p, std::max(variance - v, 0.0), third - v * (1.0 - 2.0 * p)};
}

double RefinedNormal::cdf(double k) const {
  if (variance <= kDegenerateVariance) return k + 0.5 >= mean ? 1.0 : 0.0;
  const double sd = std::sqrt(variance);
  const double z = (k + 0.5 - mean) / sd, skew = third / (variance * sd);
  const double phi = std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
  const double value = 0.5 * std::erfc(-z / std::sqrt(2.0)) + skew * (1.0 - z * z) * phi / 6.0;
  return std::min(1.0, std::max(0.0, value));
}

std::vector<double> RefinedNormal::pmf(int64_t lo, int64_t hi) const {
  std::vector<double> mass(static_cast<size_t>(hi - lo + 1));
  double below = cdf(double(lo) - 1.0), total = 0.0;
  for (int64_t k = lo; k <= hi; ++k) {
    const double at = cdf(double(k));
    mass[size_t(k - lo)] = std::max(at - below, 0.0);
    total += mass[size_t(k - lo)];
    below = at;
  }
  if (total > 0.0) {
    for (double& m : mass) m /= total;
  } else {  // no mass inside the range at all: put it at the end nearest the mean
    mass[mean < double(lo) ? 0 : mass.size() - 1] = 1.0;
  }
  return mass;
}

void RefinedNormal::central_range(double eps, int64_t n, int64_t& lo, int64_t& hi) const {
  // Smallest k with cdf(k) > eps / 2, and smallest k with cdf(k) >= 1 - eps / 2, by bisection over [0, n].
  auto first = [&](auto reaches) {
    int64_t a = 0, b = n;
    while (a < b) {
      const int64_t mid = a + (b - a) / 2;
      if (reaches(cdf(double(mid)))) {
        b = mid;
      } else {
        a = mid + 1;
      }
    }
    return a;
  };
  lo = first([&](double c) { return c > eps / 2.0; });
  hi = std::max(lo, first([&](double c) { return c >= 1.0 - eps / 2.0; }));
}

int64_t volume_bound(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth) {
  for (int64_t tau = 1; tau < n; ++tau) {
    if (prefix_sums[tau] >= (double(tau) + smooth + double(n)) * sorted_desc[tau]) return tau;
  }
  return n;
}

namespace {

// What BA and TRNA share: the count's approximation on its central range, and the volumes worth scoring.
struct CountModel {
  RefinedNormal count;
  int64_t lo = 0, hi = 0;
  std::vector<double> pmf;
  int64_t bound;

  CountModel(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth, double eps)
      : count(RefinedNormal::of(sorted_desc, n)), bound(volume_bound(sorted_desc, prefix_sums, n, smooth)) {
    count.central_range(eps, n, lo, hi);
    pmf = count.pmf(lo, hi);
  }

  // s E[1 / (tau + s + Gamma)]: the score's smoothing term.
  double smoothing_term(int64_t tau, double smooth) const {
    return smooth > 0.0 ? smooth * weighted_reciprocal(pmf, lo, double(tau) + smooth) : 0.0;
  }
};

}  // namespace

std::vector<double> ba_scores(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth,
                              double eps) {
  const CountModel m(sorted_desc, prefix_sums, n, smooth, eps);
  std::vector<double> scores(static_cast<size_t>(m.bound + 1));
  for (int64_t tau = 0; tau <= m.bound; ++tau) {
    const double joined =
        tau > 0 ? 2.0 * prefix_sums[tau] * weighted_reciprocal(m.pmf, m.lo, double(tau) + smooth + 1.0) : 0.0;
    scores[size_t(tau)] = joined + m.smoothing_term(tau, smooth);
  }
  return scores;
}

std::vector<double> trna_scores(const double* sorted_desc, const double* prefix_sums, int64_t n, double smooth,
                                double eps) {
  const CountModel m(sorted_desc, prefix_sums, n, smooth, eps);
  std::vector<double> scores(static_cast<size_t>(m.bound + 1));
  std::vector<double> joined(m.pmf.size(), 0.0);  // sum over j <= tau of p_j P(Gamma_(-j) = l)
  scores[0] = m.smoothing_term(0, smooth);
  for (int64_t tau = 1; tau <= m.bound; ++tau) {
    const double p = sorted_desc[tau - 1];
    const std::vector<double> others = m.count.without(p).pmf(m.lo, m.hi);
    for (size_t l = 0; l < joined.size(); ++l) joined[l] += p * others[l];
    scores[size_t(tau)] =
        2.0 * weighted_reciprocal(joined, m.lo, double(tau) + smooth + 1.0) + m.smoothing_term(tau, smooth);
  }
  return scores;
}

}  // namespace rankseg::cpu
