"""NumPy and DLPack arrays in, arrays of the same kind out: equal to the torch path, viewed without a copy where
the layout allows, never written to; and the ONNX Runtime recipe of docs/integrations.md."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import rankseg
from rankseg import _arrays

SETTINGS = [
    {},
    {"output_mode": "multilabel"},
    {"metric": "iou", "merge": "gain", "pruning": "max_prob"},
    {"solver": "exact"},
    {"output_mode": "multilabel", "solver": "BA"},
    {"metric": "acc", "solver": "argmax"},
    {"metric": "acc", "output_mode": "multilabel", "solver": "TR"},
]


def probs_of(shape=(2, 4, 9, 7), seed=0, dtype=np.float32) -> np.ndarray:
    logits = np.random.default_rng(seed).standard_normal(shape) * 3
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(dtype)


def torch_result(a: np.ndarray, **kwargs) -> np.ndarray:
    """What the torch path gives for the same values (from a private copy in native byte order)."""
    return rankseg.rankseg(torch.tensor(a.astype(a.dtype.newbyteorder("="))), **kwargs).numpy()


def assert_same(got, expected: np.ndarray) -> None:
    assert type(got) is np.ndarray
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: "-".join(map(str, k.values())) or "default")
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_in_numpy_out(kwargs, dtype):
    a = probs_of(dtype=dtype)
    before = a.copy()
    expected = torch_result(a, **kwargs)
    assert expected.dtype == (np.int64 if kwargs.get("output_mode") != "multilabel" else np.bool_)
    assert_same(rankseg.rankseg(a, **kwargs), expected)
    segmenter = rankseg.RankSEG(**kwargs)
    assert_same(segmenter.predict(a), expected)
    assert_same(segmenter(a), expected)
    assert np.array_equal(a, before)


def big_endian(a):
    return a.astype(a.dtype.newbyteorder(">"))


LAYOUTS = {
    "channels_last": lambda a: np.ascontiguousarray(np.moveaxis(a, 1, -1)).transpose(0, 3, 1, 2),
    "fortran": np.asfortranarray,
    "sliced": lambda a: np.repeat(a, 2, axis=3)[:, :, :, ::2],
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),  # zero stride, read-only
    "negative_strides": lambda a: a[:, :, ::-1, ::-1],
    "big_endian": big_endian,
}
VIEWED = ("channels_last", "fortran", "sliced", "broadcast")  # torch views these; the others are copied


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_numpy_layouts(layout, mode):
    a = LAYOUTS[layout](probs_of(seed=1))
    before = a.copy()
    assert_same(rankseg.rankseg(a, output_mode=mode), torch_result(a, output_mode=mode))
    assert np.array_equal(a, before)
    tensor, _ = _arrays.as_tensor(a)
    assert np.shares_memory(tensor.numpy(), a) == (layout in VIEWED)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_read_only_arrays_are_viewed_silently_and_never_written(mode):
    a = probs_of(seed=2)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.from_numpy would warn that the array is not writable
        got = rankseg.rankseg(a, output_mode=mode)
    assert_same(got, torch_result(a, output_mode=mode))
    assert not a.flags.writeable
    tensor, _ = _arrays.as_tensor(a)
    assert tensor.data_ptr() == a.ctypes.data


def test_numpy_input_is_viewed_and_unchanged():
    a = probs_of(seed=3)
    tensor, restore = _arrays.as_tensor(a)
    assert np.shares_memory(tensor.numpy(), a)
    assert restore is not None
    before = a.copy()
    rankseg.rankseg(a, unassigned_policy="argmax", merge="gain")  # the argmax fill writes into its own labels
    assert np.array_equal(a, before)


def test_numpy_edge_shapes_and_value_errors():
    empty = probs_of((0, 3, 4, 5))
    out = rankseg.rankseg(empty)
    assert type(out) is np.ndarray and out.shape == (0, 4, 5) and out.dtype == np.int64
    one = probs_of((1, 2, 1, 1))
    assert_same(rankseg.rankseg(one), torch_result(one))
    bad = probs_of()
    bad[1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"probs must contain only finite values in \[0, 1\]"):
        rankseg.rankseg(bad)
    with pytest.raises(ValueError, match=r"probs must have shape \(B, C, \*spatial\)"):
        rankseg.rankseg(probs_of()[0, 0])


def test_old_names_take_numpy():
    a = probs_of(seed=4)
    assert_same(rankseg.rankseg_rma(a, output_mode="multilabel"), torch_result(a, output_mode="multilabel"))
    expected = rankseg.rankdice_ba(torch.tensor(a), solver="TRNA").numpy()
    assert_same(rankseg.rankdice_ba(a, solver="TRNA"), expected)


class DLPackOnly:
    """An array known only by the DLPack protocol (as an unknown array library would hand one over)."""

    def __init__(self, tensor: torch.Tensor):
        self._tensor = tensor

    def __dlpack__(self, *args, **kwargs):
        return self._tensor.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._tensor.__dlpack_device__()


class Namespace:
    """An array-API namespace that only knows from_dlpack."""

    @staticmethod
    def from_dlpack(x):
        return WithNamespace(torch.from_dlpack(x))


class WithNamespace(DLPackOnly):
    """A DLPack array whose library has an array-API namespace: results come back as this kind."""

    def __array_namespace__(self, api_version=None):
        return Namespace


@pytest.mark.parametrize("kwargs", SETTINGS[:3], ids=["default", "multilabel", "iou"])
def test_dlpack_arrays(kwargs):
    base = torch.tensor(probs_of(seed=5))
    expected = rankseg.rankseg(base.clone(), **kwargs)
    before = base.clone()

    plain = DLPackOnly(base)
    tensor, _ = _arrays.as_tensor(plain)
    assert tensor.data_ptr() == base.data_ptr()  # zero-copy
    got = rankseg.rankseg(plain, **kwargs)
    assert type(got) is torch.Tensor and torch.equal(got, expected)  # no from_dlpack known: a torch.Tensor

    got = rankseg.RankSEG(**kwargs)(WithNamespace(base))
    assert type(got) is WithNamespace and torch.equal(got._tensor, expected)
    assert torch.equal(base, before)


def test_dlpack_arrays_torch_cannot_read():
    class Failing(DLPackOnly):
        def __dlpack__(self, *args, **kwargs):
            raise BufferError("device not supported")

    with pytest.raises(TypeError, match=r"probs \(Failing\) could not be read through DLPack: device not supported"):
        rankseg.rankseg(Failing(torch.rand(1, 2, 3, 3)))

    class Reversed(DLPackOnly):
        strides = (-4, 4, 4, 4)

    with pytest.raises(TypeError, match=r"probs \(Reversed\) has negative strides"):
        rankseg.rankseg(Reversed(torch.rand(1, 2, 3, 3)))


@pytest.mark.parametrize(
    ("probs", "given", "advice"),
    [
        ([[[[0.5]]]], "got list", "torch.as_tensor"),
        ((0.5, 0.5), "got tuple", "torch.as_tensor"),
        ("probs.npy", "got str", "torch.as_tensor"),
        (np.zeros((1, 2, 3, 3), dtype=np.int64), "dtype int64", "astype"),
        (np.zeros((1, 2, 3, 3), dtype=np.uint8), "dtype uint8", "astype"),
        (np.zeros((1, 2, 3, 3), dtype=bool), "dtype bool", "astype"),
        (np.zeros((1, 2, 3, 3), dtype=object), "dtype object", "astype"),
        (np.zeros((1, 2, 3, 3), dtype=np.complex64), "dtype complex64", "astype"),
        (DLPackOnly(torch.zeros(1, 2, 3, 3, dtype=torch.int64)), "int64", "softmax or sigmoid"),
    ],
)
def test_arrays_input_errors(probs, given, advice):
    with pytest.raises(TypeError, match=rf"(?s)^probs .*{re.escape(given)}.*{re.escape(advice)}"):
        rankseg.rankseg(probs)
    with pytest.raises(TypeError, match="probs"):
        rankseg.RankSEG(output_mode="multilabel")(probs)


# ---- the ONNX Runtime recipe of docs/integrations.md ----------------------------------------------------------

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
SECTION = "## ONNX Runtime, TensorRT and Triton (NumPy and DLPack arrays)"


def recipe() -> str:
    """The section's one Python block: the code this test runs."""
    section = PAGE.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_onnx_runtime_recipe(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")  # torch.onnx.export's exporter
    monkeypatch.chdir(tmp_path)  # the recipe writes segmenter.onnx
    namespace: dict = {"__name__": "onnx_recipe"}
    exec(compile(recipe(), str(PAGE), "exec"), namespace)
    labels, probs, images, net = (namespace[k] for k in ("labels", "probs", "images", "net"))

    assert type(labels) is np.ndarray and labels.dtype == np.int64 and labels.shape == (2, 32, 32)
    # The NumPy path equals the torch path on the same probabilities, exactly.
    assert np.array_equal(labels, rankseg.rankseg(torch.from_numpy(probs)).numpy())
    # ONNX Runtime computes what the eager network computes, to float tolerance; labels can differ only where
    # that rounding moves a pixel across a class's cut or flips a near-tie between classes.
    with torch.no_grad():
        eager = net(torch.from_numpy(images)).softmax(1)
    np.testing.assert_allclose(probs, eager.numpy(), rtol=1e-4, atol=1e-5)
    assert (labels == rankseg.rankseg(eager).numpy()).mean() > 0.99
