"""Shipped weights: find, verify, load, export and list the weights trained by the zoo's own recipes.

Each shipped set is two files in this folder (or in ``$DERAIN_ZOO_WEIGHTS_DIR``):
``<alias>-<name>.pt``, a ``torch.save`` of ``{"state_dict": ..., "model": alias}`` with floating
tensors in fp16 (readable with ``torch.load(weights_only=True)``), and ``<alias>-<name>.json``, its
manifest (sha256, size, the architecture arguments the weights need, recipe, data version, steps,
wall time, scores). A model takes them as ``weights=<name>`` or ``weights=<path>`` (an exported
``.pt`` or a Lightning ``.ckpt``); nothing is loaded without checking the hash and every shape first,
so a damaged or mismatched file fails with one line naming it instead of giving wrong output.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

WEIGHTS_DIR_ENV = "DERAIN_ZOO_WEIGHTS_DIR"
RANDOM = "random"  # the explicit opt-in for untrained weights (smoke tests)
SIZE_LIMIT_BYTES = 10 * 1024 * 1024  # the most one shipped file may weigh (CONTRIBUTING.md, Weights)
PATH_SUFFIXES = (".pt", ".pth", ".ckpt")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class WeightsError(ValueError):
    """Weights that cannot be used as asked; the message is one line naming the file."""


@dataclass(frozen=True)
class Shipped:
    """One shipped weights file and its manifest."""

    manifest: dict[str, Any]
    manifest_path: Path

    @property
    def path(self) -> Path:
        return self.manifest_path.with_name(str(self.manifest["file"]))

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def init_args(self) -> dict[str, Any]:
        return dict(self.manifest.get("init_args") or {})


# ---------------------------------------------------------------------------------------------- lookup
def weights_dir() -> Path:
    """Where shipped weights are looked up: ``$DERAIN_ZOO_WEIGHTS_DIR`` if set (tests, private sets), else here."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parent


def is_path(value: str) -> bool:
    """A path names a folder or a weights/checkpoint suffix; anything else is a shipped name."""
    return "/" in value or os.sep in value or value.lower().endswith(PATH_SUFFIXES)


def read_manifest(path: Path) -> Shipped:
    """Read one manifest, refusing (in one line) one that lacks the fields loading relies on."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"weights manifest {path} is unreadable ({type(error).__name__})") from None
    missing = [key for key in ("model", "name", "file", "sha256", "size_bytes") if key not in manifest]
    if not isinstance(manifest, dict) or missing:
        raise WeightsError(f"weights manifest {path} lacks {', '.join(missing) or 'a JSON object'}")
    return Shipped(manifest, path)


def shipped(directory: Path | None = None) -> list[Shipped]:
    """Every manifest in the weights folder, by model then name."""
    folder = directory or weights_dir()
    entries = [read_manifest(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(entries, key=lambda entry: (entry.model, entry.name))


def find_shipped(alias: str, name: str, directory: Path | None = None) -> Shipped:
    """The shipped weights called ``name`` for model ``alias``; the error lists what does ship."""
    folder = directory or weights_dir()
    path = folder / f"{alias}-{name}.json"
    if path.is_file():
        entry = read_manifest(path)
        if entry.model != alias:
            raise WeightsError(f"weights manifest {path} is for model '{entry.model}', not '{alias}'")
        return entry
    names = [entry.name for entry in shipped(folder) if entry.model == alias]
    available = f"shipped for it: {', '.join(names)}" if names else "none ship for it"
    raise WeightsError(
        f"no shipped weights '{name}' for model '{alias}' in {folder} ({available}; 'derain-zoo weights' lists "
        "them); pass a shipped name or a path to a .ckpt / .pt file"
    )


def manifest_for(alias: str, value: str) -> Shipped | None:
    """The manifest behind ``weights=value``: a shipped name's, or the one written beside an exported .pt."""
    if not is_path(value):
        return find_shipped(alias, value)
    beside = Path(value).with_suffix(".json")
    if Path(value).suffix == ".pt" and beside.is_file():
        entry = read_manifest(beside)
        if entry.manifest["file"] != Path(value).name:
            return None
        if entry.model != alias:  # before its init_args are read as this model's ("need extractor_blocks=2, ...")
            raise WeightsError(
                f"weights file {value} holds model '{entry.model}', not '{alias}'; pass --model={entry.model}"
            )
        return entry
    return None


# ---------------------------------------------------------------------------------------------- loading
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified_bytes(entry: Shipped) -> bytes:
    """The file's bytes, only if size and sha256 match the manifest (one read: no check-then-swap)."""
    path = entry.path
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(
            f"weights file {path} (listed in {entry.manifest_path.name}) is unreadable: {error.strerror}"
        ) from None
    expected = int(entry.manifest["size_bytes"])
    if len(data) != expected:
        raise WeightsError(
            f"weights file {path} is {len(data)} bytes, its manifest says {expected}: truncated or replaced; "
            "reinstall derain-zoo or re-export the weights"
        )
    if _sha256(data) != entry.manifest["sha256"]:
        raise WeightsError(
            f"weights file {path} does not match the sha256 in {entry.manifest_path.name}: corrupted or replaced; "
            "reinstall derain-zoo or re-export the weights"
        )
    return data


