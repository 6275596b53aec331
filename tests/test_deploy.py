"""Deployment paths: torch.jit.trace, torch.jit.script, torch.export and AOTInductor record the real solve, never
a bare allocation; the examples of docs/deploy.md run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rankseg
from rankseg import metrics

# (RankSEG arguments, whether the compiled core solves it: then the graph must hold a rankseg op)
SETTINGS = [
    ({"metric": "dice"}, True),
    ({"metric": "iou", "output_mode": "multilabel"}, True),
    ({"metric": "dice", "unassigned_policy": "void", "void_index": 9, "pruning": "argmax"}, True),
    ({"metric": "dice", "solver": "exact"}, True),
    ({"metric": "dice", "output_mode": "multilabel", "solver": "BA", "eps": 1e-3}, True),
    ({"metric": "acc", "solver": "argmax"}, False),
    ({"metric": "acc", "output_mode": "multilabel", "solver": "argmax"}, False),
    ({"metric": "acc", "output_mode": "multilabel", "solver": "TR"}, False),
]


def probs_of(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, 12, 10, generator=g) * 3).softmax(1)


class Segmenter(torch.nn.Module):
    """What a user deploys: a model's last step calling the functional API."""

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return rankseg.rankseg(logits.softmax(1), **self.kwargs)


@pytest.mark.parametrize(("kwargs", "compiled"), SETTINGS)
def test_trace_records_the_solve(kwargs, compiled):
    model = Segmenter(**kwargs)
    example = torch.randn(2, 4, 12, 10)
    traced = torch.jit.trace(model, example, check_trace=False)
    if compiled:
        assert "rankseg::" in str(traced.graph)
    # Other values and another batch size than the example's: a trace that dropped the solve (and kept the
    # output's allocation) returns uninitialised memory here.
    for batch, seed in ((3, 1), (1, 2)):
        logits = torch.randn(batch, 4, 12, 10, generator=torch.Generator().manual_seed(seed)) * 3
        assert torch.equal(traced(logits), model(logits))


def test_trace_of_the_class_and_the_old_names():
    segmenter = rankseg.RankSEG(metric="iou")
    p = probs_of(3, 5)
    assert torch.equal(torch.jit.trace(segmenter.predict, probs_of(2, 4), check_trace=False)(p), segmenter(p))
    traced = torch.jit.trace(lambda x: rankseg.rankseg_rma(x, output_mode="multilabel"), probs_of(2, 4))
    assert torch.equal(traced(p), rankseg.rankseg_rma(p, output_mode="multilabel"))
    traced = torch.jit.trace(lambda x: rankseg.rankdice_ba(x, solver="TRNA"), probs_of(2, 4))
    assert torch.equal(traced(p), rankseg.rankdice_ba(p, solver="TRNA"))


def test_trace_refuses_entry_points_without_an_op():
    p = probs_of(1, 0)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.trace(lambda x: metrics.expected_dice(x, x.argmax(1)), p)


@pytest.mark.parametrize(("kwargs", "compiled"), SETTINGS)
def test_scripted_module_equals_eager_and_survives_save(kwargs, compiled, tmp_path):
    segmenter = rankseg.RankSEG(**kwargs)
    scripted = torch.jit.script(segmenter.as_module())
    if compiled:
        assert "rankseg::" in str(scripted.graph)
    path = tmp_path / "segmenter.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    for batch, seed in ((2, 0), (1, 3)):
        p = probs_of(batch, seed)
        expected = segmenter(p)
        assert torch.equal(scripted(p), expected)
        assert torch.equal(loaded(p), expected)


def test_scripted_module_checks_each_call():
    module = torch.jit.script(rankseg.RankSEG(metric="dice").as_module())
    # The TorchScript interpreter reports the core's ValueError as a torch.jit.Error (a RuntimeError).
    with pytest.raises(RuntimeError, match="finite values in"):
        module(probs_of(1, 0) * 2)
    with pytest.raises(RuntimeError, match="C >= 2"):
        module(torch.rand(1, 1, 4, 4))
    with pytest.raises(TypeError, match="check_values"):
        rankseg.RankSEG().as_module(check_values=1)


@pytest.mark.skipif(not hasattr(rankseg._ops.multiclass_op, "register_vmap"), reason="torch < 2.5: no vmap rules")
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"output_mode": "multilabel"}, {"merge": "gain", "unassigned_policy": "argmax"}, {"solver": "exact"}],
)
def test_vmap_equals_a_loop(kwargs):
    segmenter = rankseg.RankSEG(**kwargs)
    probs = torch.stack([probs_of(2, seed) for seed in range(3)])  # (3, B, C, H, W)
    looped = torch.stack([segmenter(p) for p in probs])
    assert torch.equal(torch.vmap(segmenter)(probs), looped)
    assert torch.equal(torch.vmap(segmenter, in_dims=2)(probs.movedim(0, 2)), looped)


class SegmenterObject(torch.nn.Module):
    """The same step through a RankSEG object."""

    def __init__(self, **kwargs):
        super().__init__()
        self.segmenter = rankseg.RankSEG(**kwargs)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.segmenter(logits.sigmoid())


