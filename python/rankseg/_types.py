"""The string options of the public API, as types (the canonical spellings; the functions also accept other
capitalisations and surrounding spaces), and the arrays it takes beside torch tensors. Option parsing takes its
lists of choices from these types."""

from __future__ import annotations

from typing import Any, Literal, Protocol, Union

Metric = Literal["dice", "iou", "acc", "accuracy"]
OutputMode = Literal["multiclass", "multilabel"]
Solver = Literal["RMA", "BA", "TRNA", "BA+TRNA", "exact", "argmax", "TR"]
RankDiceSolver = Literal["BA", "TRNA", "BA+TRNA"]
UnassignedPolicy = Literal["max_score", "void", "argmax"]
Pruning = Literal["max_prob", "argmax"]
Merge = Literal["gain", "prob"]
SafeScreening = Union[bool, Literal["auto"]]
Reduction = Literal["none", "class", "mean"]
ExpectedMethod = Literal["exact", "enumerate", "monte_carlo"]


class SupportsDLPack(Protocol):
    """An array that torch.from_dlpack reads (CuPy, JAX, ...)."""

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __dlpack_device__(self) -> Any: ...
