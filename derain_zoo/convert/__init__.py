"""Convert the authors' released checkpoints into the zoo's weights format (``derain-zoo weights convert``).

    derain-zoo weights convert --model=estinet --from=C/checkpoints_best_221.pth.tar \\
        --from=F/checkpoints_best_221.pth.tar --output=estinet-ntu.pt

Each model's module (``estinet``, ``ddsa``, ``rmfd``, ``raintrn``) says how the authors' state dict
maps onto the zoo network built as the authors' variant (``variant="code"``, the model README's
"Variants"); ``benchmarks/official_parity.py`` proves, with the authors' own source, that the
converted network computes their function. The written ``.pt`` keeps fp32 tensors, and its
manifest names the repository and every source file with its sha256.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from torch import nn

from derain_zoo.convert.common import (
    Release,
    build_state,
    check_keys,
    check_output,
    load_file,
    tensor_dict,
    write_converted,
)
from derain_zoo.weights import WeightsError

CONVERTERS = ("ddsa", "estinet", "raintrn", "rmfd")


def converter(alias: str) -> ModuleType:
    """The converter module of model ``alias``; the error lists the models that have one."""
    if alias not in CONVERTERS:
        raise WeightsError(f"no converter for model '{alias}'; converters exist for {', '.join(CONVERTERS)}")
    return importlib.import_module(f"derain_zoo.convert.{alias}")


def read_release(spec: ModuleType, paths: Sequence[str | Path]) -> Release:
    """The authors' tensors of every file (a model may split its release over several), with their hashes."""
    release = Release({})
    for path in paths:
        payload, sha256 = load_file(path)
        extract = getattr(spec, "extract", tensor_dict)
        tensors = extract(payload, path)
        clash = sorted(set(tensors) & set(release.tensors))
        if clash:
            raise WeightsError(f"checkpoint {path} repeats keys of an earlier --from file ({clash[0]}, ...)")
        release.tensors.update(tensors)
        release.files.append({"file": Path(path).name, "sha256": sha256})
    return release


def convert_release(alias: str, release: Release, label: str) -> nn.Module:
    """The zoo model (authors' variant) holding the release's weights, every key and shape checked."""
    from derain_zoo.registry import model_registry

    spec = converter(alias)
    args = spec.init_args(release)
    module = model_registry()[alias](**args)
    layout = spec.layout(module.network, args)
    check_keys(layout, release.tensors, label)
    module.network.load_state_dict(build_state(layout, release.tensors, module.network, label), strict=True)
    return module.eval()


def convert(alias: str, sources: Sequence[str | Path], output: str | Path, overwrite: bool = False) -> Path:
    """Convert the authors' files ``sources`` for model ``alias`` into ``output`` (.pt) and its manifest."""
    if not sources:
        raise WeightsError("pass the authors' checkpoint with --from=<file>")
    check_output(output, sources, overwrite)  # before reading hundreds of MB
    spec = converter(alias)
    release = read_release(spec, sources)
    module = convert_release(alias, release, ", ".join(str(path) for path in sources))
    source = {**spec.describe(release), "files": release.files}
    return write_converted(module, output, source, sources, overwrite)


def add_parser(actions: argparse._SubParsersAction) -> None:
    """The ``convert`` action of ``derain-zoo weights``."""
    parser = actions.add_parser("convert", help="convert the authors' released checkpoint into the zoo's format")
    parser.add_argument("--model", required=True, choices=CONVERTERS, help="zoo model alias")
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        help="authors' checkpoint; repeat for a release split over files (ESTINet: the C and the F file)",
    )
    parser.add_argument("--output", required=True, help="the converted weights, a .pt (its .json manifest beside)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> None:
    """Convert and print the written .pt path."""
    print(convert(args.model, args.sources, args.output, args.overwrite))
