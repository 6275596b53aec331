"""The ``rankseg`` command (also ``python -m rankseg``): ``info``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from . import _build


def _info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    info = _build.build_info()
    info["cuda_kernels"] = _build.cuda_available()
    info["gpus"] = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if info["cuda_devices"] else []
    )
    if args.json:
        print(json.dumps(info, indent=2))
        return
    cuda = (
        f"compiled for {' '.join(info['cuda_archs'])} (CUDA runtime {info['cuda_runtime']})"
        if info["cuda"]
        else "not compiled in (CUDA tensors are solved on the CPU)"
    )
    print(f"rankseg {info['version']}")
    print(f"  CPU kernels:   {info['cpu_instruction_sets']}, OpenMP, {info['openmp_threads']} threads")
    print(f"  CUDA kernels:  {cuda}")
    print(f"  GPUs visible:  {', '.join(info['gpus']) or 'none'}")
    print(f"  torch:         {info['torch']}")


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from . import demo

    result = demo.run()
    print(demo.report(result))
    if args.output is None:
        return
    try:
        from . import _picture
    except ImportError:
        sys.exit("rankseg demo: writing the picture needs Pillow (pip install pillow), or pass --no-picture")
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="rankseg", description="RankSEG: masks that maximise expected Dice or IoU, instead of argmax."
    )
    top.add_argument("--version", action="version", version=f"rankseg {_build.version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="{info,demo,bench}")
    info = commands.add_parser("info", help="version, build (instruction sets, CUDA, OpenMP), torch, GPUs")
    info.add_argument("--json", action="store_true", help="print the build information as JSON")
    info.set_defaults(run=_info, parser=info)
    demo = commands.add_parser("demo", help="argmax vs RankSEG on a built-in synthetic scene (no network)")
    demo.add_argument(
        "--output",
        metavar="PATH",
        default="rankseg-demo.png",
        help="where to write the picture (PNG; default: %(default)s)",
    )
    demo.add_argument("--no-picture", dest="output", action="store_const", const=None, help="print the scores only")
    demo.set_defaults(run=_demo, parser=demo)
    bench = commands.add_parser("bench", help="time RankSEG against argmax / a 0.5 threshold on this machine")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default: cpu)")
    bench.add_argument("--quick", action="store_true", help="three small cases only")
    bench.set_defaults(run=_bench, parser=bench)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args, args.parser)


if __name__ == "__main__":
    main()
