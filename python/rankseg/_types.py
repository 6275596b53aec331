"""The string options of the public API, as types (the canonical spellings; the functions also accept other
capitalisations and surrounding spaces)."""

from __future__ import annotations

from typing import Literal, Union

Metric = Literal["dice", "iou", "acc", "accuracy"]
OutputMode = Literal["multiclass", "multilabel"]
Solver = Literal["RMA", "exact", "BA", "TRNA", "BA+TRNA", "argmax", "TR"]
RankDiceSolver = Literal["BA", "TRNA", "BA+TRNA"]
UnassignedPolicy = Literal["max_score", "void"]
Pruning = Literal["max_prob", "argmax"]
Merge = Literal["gain", "prob"]
SafeScreening = Union[bool, Literal["auto"]]
Reduction = Literal["none", "class", "mean"]
ExpectedMethod = Literal["exact", "enumerate", "monte_carlo"]
