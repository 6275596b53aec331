Descriptor = tuple[int, int, str, int, tuple[int, ...], tuple[int, ...]]

cpu_instruction_sets: str

def cpu_dispatched() -> str: ...
def workspace_bytes(probs: Descriptor, output: int) -> int: ...
def rma_multilabel(
    probs: Descriptor,
    out: Descriptor,
    metric: int,
    smooth: float,
    pruning_prob: float,
    num_threads: int,
    stream: int = 0,
    workspace: Descriptor | None = None,
    first_invalid: Descriptor | None = None,
    trace: dict[str, int] | None = None,
) -> None: ...
def rma_multiclass(
    probs: Descriptor,
    out: Descriptor,
    metric: int,
    smooth: float,
    pruning_prob: float,
    unassigned: int,
    void_index: int,
    num_threads: int,
    stream: int = 0,
    workspace: Descriptor | None = None,
    first_invalid: Descriptor | None = None,
    pruning: int = 0,
    trace: dict[str, int] | None = None,
    merge: int = 0,
) -> None: ...
def sorted_multilabel(
    probs: Descriptor, out: Descriptor, solver: int, smooth: float, pruning_prob: float, eps: float, num_threads: int
) -> None: ...
def sorted_multiclass(
    probs: Descriptor,
    out: Descriptor,
    solver: int,
    smooth: float,
    pruning_prob: float,
    eps: float,
    unassigned: int,
    void_index: int,
    num_threads: int,
    pruning: int = 0,
    merge: int = 0,
) -> None: ...
def expected_scores(
    probs: Descriptor, masks: Descriptor, out: Descriptor, metric: int, smooth: float, empty: float, num_threads: int
) -> None: ...
def cuda_compiled() -> bool: ...
def cuda_architectures() -> str: ...
def cuda_runtime_version() -> int: ...
def cuda_device_count() -> int: ...
