"""Finding and verifying shipped weights: where they live, their manifests, and bytes checked against them.

Each shipped set is three files in this folder (or in ``$DERAIN_ZOO_WEIGHTS_DIR``):
``<alias>-<name>.safetensors`` (an older set: ``.pt``), its manifest ``<alias>-<name>.json`` (sha256,
size, parameter count, architecture arguments, provenance, scores) and its model card ``.md``.
Nothing here builds a model: loading (``loading``), export (``export``) and the command (``command``)
build on these names.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derain_zoo.weights.safetensors_format import SUFFIX as SAFETENSORS

WEIGHTS_DIR_ENV = "DERAIN_ZOO_WEIGHTS_DIR"
RANDOM = "random"  # the explicit opt-in for untrained weights (smoke tests)
PATH_SUFFIXES = (".pt", ".pth", ".ckpt", SAFETENSORS)


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
        "them); pass a shipped name or a path to a .safetensors / .ckpt / .pt file"
    )


def manifest_for(alias: str, value: str) -> Shipped | None:
    """The manifest behind ``weights=value``: a shipped name's, or the one written beside an exported file."""
    if not is_path(value):
        return find_shipped(alias, value)
    beside = Path(value).with_suffix(".json")
    if Path(value).suffix in (".pt", SAFETENSORS) and beside.is_file():
        entry = read_manifest(beside)
        if entry.manifest["file"] != Path(value).name:
            return None
        if entry.model != alias:  # before its init_args are read as this model's ("need extractor_blocks=2, ...")
            raise WeightsError(
                f"weights file {value} holds model '{entry.model}', not '{alias}'; pass --model={entry.model}"
            )
        return entry
    return None


# ---------------------------------------------------------------------------------------------- verifying
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_bytes(entry: Shipped) -> bytes:
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


def jsonable(value: Any) -> Any:
    """Tuples become lists (as in the JSON manifest), so values compare equal across the round trip."""
    return json.loads(json.dumps(value))
