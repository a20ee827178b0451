"""``derain-zoo export``: write a model with its weights as ONNX, TorchScript or a ``torch.export`` program."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from derain_zoo.export.writer import FORMATS, ExportError, export_model
from derain_zoo.models.base import DerainModule

SIZE = re.compile(r"(\d+)x(\d+)")


def parse_size(text: str) -> tuple[int, int]:
    """``480x640`` -> (480, 640): height first, as the zoo writes frame sizes."""
    match = SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"--size takes HEIGHTxWIDTH, e.g. 480x640, got {text!r}")
    return int(match[1]), int(match[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model (shipped weights or a checkpoint), the format, the size and the output file."""
    parser.add_argument("--model", help="model name (estinet, rmfd, raintrn, ddsa, j4rnet, s2vd)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", help="shipped weights name (see 'derain-zoo weights'), a .pt / .ckpt path, or random (untrained)"
    )
    source.add_argument("--ckpt", help="a Lightning checkpoint written by 'derain-zoo fit' (names its own model)")
    parser.add_argument("--format", default="onnx", choices=list(FORMATS), help="file format (default: onnx)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(480, 640),
        help="HEIGHTxWIDTH the model is traced at (default 480x640); other sizes work where the file's record "
        "says dynamic",
    )
    parser.add_argument("--output", help="file to write (default: <model>-<weights><suffix of the format>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file that export wrote")


def load_model(args: argparse.Namespace) -> tuple[DerainModule, str]:
    """The model to export and the name of its weights."""
    from derain_zoo.registry import model_alias, model_registry
    from derain_zoo.weights import RANDOM, module_from_checkpoint

    if args.ckpt:
        module = module_from_checkpoint(args.ckpt)
        return module, args.ckpt  # type: ignore[return-value]
    alias = model_alias(args.model)
    if alias is None:
        raise ExportError(f"--model {args.model}: unknown model; valid names: {', '.join(model_registry())}")
    cls = model_registry()[alias]
    if not cls.trainable:
        raise ExportError(f"model '{alias}' has no weights to export (it has no network)")
    if args.weights == RANDOM:  # untrained on purpose (smoke tests), as --model.weights=random
        return cls(weights=RANDOM), RANDOM
    return cls.from_weights(args.weights), args.weights


def run(args: argparse.Namespace) -> None:
    """Export and print the path written."""
    if not args.ckpt and not args.model:
        raise ExportError("--weights needs --model (the model they belong to)")
    model, weights = load_model(args)
    from derain_zoo.weights import is_path

    name = Path(weights).stem if is_path(weights) else weights
    output = args.output or f"{model.alias}-{name}{FORMATS[args.format]}"
    path = export_model(model, args.format, output, args.size, args.overwrite, record={"weights": weights})
    print(path, file=sys.stdout)
