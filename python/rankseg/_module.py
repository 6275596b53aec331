"""RankSEG as a ``torch.nn.Module`` that TorchScript compiles: its forward names the registered op it calls, with
the settings as attributes, so ``torch.jit.script`` and ``torch.jit.save`` keep the real solve."""

# No `from __future__ import annotations`: TorchScript reads the attribute annotations below as types.
import torch

from . import _solvers
from ._options import Options


class RankSEGModule(torch.nn.Module):
    """The module form of a :class:`rankseg.RankSEG` (made by :meth:`rankseg.RankSEG.as_module`).

    ``forward(probs)`` returns what ``RankSEG.predict(probs)`` returns. It can be scripted, traced, exported and
    saved; a saved program needs ``import rankseg`` before ``torch.jit.load``, which registers the ops. The
    shapes and values of each call are checked by the compiled core (a scripted module reports its
    ``ValueError`` as ``torch.jit.Error``); the ``"argmax"`` and ``"TR"`` solvers, plain tensor code here, do not
    check values.
    """

    route: str
    metric: str
    solver: str
    smooth: float
    pruning_prob: float
    unassigned_policy: str
    void_index: int
    pruning: str
    merge: str
    eps: float
    check_values: bool
    fill_unselected: bool

    def __init__(self, options: Options, check_values: bool = True) -> None:
        super().__init__()
        self.route = _solvers.route(options).module_route
        self.metric = options.metric
        self.solver = options.solver
        self.smooth = options.smooth
        self.pruning_prob = options.pruning_prob
        self.unassigned_policy, self.void_index = _solvers.core_policy(options)
        self.fill_unselected = options.unassigned_policy == "argmax"
        self.pruning = options.pruning
        self.merge = options.merge
        self.eps = options.eps
        self.check_values = check_values

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        probs = probs.detach()
        if self.route == "rma_multiclass":
            labels = torch.ops.rankseg.rma_multiclass(
                probs,
                self.metric,
                self.smooth,
                self.pruning_prob,
                self.unassigned_policy,
                self.void_index,
                self.check_values,
                self.pruning,
                self.merge,
            )
            return self._filled(probs, labels)
        if self.route == "rma_multilabel":
            return torch.ops.rankseg.rma_multilabel(
                probs, self.metric, self.smooth, self.pruning_prob, self.check_values
            )
        if self.route == "sorted_multiclass":
            labels = torch.ops.rankseg.sorted_multiclass(
                probs,
                self.solver,
                self.smooth,
                self.pruning_prob,
                self.unassigned_policy,
                self.void_index,
                self.pruning,
                self.merge,
            )
            return self._filled(probs, labels)
        if self.route == "sorted_multilabel":
            return torch.ops.rankseg.sorted_multilabel(probs, self.solver, self.smooth, self.pruning_prob, self.eps)
        if self.route == "threshold":
            return probs > 0.5
        labels = probs.argmax(dim=1)
        if self.route == "argmax":
            return labels
        return torch.nn.functional.one_hot(labels, probs.shape[1]).movedim(-1, 1).to(torch.bool)

    def _filled(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.fill_unselected:  # unassigned_policy="argmax": the merge left those pixels at void_index
            return labels
        return torch.where(labels == self.void_index, probs.argmax(dim=1), labels)

    def extra_repr(self) -> str:
        return f"route={self.route!r}, metric={self.metric!r}, solver={self.solver!r}"
