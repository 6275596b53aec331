"""The `rankseg` command: info, demo (scores and picture), bench, and argument errors without tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

import rankseg
from rankseg import cli, demo


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rankseg", *args], capture_output=True, text=True, timeout=300)


def test_info_reports_the_build(capsys):
    cli.main(["info", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == rankseg.__version__
    assert info["torch"] == torch.__version__
    assert info["cuda_compiled"] == rankseg.build_info()["cuda_compiled"]
    assert info["cuda_available"] == rankseg.cuda_available()
    assert "cuda" not in info and "cuda_kernels" not in info  # one name per fact
    assert info["cpu_dispatched"] in info["cpu_instruction_sets"]
    cli.main(["info"])
    text = capsys.readouterr().out
    assert f"rankseg {rankseg.__version__}" in text and "OpenMP" in text and "GPUs visible" in text


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rankseg {rankseg.__version__}"


def test_demo_scores_are_exact_and_rankseg_wins():
    result = demo.run()
    assert torch.equal(result.ours, rankseg.rankseg(result.probs, merge=demo.MERGE))
    assert torch.equal(result.argmax, result.probs.argmax(1))
    for name, labels in (("argmax", result.argmax), ("rankseg", result.ours)):
        expected = rankseg.metrics.expected_dice(result.probs, labels).mean().item()
        assert result.scores[name]["dice"] == pytest.approx(expected, abs=1e-12)
    assert result.scores["rankseg"]["dice"] > result.scores["argmax"]["dice"]
    assert result.scores["rankseg"]["iou"] > result.scores["argmax"]["iou"]


@pytest.mark.parametrize("name,fmt", [("demo.jpg", "JPEG"), ("DEMO.JPEG", "JPEG"), ("demo.png", "PNG")])
def test_demo_writes_the_format_its_name_asks_for(tmp_path, name, fmt):
    image = pytest.importorskip("PIL.Image")
    cli.main(["demo", "--output", str(tmp_path / name)])
    with image.open(tmp_path / name) as picture:
        assert picture.format == fmt


def test_demo_refuses_a_format_it_cannot_write(tmp_path, capsys):
    pytest.importorskip("PIL.Image")
    with pytest.raises(SystemExit) as stop:
        cli.main(["demo", "--output", str(tmp_path / "demo.gif")])
    assert stop.value.code == 2 and ".png, .jpg or .jpeg" in capsys.readouterr().err
    assert not (tmp_path / "demo.gif").exists()


def test_demo_writes_the_picture(tmp_path):
    image = pytest.importorskip("PIL.Image")
    path = tmp_path / "demo.png"
    done = run_cli("demo", "--output", str(path))
    assert done.returncode == 0, done.stderr
    assert "expected Dice  RankSEG" in done.stdout and str(path) in done.stdout
    with image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.width > 5 * 256 and picture.height > 256
        # the RankSEG panel shows the RankSEG labels in the palette's colours
        from rankseg._picture import GAP, PALETTE, PANEL, TITLE

        labels = demo.run().ours[0]
        x0 = GAP + 3 * (PANEL + GAP)
        for y, x in [(10, 10), (128, 200), (250, 40)]:
            assert picture.getpixel((x0 + x, TITLE + y)) == tuple(int(v) for v in PALETTE[labels[y, x]])


def test_bench_quick_prints_the_table(capsys):
    cli.main(["bench", "--quick"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("multiclass", "multilabel"))]
    assert len(rows) == 3
    for row in rows:
        ratio = re.search(r"ms +([0-9.]+)x ", row)  # the ratio column, after the two times
        assert ratio and float(ratio.group(1)) > 0
        assert re.search(r"[0-9.]+ [KM]B \([0-9.]+x\)$", row)  # peak extra memory and its share of the input


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "required"),
        (("bench", "--device", "tpu"), "invalid choice"),
        (("demo", "--outptu", "x.png"), "unrecognized arguments"),
        (("info", "extra"), "unrecognized arguments"),
    ],
)
def test_argument_errors_exit_2_without_traceback(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_bench_on_cuda_without_a_gpu_is_a_usage_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    done = run_cli("bench", "--device", "cuda")
    assert done.returncode == 2 and "no CUDA device" in done.stderr and "Traceback" not in done.stderr


def test_unwritable_picture_path_is_a_clean_error(tmp_path):
    pytest.importorskip("PIL")
    done = run_cli("demo", "--output", str(tmp_path / "missing" / "demo.png"))
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_bench_memory_sees_what_a_call_allocates():
    """An allocation freed earlier stays resident in the heap unless the allocator is told to return it; the
    measurement must still see a call that allocates 8 MB afresh (it read 0.0 MB on every row before)."""
    from rankseg import _bench

    def allocate():
        buffer = torch.ones(2**21)  # 8 MB, touched
        return buffer[:1].clone()

    allocate()  # raises glibc's dynamic mmap threshold: the next 8 MB would come from resident heap pages
    extra = _bench._peak_extra_mb(allocate, torch.device("cpu"))
    if extra is None:
        pytest.skip("resident-memory measurement needs Linux and glibc")
    assert extra >= 7.5
