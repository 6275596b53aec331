"""The refined normal approximation of the Poisson-binomial distribution, which RankDice's BA and TRNA use.

For a sum X of independent Bernoulli(p_i) with mean ``loc = Σ p``, standard deviation
``scale = sqrt(Σ p(1-p))`` and skewness ``skew = Σ p(1-p)(1-2p) / scale^3``, the approximation (Volkova 1996)
is, for a standardised point z,

    G(z) = Φ(z) + skew (1 - z²) φ(z) / 6,        g(z) = φ(z) (1 + skew (z³ - 3z) / 6),

and the count's CDF is ``P(X <= k) = G((k + 1/2 - loc) / scale)``, clipped to [0, 1]. Importing this module
needs SciPy (for :class:`RefinedNormal`); ``import rankseg`` alone does not.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np
import scipy.stats
import torch
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

__all__ = ["RefinedNormalPB", "RefinedNormal"]


def _standard_cdf(z, skew):
    """G(z), clipped to [0, 1]; works on tensors and arrays alike."""
    if isinstance(z, torch.Tensor):
        phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        value = 0.5 * torch.erfc(-z / math.sqrt(2)) + skew * (1 - z * z) * phi / 6
        return value.clamp(0.0, 1.0)
    value = scipy.stats.norm.cdf(z) + skew * (1 - z * z) * scipy.stats.norm.pdf(z) / 6
    return np.clip(value, 0.0, 1.0)


def _check_real(name: str, value) -> None:
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex() or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must hold finite real numbers")
    elif isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number or a tensor of them, got {value!r}")


class RefinedNormalPB(Distribution):
    """The refined normal approximation of a Poisson-binomial count, as a torch distribution (batched).

    Args:
        dim: Number of Bernoulli terms: the count lies in ``[0, dim]`` (bounds :meth:`interval`).
        loc: Mean of the count. scale: Its standard deviation (> 0). skew: Its skewness.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "dim": constraints.nonnegative_integer,
        "loc": constraints.real,
        "scale": constraints.positive,
        "skew": constraints.real,
    }
    support = constraints.real
    has_rsample = False

    def __init__(self, dim, loc, scale, skew, validate_args=None):
        for name, value in (("dim", dim), ("loc", loc), ("scale", scale), ("skew", skew)):
            _check_real(name, value)
        self.dim, self.loc, self.scale, self.skew = broadcast_all(dim, loc, scale, skew)
        super().__init__(batch_shape=self.loc.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(RefinedNormalPB, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in ("dim", "loc", "scale", "skew"):
            setattr(new, name, getattr(self, name).expand(batch_shape))
        super(RefinedNormalPB, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _params_like(self, value: torch.Tensor):
        """loc, scale, skew with trailing dims added so they broadcast against `value`."""
        params = [self.loc, self.scale, self.skew]
        while params[0].dim() < value.dim():
            params = [p.unsqueeze(-1) for p in params]
        return params

    def _standardised(self, value):
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        loc, scale, skew = self._params_like(value)
        return (value + 0.5 - loc) / scale, scale, skew

    def cdf(self, value):
        """P(X <= value) for the count."""
        z, _, skew = self._standardised(value)
        return _standard_cdf(z, skew)

    def pdf(self, value):
        """The density g((value + 1/2 - loc) / scale) / scale, clipped at 0."""
        z, scale, skew = self._standardised(value)
        phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return (phi * (1 + skew * (z**3 - 3 * z) / 6) / scale).clamp(min=0.0)

    def pmf(self, value):
        """P(X = value) = cdf(value) - cdf(value - 1), clipped to [0, 1]."""
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return (self.cdf(value) - self.cdf(value - 1)).clamp(0.0, 1.0)

    @torch.no_grad()
    def icdf(self, p, max_iter: int = 1000, tol: float = 1e-6):
        """The point where :meth:`cdf` reaches ``p`` (in (0, 1)), by bisection to ``tol``."""
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise TypeError("p must be a floating-point torch.Tensor")
        if not bool(((p > 0) & (p < 1)).all()):
            raise ValueError("p must lie in (0, 1)")
        if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
        if not (isinstance(tol, numbers.Real) and tol > 0):
            raise ValueError(f"tol must be a positive number, got {tol!r}")
        loc, scale, _ = self._params_like(p)
        low, high = loc - 0.5 - 8 * scale, loc - 0.5 + 8 * scale
        for _ in range(64):  # widen until the bracket holds p
            below, above = self.cdf(low) > p, self.cdf(high) < p
            if not bool((below | above).any()):
                break
            width = high - low
            low, high = torch.where(below, low - width, low), torch.where(above, high + width, high)
        for _ in range(max_iter):
            mid = (low + high) / 2
            right = self.cdf(mid) < p
            low, high = torch.where(right, mid, low), torch.where(right, high, mid)
            if bool(((high - low) < tol).all()):
                break
        return (low + high) / 2

    @torch.no_grad()
    def interval(self, p):
        """Inclusive integer bounds ``(lo, hi)`` within ``[0, dim]`` that hold at least ``1 - p`` of the mass:
        the continuous quantiles ``p/2`` and ``1 - p/2`` of the approximation, widened outward to integers (and
        one more step down for the half-unit continuity shift). int32 tensors on the parameters' device."""
        z_lo, z_hi = RefinedNormal().interval(1 - np.asarray(p, dtype=np.float64), self.skew.cpu().double().numpy())
        loc, scale, dim = self.loc.detach(), self.scale.detach(), self.dim.detach()
        lo = torch.floor(loc + scale * torch.as_tensor(z_lo, dtype=loc.dtype, device=loc.device)) - 1
        hi = torch.ceil(loc + scale * torch.as_tensor(z_hi, dtype=loc.dtype, device=loc.device))
        return torch.minimum(lo.clamp(min=0), dim).int(), torch.minimum(hi.clamp(min=0), dim).int()


class RefinedNormal(scipy.stats.rv_continuous):
    """The standardised refined normal approximation as a SciPy distribution with shape parameter ``skew``:
    CDF ``G(z) = Φ(z) + skew (1 - z²) φ(z) / 6`` (clipped to [0, 1]) and density
    ``φ(z) (1 + skew (z³ - 3z) / 6)`` (clipped at 0)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("name", "refined_normal")
        super().__init__(*args, **kwargs)

    def _argcheck(self, skew):
        return np.isfinite(skew)

    def _cdf(self, x, skew):
        return _standard_cdf(x, skew)

    def _pdf(self, x, skew):
        return np.clip(scipy.stats.norm.pdf(x) * (1 + skew * (x**3 - 3 * x) / 6), 0.0, None)
