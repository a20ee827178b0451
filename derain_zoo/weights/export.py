"""Exporting weights: a module's state dict in fp16 as safetensors, its manifest and its model card, each
written atomically beside the others."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from derain_zoo.weights import cards, safetensors_format
from derain_zoo.weights.lookup import RANDOM, WeightsError, _sha256, is_path, jsonable, read_manifest, weights_dir

SIZE_LIMIT_BYTES = 10 * 1024 * 1024  # the most one shipped file may weigh (CONTRIBUTING.md, Weights)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name == RANDOM or is_path(name) or name.lower().endswith(".json"):
        raise WeightsError(
            f"weights name {name!r} is not usable: letters, digits, '.', '_' and '-' only, not '{RANDOM}', "
            "no file suffix (e.g. synthetic-cpu)"
        )


def fp16_state_dict(module: nn.Module, half: bool = True) -> dict[str, Tensor]:
    """The module's state dict with floating tensors in fp16, each in its own storage (no shared views).

    ``half=False`` keeps each tensor's own precision: a converted release is shipped bit for bit.
    """
    state: dict[str, Tensor] = {}
    for key, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu()
        tensor = tensor.half() if tensor.is_floating_point() and half else tensor
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"tensor {key} is not finite in fp16 (overflow or NaN); weights not exported")
        state[key] = tensor.contiguous().clone()
    return state


def architecture_of(module: nn.Module) -> dict[str, Any]:
    """The constructor arguments the weights need (the class's ``architecture_args``), from its hparams."""
    names = getattr(type(module), "architecture_args", ())
    hparams = getattr(module, "hparams", {})
    missing = [name for name in names if name not in hparams]
    if missing:
        raise WeightsError(f"model '{module.alias}' did not record {', '.join(missing)} in its hyper-parameters")
    return {name: jsonable(hparams[name]) for name in names}


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: an interrupted export never leaves a half file in place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def export_weights(
    module: nn.Module,
    name: str,
    out_dir: str | Path | None = None,
    recipe: str | None = None,
    data_version: str | None = None,
    steps: int | None = None,
    wall_minutes: float | None = None,
    scores: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    source: Mapping[str, Any] | None = None,
    half: bool = True,
) -> Path:
    """Write ``<alias>-<name>.safetensors`` (fp16), its manifest ``.json`` and card ``.md``; return the weights file.

    ``out_dir`` defaults to the shipped-weights folder; existing files are kept unless ``overwrite``.
    The sha256 and size in the manifest are taken from the bytes written. ``source`` describes an
    authors' release the weights were converted from (repository, licence, file, sha256), which is
    then the manifest's provenance instead of a recipe; ``half=False`` keeps fp32 (a release kept exact).
    """
    _check_name(name)
    alias = getattr(module, "alias", "")
    if not alias:
        raise WeightsError(f"{type(module).__name__} has no zoo alias; export a registered derain-zoo model")
    folder = Path(out_dir) if out_dir is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{alias}-{name}"
    pt, manifest_path = stem.with_suffix(safetensors_format.SUFFIX), stem.with_suffix(".json")
    existing = [str(path) for path in (pt, manifest_path, stem.with_suffix(".md")) if path.exists()]
    if existing and not overwrite:
        raise WeightsError(f"{existing[0]} exists; pass overwrite=True (--overwrite) to replace it")
    parameters = safetensors_format.parameter_count(module)
    described = {"format": "pt", "model": alias, "name": name, "architecture": architecture_of(module)}
    data = safetensors_format.to_bytes(fp16_state_dict(module, half), {**described, "parameters": parameters})
    _write_atomic(pt, data)
    manifest = {
        "model": alias,
        "name": name,
        "file": pt.name,
        "sha256": _sha256(pt.read_bytes()),
        "size_bytes": pt.stat().st_size,
        "parameters": parameters,
        "init_args": architecture_of(module),
        "recipe": recipe,
        **({"source": jsonable(dict(source))} if source else {}),
        "data_version": data_version,
        "steps": steps,
        "wall_minutes": wall_minutes,
        "scores": jsonable(dict(scores or {})),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    cards.write_card(read_manifest(manifest_path))
    if len(data) > SIZE_LIMIT_BYTES:
        print(
            f"warning: {pt} is {len(data) / 2**20:.1f} MB, over the {SIZE_LIMIT_BYTES // 2**20} MB a shipped "
            "file may weigh",
            file=sys.stderr,
        )
    return pt