def graph_ops(program) -> set[str]:
    """The targets of every call in an exported program, its nested graphs included (no_grad regions are)."""
    return {str(node.target) for m in program.graph_module.modules() if hasattr(m, "graph") for node in m.graph.nodes}


def logits_of(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 4, 12, 10, generator=torch.Generator().manual_seed(seed)) * 3


EXPORTED = [
    (Segmenter, {"metric": "dice"}, "rankseg.rma_multiclass.default"),
    (Segmenter, {"metric": "iou", "output_mode": "multilabel"}, "rankseg.rma_multilabel.default"),
    (Segmenter, {"metric": "dice", "merge": "gain", "unassigned_policy": "argmax"}, "rankseg.rma_multiclass.default"),
    (Segmenter, {"metric": "dice", "solver": "exact"}, "rankseg.sorted_multiclass.default"),
    (SegmenterObject, {"metric": "dice"}, "rankseg.rma_multiclass.default"),
    (SegmenterObject, {"metric": "dice", "output_mode": "multilabel"}, "rankseg.rma_multilabel.default"),
]


@pytest.mark.parametrize(("module", "kwargs", "op"), EXPORTED)
def test_export_equals_eager_on_other_inputs(module, kwargs, op):
    model = module(**kwargs)
    batch = torch.export.Dim("batch", max=64)
    program = torch.export.export(model, (logits_of(2, 0),), dynamic_shapes=({0: batch},))
    assert op in graph_ops(program)
    # What the fake kernel told export is what the op returns (AOTInductor allocates outputs from it).
    (recorded,) = next(n for n in program.graph.nodes if n.op == "output").args[0]
    expected = model(logits_of(2, 0))
    assert recorded.meta["val"].dtype == expected.dtype and recorded.meta["val"].shape[1:] == expected.shape[1:]
    for b, seed in ((3, 1), (1, 2)):  # another batch size and other values than the example's
        assert torch.equal(program.module()(logits_of(b, seed)), model(logits_of(b, seed)))


def test_exported_program_survives_save_and_load(tmp_path):
    model = Segmenter(metric="dice")
    program = torch.export.export(model, (logits_of(2, 0),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "segmenter.pt2"
    torch.export.save(program, path)
    loaded = torch.export.load(path).module()
    assert torch.equal(loaded(logits_of(3, 4)), model(logits_of(3, 4)))
    with pytest.raises(ValueError, match="finite values in"):  # values are checked on every call
        loaded(torch.full((1, 4, 12, 10), float("nan")))


def test_loading_an_exported_program_needs_import_rankseg(tmp_path):
    path = tmp_path / "segmenter.pt2"
    torch.export.save(torch.export.export(Segmenter(), (logits_of(2, 0),)), path)
    load = f"import torch; torch.export.load({str(path)!r}).module()(torch.rand(2, 4, 12, 10).softmax(1))"
    without = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert without.returncode != 0 and "torch.ops.rankseg.rma_multiclass" in without.stderr
    subprocess.run([sys.executable, "-c", "import rankseg; " + load], check=True, capture_output=True)


class Both(torch.nn.Module):
    """Multiclass labels and multilabel masks from one network: one package holds both ops."""

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = logits.softmax(1)
        return rankseg.rankseg(probs), rankseg.RankSEG(metric="iou", output_mode="multilabel")(probs)


@pytest.mark.slow  # AOTInductor compiles C++: 30-40 s on two cores, 12-20 s with its cache warm
def test_aoti_package_equals_eager(tmp_path):
    program = torch.export.export(Both(), (logits_of(2, 0),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    package = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "both.pt2"))
    runner = torch._inductor.aoti_load_package(package)
    for b, seed in ((3, 1), (1, 2)):
        got, expected = runner(logits_of(b, seed)), Both()(logits_of(b, seed))
        assert all(torch.equal(g, e) for g, e in zip(got, expected))
    # The op runs in Python inside the package, which reports the solver's ValueError as a RuntimeError.
    with pytest.raises(RuntimeError, match="finite values in"):
        runner(torch.full((1, 4, 12, 10), float("nan")))


DEPLOY_PAGE = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def page_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DEPLOY_PAGE.read_text(), flags=re.S)


def compiles(block: str) -> bool:
    """Blocks that compile C++ (AOTInductor, torch.compile's default backend): tens of seconds each."""
    return "aoti_compile_and_package" in block or "torch.compile" in block


def run_blocks(blocks: list[str]) -> dict:
    namespace: dict = {"__name__": "deploy_page"}
    for block in blocks:
        exec(compile(block, str(DEPLOY_PAGE), "exec"), namespace)
    return namespace


def test_deploy_page_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples save files
    blocks = page_blocks()
    assert len(blocks) == 6 and sum(map(compiles, blocks)) == 2
    namespace = run_blocks([b for b in blocks if not compiles(b)])
    assert namespace["labels"].shape == (4, 2, 32, 32)


@pytest.mark.slow  # the AOTInductor and torch.compile examples compile C++: up to 80 s on two cores
def test_deploy_page_compiled_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_blocks(page_blocks())
