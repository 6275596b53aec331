"""RankSEG after nnU-Net: the probabilities ``nnUNetv2_predict --save_probabilities`` saves, turned into
segmentation files written as nnU-Net writes its own, with RankSEG's decision in place of argmax (or of the
0.5 threshold of region-based models).

nnU-Net saves, per case, ``<case>.npz`` holding ``probabilities`` ``(C, z, y, x)`` in the image's own geometry
(resampled back to its spacing, the crop undone, the axes transposed back), ``<case>.pkl`` (the image's
properties) and, once per folder, the model's ``dataset.json`` and ``plans.json``. Files are written through
nnU-Net's own image writer where nnunetv2 is installed, else through SimpleITK or nibabel as its
``SimpleITKIO`` and ``NibabelIO`` do.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from tqdm import tqdm

from .._rankseg import RankSEG
from ..fitting import FittedRankSEG

if TYPE_CHECKING:
    import numpy as np

# numpy, SimpleITK, nibabel and nnunetv2 are imported where they are used: the rankseg command builds this
# sub-command's parser on every call, and `rankseg info` must not need them.

__all__ = ["segment_folder", "add_command", "main"]

Segmenter = Union[RankSEG, FittedRankSEG]
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class _Model:
    """What nnU-Net's label manager reads from dataset.json. Label-based: channel ``i`` is label ``labels[i]``
    (the labels sorted, ``ignore`` left out). Region-based: channel ``i`` is the ``i``-th foreground region of
    ``labels`` (in file order), and voxels in it are labelled ``region_order[i]``, later regions overwriting
    earlier ones."""

    file_ending: str
    labels: tuple[int, ...]
    region_order: tuple[int, ...] | None
    channels: int

    @property
    def output_mode(self) -> str:
        return "multiclass" if self.region_order is None else "multilabel"

    @property
    def dtype(self) -> str:
        """The array nnU-Net fills before writing: uint8 below 255 foreground labels."""
        return "uint8" if len([label for label in self.labels if label != 0]) < 255 else "uint16"


def _read_model(dataset: dict, name: str) -> _Model:
    """The labels or regions of a dataset.json (dict), as ``nnunetv2``'s ``LabelManager`` reads them; errors
    name the file ``name``."""
    labels = dataset.get("labels")
    if not isinstance(labels, dict) or "background" not in labels:
        raise ValueError(f"{name} has no 'labels' with a 'background' entry; give the model's own dataset.json")
    if "file_ending" not in dataset:
        raise ValueError(f"{name} has no 'file_ending' (e.g. '.nii.gz'); give the model's own dataset.json")
    values = {key: value for key, value in labels.items() if key != "ignore"}
    flat = {int(v) for value in values.values() for v in (value if isinstance(value, (list, tuple)) else [value])}
    if not any(isinstance(value, (list, tuple)) and len(value) > 1 for value in values.values()):
        return _Model(dataset["file_ending"], tuple(sorted(flat)), None, len(flat))
    regions = [value for value in values.values() if set(value if isinstance(value, (list, tuple)) else [value]) != {0}]
    order = dataset.get("regions_class_order")
    if order is None:
        raise ValueError(
            f"{name} declares regions (labels that are lists) but no 'regions_class_order'; nnU-Net needs it to "
            "turn regions into labels: give the dataset.json the model was trained with"
        )
    if len(order) != len(regions):
        raise ValueError(
            f"{name} has {len(order)} entries in 'regions_class_order' for {len(regions)} foreground regions; "
            "they must match, one label per region"
        )
    return _Model(dataset["file_ending"], tuple(sorted(flat)), tuple(int(label) for label in order), len(regions))


def segment_folder(
    input_dir: PathLike,
    output_dir: PathLike,
    *,
    metric: str = "dice",
    segmenter: Segmenter | None = None,
    dataset_json: PathLike | dict | None = None,
    plans: PathLike | dict | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> list[Path]:
    """Writes one segmentation per ``<case>.npz`` of ``input_dir`` (``nnUNetv2_predict --save_probabilities``
    output) to ``output_dir/<case><file_ending>``, with the name, dtype and geometry nnU-Net gives its own.

    Label-based models get ``RankSEG(output_mode="multiclass")`` labels, mapped to the dataset's label values;
    region-based models (``regions_class_order`` in dataset.json) get ``RankSEG(output_mode="multilabel")``
    masks of the region channels, then nnU-Net's ordered overwrite: each region's voxels take its label, later
    regions over earlier ones. The dataset.json and plans.json read are written to ``output_dir`` too, as
    ``nnUNetv2_predict`` does (its postprocessing reads them there).

    Args:
        input_dir: The folder of ``<case>.npz`` (``probabilities`` ``(C, z, y, x)``) and ``<case>.pkl``.
        output_dir: Where to write; created if missing. May be ``input_dir`` (with ``overwrite=True``, to
            replace nnU-Net's argmax segmentations).
        metric: ``"dice"`` or ``"iou"`` (or ``"acc"`` with ``solver="argmax"``/``"TR"``, nnU-Net's own rule).
        segmenter: A ready :class:`rankseg.RankSEG` or fitted predictor, instead of ``metric`` and ``options``;
            its ``output_mode`` must be the model's (multiclass for labels, multilabel for regions).
        dataset_json: The model's dataset.json (a path or its dict); by default ``input_dir/dataset.json``,
            which ``nnUNetv2_predict`` writes.
        plans: The model's plans.json (a path or its dict); by default ``input_dir/plans.json`` where present.
            It names nnU-Net's image writer and axis order; without it the writer follows the properties
            (``sitk_stuff``: ``SimpleITKIO``, ``nibabel_stuff``: ``NibabelIO``).
        overwrite: Replace files already in ``output_dir``; otherwise they are an error, before any work.
        progress: A progress bar on stderr.
        **options: Arguments of :class:`rankseg.RankSEG` (``solver``, ``smooth``, ``pruning_prob``, ...), but
            not ``output_mode``, which the model sets.

    Returns:
        The segmentation files written, in case order (sorted by name).

    ``.pkl`` files are read with :mod:`pickle`, as nnU-Net reads them: read only folders you trust.
    """
    source, target = Path(input_dir), Path(output_dir)
    if not source.is_dir():
        raise ValueError(f"input_dir must be a folder of nnU-Net outputs, got {str(source)!r}, which is not one")
    cases = sorted(source.glob("*.npz"))
    if not cases:
        raise ValueError(
            f"input_dir {source} holds no <case>.npz: run nnUNetv2_predict with --save_probabilities to save them"
        )
    dataset, dataset_name = _json(dataset_json, source / "dataset.json", "dataset_json")
    if dataset is None:
        raise ValueError(
            f"no dataset.json in {source} (nnUNetv2_predict writes one beside the probabilities): pass "
            "dataset_json= (--dataset-json), the model's dataset.json from its results folder"
        )
    plan, plans_name = _json(plans, source / "plans.json", "plans")
    model = _read_model(dataset, dataset_name)
    decide = _segmenter(segmenter, metric, options, model)
    outputs = [target / (npz.stem + model.file_ending) for npz in cases]
    copies = {target / "dataset.json": dataset, target / "plans.json": plan}
    copies = {path: d for path, d in copies.items() if d is not None and not _same_file(path, source / path.name)}
    existing = [path for path in [*outputs, *copies] if path.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{existing[0]} exists ({len(existing)} of the files to write do): pass overwrite=True (--overwrite) "
            "to replace them, or choose another output_dir"
        )
    transpose_back = None if plan is None else plan.get("transpose_backward")
    target.mkdir(parents=True, exist_ok=True)
    for npz, output in tqdm(
        zip(cases, outputs), total=len(cases), unit="case", desc="rankseg nnunet", file=sys.stderr, disable=not progress
    ):
        probs, properties = _load_case(npz, model, transpose_back)
        segmentation = _segmentation(probs, model, decide, npz)
        del probs  # the largest array of a case: freed before the next one is read
        writer = _writer_name(plan, plans_name, properties)
        _write(segmentation, output, properties, writer, model.file_ending, npz.with_suffix(".pkl"))
    for path, content in copies.items():  # last: a run that fails on its first case leaves nothing behind
        path.write_text(json.dumps(content, indent=4) + "\n")  # as nnU-Net's save_json writes it
    return outputs


def _json(value: object, default: Path, name: str) -> tuple[dict | None, str]:
    """A JSON file's dict (or the dict given) and the name errors use for it; None where the default is absent."""
    if isinstance(value, dict):
        return value, name
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path or a dict, got {type(value).__name__} {value!r}")
    path = default if value is None else Path(value)
    if value is None and not path.is_file():
        return None, str(path)
    try:
        content = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{name}: cannot read {path}: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{name}: {path} is not JSON ({error})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{name}: {path} holds a JSON {type(content).__name__}, not an object")
    return content, str(path)


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def _segmenter(segmenter: object, metric: str, options: dict[str, Any], model: _Model) -> Segmenter:
    kind = "label-based" if model.region_order is None else "region-based"
    if segmenter is None:
        if "output_mode" in options:
            raise TypeError(
                "output_mode is set by the model (multiclass for label-based, multilabel for region-based "
                "models, which have regions_class_order in dataset.json); leave it out"
            )
        segmenter = RankSEG(metric=metric, output_mode=model.output_mode, **options)  # type: ignore[arg-type]
    elif options or metric != "dice":
        given = sorted(options) + (["metric"] if metric != "dice" else [])
        raise TypeError(
            f"give either segmenter or RankSEG options, not both: got segmenter and {', '.join(given)}; set the "
            "options on the segmenter instead"
        )
    if not isinstance(segmenter, (RankSEG, FittedRankSEG)):
        raise TypeError(
            "segmenter must be a rankseg.RankSEG or a rankseg.fitting.FittedRankSEG, got "
            f"{type(segmenter).__name__} {segmenter!r}"
        )
    core = segmenter if isinstance(segmenter, RankSEG) else segmenter.segmenter
    if core.output_mode != model.output_mode:
        raise ValueError(
            f"the segmenter has output_mode={core.output_mode!r}, but this {kind} model needs "
            f"output_mode={model.output_mode!r}"
        )
    if model.region_order is None and core.options.unassigned_policy == "void":
        raise ValueError(
            "unassigned_policy='void' labels voxels with void_index, which nnU-Net segmentations have no label "
            "for; use unassigned_policy='max_score' (the default) or 'argmax'"
        )
    return segmenter


def _load_case(npz: Path, model: _Model, transpose_back: list[int] | None) -> tuple[np.ndarray, dict]:
    """The probabilities and properties of one case, checked against the model and each other."""
    import numpy as np

    pkl = npz.with_suffix(".pkl")
    if not pkl.is_file():
        raise ValueError(
            f"{npz} has no {pkl.name} beside it; nnUNetv2_predict --save_probabilities writes both, and the "
            "properties in it give the segmentation's geometry"
        )
    with np.load(npz, allow_pickle=False) as data:
        if "probabilities" not in data.files:
            raise ValueError(f"{npz} holds {data.files}, not the 'probabilities' nnU-Net saves")
        probs = data["probabilities"]
    with open(pkl, "rb") as f:
        properties = pickle.load(f)
    shape = tuple(probs.shape)
    if not np.issubdtype(probs.dtype, np.floating) or probs.ndim != 4:
        raise ValueError(f"{npz}: probabilities must be floating point (C, z, y, x), got {probs.dtype} {shape}")
    if shape[0] != model.channels:
        what = "labels" if model.region_order is None else "foreground regions"
        raise ValueError(
            f"{npz} has {shape[0]} channels, but dataset.json declares {model.channels} {what}; give the "
            "dataset.json of the model that predicted it"
        )
    before = properties.get("shape_before_cropping") if isinstance(properties, dict) else None
    if before is None:
        raise ValueError(f"{pkl} holds no shape_before_cropping: not the properties nnU-Net saves with a case")
    # nnU-Net saves probabilities transposed back to the image's axes (plans' transpose_backward); without
    # the plans, the sizes can be compared but not their order.
    if transpose_back:
        expected = [int(before[i]) for i in transpose_back]
        matches = list(shape[1:]) == expected
    else:
        expected = [int(s) for s in before]
        matches = sorted(shape[1:]) == sorted(expected)
    if not matches:
        raise ValueError(
            f"{npz} has probabilities of spatial shape {shape[1:]}, but {pkl.name} gives the image shape "
            f"{tuple(expected)}; are the two from one case?"
        )
    return probs, properties


def _segmentation(probs: np.ndarray, model: _Model, segmenter: Segmenter, npz: Path) -> np.ndarray:
    """nnU-Net's label array (uint8, or uint16 for 255 foreground labels or more) from RankSEG's decision."""
    import numpy as np
    import torch

    try:
        decided = segmenter(torch.from_numpy(probs).unsqueeze(0))[0].numpy()  # the core solves batches
    except ValueError as error:  # rankseg's value errors (NaN, logits), said of this file
        raise ValueError(f"{npz}: {error}") from error
    if model.region_order is None:
        return np.asarray(model.labels, dtype=model.dtype)[decided]  # channel i is label labels[i]
    segmentation = np.zeros(probs.shape[1:], dtype=model.dtype)
    for mask, label in zip(decided, model.region_order):  # later regions overwrite earlier ones, as in nnU-Net
        segmentation[mask] = label
    return segmentation


def _writer_name(plan: dict | None, plans_name: str, properties: dict) -> str | None:
    """The nnU-Net reader/writer the case was read with: the plans' own, else the one its properties come from;
    None for others (PNG, TIFF), whose writer nnU-Net picks by file ending."""
    if plan is not None:
        if "image_reader_writer" not in plan:
            raise ValueError(f"{plans_name} has no 'image_reader_writer'; give the model's own plans.json")
        return str(plan["image_reader_writer"])
    if "sitk_stuff" in properties:
        return "SimpleITKIOWithReorient" if "original_orientation" in properties["sitk_stuff"] else "SimpleITKIO"
    if "nibabel_stuff" in properties:
        return "NibabelIOWithReorient" if "reoriented_affine" in properties["nibabel_stuff"] else "NibabelIO"
    return None


def _nnunet_registry() -> Any:
    """nnU-Net's reader/writer registry, or None when nnunetv2 is not installed."""
    try:
        from nnunetv2.imageio import reader_writer_registry
    except ImportError:
        return None
    return reader_writer_registry


def _write(segmentation: np.ndarray, path: Path, properties: dict, writer: str | None, ending: str, pkl: Path) -> None:
    registry = _nnunet_registry()
    if registry is not None:
        try:
            if writer is None:
                cls = registry.determine_reader_writer_from_file_ending(ending, verbose=False)
            else:
                cls = registry.recursive_find_reader_writer_by_name(writer)
        except RuntimeError as error:  # nnU-Net's "unable to find" errors
            raise ValueError(f"nnU-Net has no image writer {writer or ending!r}: {error}") from error
        write = cls().write_seg
    elif writer in _WRITERS:
        write = _WRITERS[writer]
    else:
        raise ImportError(
            f"writing the segmentations of a model read with {writer or ending!r} needs nnU-Net: pip install "
            "nnunetv2 (without it, rankseg writes what SimpleITKIO and NibabelIO write)"
        )
    try:
        write(segmentation, str(path), properties)
    except KeyError as error:
        raise ValueError(f"{pkl} lacks {error}, which the {writer or ending} writer needs") from error
    except ImportError as error:  # rankseg's own writers, without SimpleITK or nibabel
        raise ImportError(f"writing {writer} files needs nnunetv2 or {error.name}: pip install nnunetv2") from error


def _write_sitk(segmentation: np.ndarray, path: str, properties: dict, *, reorient: bool = False) -> None:
    """As nnU-Net's SimpleITKIO(WithReorient).write_seg."""
    import numpy as np
    import SimpleITK as sitk

    geometry = properties["sitk_stuff"]
    if len(geometry["spacing"]) == 2:  # 2-D images are handled as (1, y, x)
        segmentation = segmentation[0]
    dtype = np.uint8 if segmentation.max() < 255 else np.uint16
    image = sitk.GetImageFromArray(segmentation.astype(dtype, copy=False))
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    if reorient:  # back from the RAS orientation the image was read in
        image = sitk.DICOMOrient(image, geometry["original_orientation"])
    sitk.WriteImage(image, path, True)


def _write_nibabel(segmentation: np.ndarray, path: str, properties: dict, *, reorient: bool = False) -> None:
    """As nnU-Net's NibabelIO(WithReorient).write_seg: nibabel's axes are SimpleITK's reversed."""
    import nibabel
    import numpy as np
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

    geometry = properties["nibabel_stuff"]
    data = segmentation.transpose((2, 1, 0)).astype(np.uint8 if segmentation.max() < 255 else np.uint16, copy=False)
    if not reorient:
        nibabel.save(nibabel.Nifti1Image(data, affine=geometry["original_affine"]), path)
        return
    image = nibabel.Nifti1Image(data, affine=geometry["reoriented_affine"])
    back = ornt_transform(axcodes2ornt("RAS"), io_orientation(geometry["original_affine"]))
    nibabel.save(image.as_reoriented(back), path)


_WRITERS = {
    "SimpleITKIO": _write_sitk,
    "SimpleITKIOWithReorient": lambda s, p, props: _write_sitk(s, p, props, reorient=True),
    "NibabelIO": _write_nibabel,
    "NibabelIOWithReorient": lambda s, p, props: _write_nibabel(s, p, props, reorient=True),
}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input_dir",
        metavar="INPUT_DIR",
        help="folder of <case>.npz and <case>.pkl from nnUNetv2_predict --save_probabilities",
    )
    parser.add_argument(
        "output_dir", metavar="OUTPUT_DIR", help="where to write the segmentations (created if missing)"
    )
    parser.add_argument(
        "--metric", choices=["dice", "iou"], default="dice", help="what RankSEG optimises (default: dice)"
    )
    parser.add_argument(
        "--dataset-json", metavar="PATH", help="the model's dataset.json (default: INPUT_DIR/dataset.json)"
    )
    parser.add_argument("--plans", metavar="PATH", help="the model's plans.json (default: INPUT_DIR/plans.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace files already in OUTPUT_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    try:
        written = segment_folder(
            args.input_dir,
            args.output_dir,
            metric=args.metric,
            dataset_json=args.dataset_json,
            plans=args.plans,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (ValueError, TypeError, ImportError) as error:
        sys.exit(f"rankseg nnunet: {error}")
    print(f"{len(written)} segmentation{'' if len(written) == 1 else 's'} written to {args.output_dir}")


DESCRIPTION = (
    "RankSEG on the probabilities of nnUNetv2_predict --save_probabilities: one segmentation per case, written "
    "as nnU-Net writes its own (same name, dtype and geometry), with RankSEG in place of argmax."
)


def add_command(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``nnunet`` command to the ``rankseg`` command's subparsers; returns its parser."""
    command = subparsers.add_parser(
        "nnunet", help="RankSEG on nnUNetv2_predict --save_probabilities outputs", description=DESCRIPTION
    )
    _add_arguments(command)
    command.set_defaults(run=_run, parser=command)
    return command


def main(argv: list[str] | None = None) -> None:
    """``rankseg nnunet``'s arguments (``INPUT_DIR OUTPUT_DIR [--metric ...]``), without the command name."""
    parser = argparse.ArgumentParser(prog="rankseg nnunet", description=DESCRIPTION)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    _run(args, parser)


if __name__ == "__main__":
    main()
