"""The ``rankseg`` command (also ``python -m rankseg``): ``info``, ``demo``, ``bench``, ``evaluate`` and ``nnunet``."""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from . import _build


def _info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    info = _build.build_info()
    info["gpus"] = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if info["cuda_devices"] else []
    )
    if args.json:
        print(json.dumps(info, indent=2))
        return
    cuda = (
        f"compiled for {' '.join(info['cuda_archs'])} (CUDA runtime {info['cuda_runtime']})"
        if info["cuda_compiled"]
        else "not compiled in (CUDA tensors are solved on the CPU)"
    )
    print(f"rankseg {info['version']}")
    cpu = f"{info['cpu_instruction_sets']} (running {info['cpu_dispatched']})"
    print(f"  CPU kernels:   {cpu}, OpenMP, {info['openmp_threads']} threads")
    if info["cuda_compiled"] and info["cuda_unavailable_reason"]:
        cuda += f"; not used here: {info['cuda_unavailable_reason']}"
    print(f"  CUDA kernels:  {cuda}")
    print(f"  GPUs visible:  {', '.join(info['gpus']) or 'none'}")
    print(f"  torch:         {info['torch']}")


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from . import demo

    if args.output is not None:
        try:
            from . import _picture
        except ImportError:
            sys.exit("rankseg demo: writing the picture needs Pillow (pip install pillow), or pass --no-picture")
        try:
            _picture.image_format(args.output)  # refused before the work, not after
        except ValueError as e:
            parser.error(f"--output: {e}")
    result = demo.run()
    print(demo.report(result))
    if args.output is None:
        return
    try:
        _picture.render(result, args.output)
    except OSError as e:
        sys.exit(f"rankseg demo: cannot write {args.output}: {e.strerror or e}")
    print(f"picture: {args.output}")


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from . import _bench as bench

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    print(bench.run(torch.device(args.device), args.quick))


def _option(text: str) -> tuple[str, object]:
    """KEY=VALUE, the value read as JSON where it parses (numbers, true/false), else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. merge=gain), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    try:
        from . import evaluate
    except ImportError as e:
        sys.exit(f'rankseg evaluate needs NumPy ({e}): pip install "rankseg[evaluate]"')

    # Refuse outputs that cannot be written before the work, not after it.
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"{flag}: the folder of {path} does not exist")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            parser.error(f"--plot: the chart is a PNG; name it .png, got {args.plot}")
        try:
            from ._gains_plot import plot_gains
        except ImportError:
            sys.exit('rankseg evaluate: --plot needs Pillow: pip install "rankseg[evaluate]"')
    try:
        report = evaluate.evaluate(
            args.source,
            metric=args.metric,
            ignore_index=args.ignore_index,
            labels=args.labels,
            options=dict(args.option),
            fit_on=args.fit_on,
            workers=args.workers,
            device=args.device,
            progress=not args.no_progress,
        )
    except (ValueError, TypeError) as e:
        sys.exit(f"rankseg evaluate: {e}")
    print(evaluate.format_report(report, args.metric))
    if args.json:
        with open(args.json, "w") as f:
            f.write(evaluate.to_json(report) + "\n")
        print(f"JSON: {args.json}")
    if args.plot:
        plot_gains(report, args.metric, args.plot)
        print(f"plot: {args.plot}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="rankseg", description="RankSEG: masks that maximise expected Dice or IoU, instead of argmax."
    )
    top.add_argument("--version", action="version", version=f"rankseg {_build.version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="{info,demo,bench,evaluate,nnunet}")
    info = commands.add_parser("info", help="version, build (instruction sets, CUDA, OpenMP), torch, GPUs")
    info.add_argument("--json", action="store_true", help="print the build information as JSON")
    info.set_defaults(run=_info, parser=info)
    demo = commands.add_parser("demo", help="argmax vs RankSEG on a built-in synthetic scene (no network)")
    demo.add_argument(
        "--output",
        metavar="PATH",
        default="rankseg-demo.png",
        help="where to write the picture (.png or .jpg; default: %(default)s)",
    )
    demo.add_argument("--no-picture", dest="output", action="store_const", const=None, help="print the scores only")
    demo.set_defaults(run=_demo, parser=demo)
    bench = commands.add_parser("bench", help="time RankSEG against argmax / a 0.5 threshold on this machine")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default: cpu)")
    bench.add_argument("--quick", action="store_true", help="three small cases only")
    bench.set_defaults(run=_bench, parser=bench)
    evaluate = commands.add_parser(
        "evaluate", help="argmax vs RankSEG (and a fitted RankSEG) on a folder of saved model outputs and labels"
    )
    evaluate.add_argument("source", help="folder of .npz/.pt/.npy outputs (one per image), or a list file of them")
    evaluate.add_argument("--metric", choices=["dice", "iou"], default="dice", help="what RankSEG optimises")
    evaluate.add_argument("--ignore-index", type=int, metavar="N", help="truth label to leave out (e.g. 255)")
    evaluate.add_argument("--labels", metavar="DIR", help="folder of <name>.png/.npy labels for outputs without one")
    evaluate.add_argument("--fit-on", metavar="DIR", help="validation folder to fit RankSEG on; adds 'fitted'")
    evaluate.add_argument(
        "--option", type=_option, action="append", default=[], metavar="KEY=VALUE", help="a RankSEG argument"
    )
    evaluate.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default: 1)")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where RankSEG runs")
    evaluate.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    evaluate.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of per-class gains")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    evaluate.set_defaults(run=_evaluate, parser=evaluate)
    from .integration import nnunet  # imports nnU-Net, SimpleITK and NumPy only when the command runs

    nnunet.add_command(commands)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args, args.parser)


if __name__ == "__main__":
    main()
