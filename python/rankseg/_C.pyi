Descriptor = tuple[int, int, str, tuple[int, ...], tuple[int, ...]]

# True when the build found a CUDA toolkit. CUDA kernels are not part of this version: CUDA inputs run on
# the CPU kernels and the result is moved back.
cuda_toolkit: bool

def rma_multilabel(
    probs: Descriptor, out: Descriptor, metric: int, smooth: float, pruning_prob: float, num_threads: int
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
) -> None: ...