def _load_payload(source: Path | bytes, label: str) -> dict[str, Any]:
    """torch.load without executing pickled code; any unreadable file is the same user problem."""
    try:
        payload = torch.load(
            io.BytesIO(source) if isinstance(source, bytes) else source, map_location="cpu", weights_only=True
        )
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {label}") from None
    except Exception as error:  # noqa: BLE001 - truncated zip, pickle junk, a folder...: all one message
        raise WeightsError(f"weights file {label} is not readable by torch.load ({type(error).__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise WeightsError(f"weights file {label} holds no state_dict (expected a derain-zoo .pt or Lightning .ckpt)")
    return payload


def read_state_dict(alias: str, value: str) -> tuple[dict[str, Tensor], Shipped | None, str]:
    """The verified state dict behind ``weights=value``, with its manifest (if any) and a label for messages."""
    entry = manifest_for(alias, value)
    if entry is not None:
        label = str(entry.path)
        payload = _load_payload(_verified_bytes(entry), label)
    else:
        label = value
        payload = _load_payload(Path(value), label)
    saved_by = payload.get("model", payload.get("derain_zoo_model"))
    if saved_by is not None and saved_by != alias:
        raise WeightsError(f"weights file {label} holds model '{saved_by}', not '{alias}'; pass --model={saved_by}")
    return payload["state_dict"], entry, label


def shape_problems(expected: Mapping[str, Tensor], found: Mapping[str, Tensor]) -> list[str]:
    """What keeps ``found`` from loading strictly into a module whose state dict is ``expected``."""
    problems = [
        f"{key} is {list(found[key].shape)} in the file, {list(value.shape)} in the model"
        for key, value in expected.items()
        if key in found and found[key].shape != value.shape
    ]
    problems += [f"{key} missing" for key in expected if key not in found]
    return problems + [f"{key} unexpected" for key in found if key not in expected]


def load_into(module: nn.Module, alias: str, value: str) -> None:
    """Load ``weights=value`` into ``module`` after checking the hash and every key and shape."""
    state, entry, label = read_state_dict(alias, value)
    own = module.state_dict()
    problems = shape_problems(own, state)
    if problems:
        need = entry.init_args if entry is not None else None
        hint = f"they need {_format_args(need)}" if need else "pass the architecture arguments they were trained with"
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise WeightsError(f"weights file {label} does not fit model '{alias}' as configured ({shown}); {hint}")
    # copy_ inside load_state_dict casts the fp16 storage to the module's own dtype
    module.load_state_dict({key: tensor.to(own[key].dtype) for key, tensor in state.items()}, strict=True)


def _format_args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in args.items())


def conflicting_args(entry: Shipped, given: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Architecture arguments in ``given`` whose value differs from the manifest's: key -> (given, manifest)."""
    return {
        key: (given[key], value)
        for key, value in entry.init_args.items()
        if key in given and _jsonable(given[key]) != value
    }


# ---------------------------------------------------------------------------------------------- export
def _jsonable(value: Any) -> Any:
    """Tuples become lists (as in the JSON manifest), so values compare equal across the round trip."""
    return json.loads(json.dumps(value))


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
    return {name: _jsonable(hparams[name]) for name in names}


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
    """Write ``<alias>-<name>.pt`` (fp16 state dict) and its manifest ``.json`` into ``out_dir``; return the .pt.

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
    pt, manifest_path = folder / f"{alias}-{name}.pt", folder / f"{alias}-{name}.json"
    existing = [str(path) for path in (pt, manifest_path) if path.exists()]
    if existing and not overwrite:
        raise WeightsError(f"{existing[0]} exists; pass overwrite=True (--overwrite) to replace it")
    buffer = io.BytesIO()
    torch.save({"state_dict": fp16_state_dict(module, half), "model": alias}, buffer)
    data = buffer.getvalue()
    _write_atomic(pt, data)
    manifest = {
        "model": alias,
        "name": name,
        "file": pt.name,
        "sha256": _sha256(pt.read_bytes()),
        "size_bytes": pt.stat().st_size,
        "init_args": architecture_of(module),
        "recipe": recipe,
        **({"source": _jsonable(dict(source))} if source else {}),
        "data_version": data_version,
        "steps": steps,
        "wall_minutes": wall_minutes,
        "scores": _jsonable(dict(scores or {})),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    if len(data) > SIZE_LIMIT_BYTES:
        print(
            f"warning: {pt} is {len(data) / 2**20:.1f} MB, over the {SIZE_LIMIT_BYTES // 2**20} MB a shipped "
            "file may weigh",
            file=sys.stderr,
        )
    return pt


def module_from_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model a Lightning checkpoint was saved from (its hyper-parameters) with its weights."""
    from derain_zoo.registry import model_registry

    payload = _load_payload(Path(path), str(path))
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


# ---------------------------------------------------------------------------------------------- the tool
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
    actions = parser.add_subparsers(dest="action", metavar="{list,export}")
    actions.add_parser("list", help="list the shipped weights (the default)")
    export = actions.add_parser("export", help="write <alias>-<name>.pt and .json from a Lightning checkpoint")
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


def run(args: argparse.Namespace) -> None:
    """Run the ``weights`` tool: print the listing, or export and print the written .pt path."""
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
    parser = argparse.ArgumentParser(prog="python -m derain_zoo.weights", description=__doc__)
    add_arguments(parser)
    try:
        run(parser.parse_args(argv))
    except (WeightsError, OSError) as error:
        raise SystemExit(f"derain-zoo weights: error: {' '.join(str(error).split())}") from None
