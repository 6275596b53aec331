# The compiled core (csrc/bindings.cpp). CI checks this stub against the built module with mypy's stubtest.
from typing import Any, ClassVar, Optional

from ._boundary import CudaArgs, TensorRef

class _Enum:
    """What pybind11 gives each enum: its members by name, and conversion from and to int (an int that names no
    member converts too; the core refuses it)."""

    __members__: ClassVar[dict[str, Any]]
    def __init__(self, value: int) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __int__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class ScalarType(_Enum):
    float32: ClassVar[ScalarType]
    float64: ClassVar[ScalarType]
    float16: ClassVar[ScalarType]
    bfloat16: ClassVar[ScalarType]
    boolean: ClassVar[ScalarType]
    int64: ClassVar[ScalarType]
    uint8: ClassVar[ScalarType]

class DeviceType(_Enum):
    cpu: ClassVar[DeviceType]
    cuda: ClassVar[DeviceType]

class Metric(_Enum):
    dice: ClassVar[Metric]
    iou: ClassVar[Metric]

class Unassigned(_Enum):
    max_score: ClassVar[Unassigned]
    void_label: ClassVar[Unassigned]

class Pruning(_Enum):
    max_prob: ClassVar[Pruning]
    argmax: ClassVar[Pruning]

class Merge(_Enum):
    gain: ClassVar[Merge]
    probability: ClassVar[Merge]

class Solver(_Enum):
    exact: ClassVar[Solver]
    ba: ClassVar[Solver]
    trna: ClassVar[Solver]
    ba_trna: ClassVar[Solver]

class Output(_Enum):
    multilabel: ClassVar[Output]
    multiclass: ClassVar[Output]

cpu_instruction_sets: str

def cpu_dispatched() -> str: ...
def workspace_bytes(probs: TensorRef, output: Output) -> int: ...
def rma_multilabel(
    probs: TensorRef,
    out: TensorRef,
    metric: Metric,
    smooth: float,
    pruning_prob: float,
    num_threads: int,
    cuda: Optional[CudaArgs] = None,
    trace: Optional[dict[str, int]] = None,
) -> None: ...
def rma_multiclass(
    probs: TensorRef,
    out: TensorRef,
    metric: Metric,
    smooth: float,
    pruning_prob: float,
    pruning: Pruning,
    merge: Merge,
    unassigned: Unassigned,
    void_index: int,
    num_threads: int,
    cuda: Optional[CudaArgs] = None,
    trace: Optional[dict[str, int]] = None,
) -> None: ...
def sorted_multilabel(
    probs: TensorRef, out: TensorRef, solver: Solver, smooth: float, pruning_prob: float, eps: float, num_threads: int
) -> None: ...
def exact_multiclass(
    probs: TensorRef,
    out: TensorRef,
    smooth: float,
    pruning_prob: float,
    pruning: Pruning,
    merge: Merge,
    unassigned: Unassigned,
    void_index: int,
    num_threads: int,
) -> None: ...
def expected_scores(
    probs: TensorRef, masks: TensorRef, out: TensorRef, metric: Metric, smooth: float, empty: float, num_threads: int
) -> None: ...
def cuda_compiled() -> bool: ...
def cuda_architectures() -> str: ...
def cuda_runtime_version() -> int: ...
def cuda_device_count() -> int: ...
