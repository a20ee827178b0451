"""The ``derain-zoo weights`` command (and ``python -m derain_zoo.weights``): list what ships, export a checkpoint.

Rebuilding a model from a Lightning checkpoint needs the model registry; this module alone of the
weights package reaches up to it, and only when a checkpoint is exported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from derain_zoo.weights import cards, safetensors_format
from derain_zoo.weights.export import export_weights
from derain_zoo.weights.loading import load_payload, shape_problems
from derain_zoo.weights.lookup import Shipped, WeightsError, read_manifest, shipped, weights_dir


def module_from_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model a Lightning checkpoint was saved from (its hyper-parameters) with its weights."""
    from derain_zoo.registry import model_registry

    payload = load_payload(Path(path), str(path))
    alias = payload.get("derain_zoo_model")
    registry = model_registry()
    if alias not in registry:
        raise WeightsError(
            f"{path} is not a derain-zoo checkpoint (model stamp {alias!r}); train one with 'derain-zoo fit'"
        )
    # init_checkpoint would re-read a stage-1 file the state dict below already supersedes
    skip = {"init_checkpoint", "weights"}
    hparams = {
        key: value
        for key, value in payload.get("hyper_parameters", {}).items()
        if key not in skip and not key.startswith("_")
    }
    module = registry[alias](**hparams)
    problems = shape_problems(module.state_dict(), payload["state_dict"])
    if problems:
        raise WeightsError(f"checkpoint {path} does not match its own hyper-parameters ({'; '.join(problems[:3])})")
    module.load_state_dict(payload["state_dict"], strict=True)
    return module


def _score(entry: Shipped, split: str, metric: str, digits: int) -> str:
    value = (entry.manifest.get("scores") or {}).get(split, {}).get(metric)
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:.1f} MB" if size_bytes >= 2**20 else f"{size_bytes / 2**10:.0f} KB"


def provenance(entry: Shipped) -> str:
    """How the weights were made: an authors' release (repository and licence) or the zoo's recipe."""
    source = entry.manifest.get("source") or {}
    if source:
        return f"{source.get('repository', '?')} ({source.get('licence', 'licence unknown')})"
    return str(entry.manifest.get("recipe") or "-")


def format_table(entries: Sequence[Shipped]) -> str:
    """What ships, one row per file: model, name, size, and the manifest's headline scores."""
    if not entries:
        return f"no shipped weights in {weights_dir()}"
    header = (
        "model",
        "name",
        "size",
        "a1 PSNR-Y",
        "a1 SSIM-Y",
        "ra1 NIQE",
        "ra1 BRISQUE",
        "synthetic PSNR-Y",
        "made by",
    )
    rows = [
        (
            entry.model,
            entry.name,
            _size(int(entry.manifest["size_bytes"])) + ("" if entry.path.is_file() else " (file missing)"),
            _score(entry, "a1", "psnr_y", 2),
            _score(entry, "a1", "ssim_y", 4),
            _score(entry, "ra1", "niqe", 2),
            _score(entry, "ra1", "brisque", 2),
            _score(entry, "synthetic", "psnr_y", 2),
            provenance(entry),
        )
        for entry in entries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def _scores_arg(value: str) -> dict[str, Any]:
    """--scores takes inline JSON or a path to a JSON file."""
    text = Path(value).read_text() if not value.lstrip().startswith("{") else value
    try:
        scores = json.loads(text)
    except ValueError as error:
        raise WeightsError(f"--scores {value!r} is not JSON ({error})") from None
    if not isinstance(scores, dict):
        raise WeightsError('--scores must be a JSON object such as {"a1": {"psnr_y": 30.1}}')
    return scores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``weights`` lists what ships; ``weights export`` turns a Lightning checkpoint into shipped weights."""
    from derain_zoo import convert  # the authors' checkpoints (issue 29): a hook, the converters live there

    actions = parser.add_subparsers(dest="action", metavar="{list,export,convert,upgrade,cards}")
    actions.add_parser("list", help="list the shipped weights (the default)")
    for action, text in (
        ("upgrade", "rewrite every .pt of the weights folder as .safetensors (tensors unchanged), manifests and cards"),
        ("cards", "write the model card <alias>-<name>.md of every weights file from its manifest"),
    ):
        actions.add_parser(action, help=text).add_argument("--dir", default=None, help="default: the weights folder")
    export = actions.add_parser("export", help="write <alias>-<name>.safetensors, .json, .md from a checkpoint")
    export.add_argument("--ckpt", required=True, help="Lightning checkpoint saved by 'derain-zoo fit'")
    export.add_argument("--name", required=True, help="weights name, e.g. synthetic-cpu")
    export.add_argument("--out-dir", default=None, help="target folder (default: the shipped-weights folder)")
    export.add_argument(
        "--recipe", default=None, help="config that reproduces the weights, e.g. configs/cpu/j4rnet.yaml"
    )
    export.add_argument("--data-version", default=None, help="version of the training data")
    export.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the checkpoint's global step)"
    )
    export.add_argument("--wall-minutes", type=float, default=None, help="training wall time in minutes")
    export.add_argument("--scores", type=_scores_arg, default=None, help="JSON object or JSON file of measured scores")
    export.add_argument("--overwrite", action="store_true", help="replace existing files of that name")
    convert.add_parser(actions)


def run(args: argparse.Namespace) -> None:
    """Run the ``weights`` tool: print the listing, convert the authors' checkpoints, upgrade .pt sets to
    .safetensors or write cards, or export and print the weights path."""
    if args.action == "convert":
        from derain_zoo import convert

        convert.run(args)
        return
    if args.action in ("upgrade", "cards"):
        for entry in shipped(Path(args.dir) if args.dir else None):
            if args.action == "upgrade":
                print(safetensors_format.convert(entry))
            print(cards.write_card(read_manifest(entry.manifest_path)))
        return
    if args.action != "export":
        print(format_table(shipped()))
        return
    module = module_from_checkpoint(args.ckpt)
    steps = args.steps
    if steps is None:
        steps = int(torch.load(args.ckpt, map_location="cpu", weights_only=True).get("global_step", 0))
    path = export_weights(
        module,
        args.name,
        args.out_dir,
        args.recipe,
        args.data_version,
        steps,
        args.wall_minutes,
        args.scores,
        overwrite=args.overwrite,
    )
    print(path)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m derain_zoo.weights``: the same tool as ``derain-zoo weights``, errors in one line."""
    # the package's description, as 'derain-zoo weights --help' shows it
    description = importlib.import_module("derain_zoo.weights").__doc__
    parser = argparse.ArgumentParser(prog="python -m derain_zoo.weights", description=description)
    add_arguments(parser)
    try:
        run(parser.parse_args(argv))
    except (WeightsError, OSError) as error:
        raise SystemExit(f"derain-zoo weights: error: {' '.join(str(error).split())}") from None
