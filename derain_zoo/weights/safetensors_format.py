"""Weights files in the safetensors format: tensors plus string metadata, no code executed to read them.

A shipped or exported file is ``<alias>-<name>.safetensors``: the state dict as saved (fp16 where
the zoo trained it, fp32 where an authors' release is kept exact) and metadata naming what it is:
``model`` (the zoo alias), ``name``, ``architecture`` (the constructor arguments, JSON) and
``parameters`` (the learnable parameter count). Reading one never runs pickled code, unlike
``torch.load`` of a ``.pt``; the older ``.pt`` files and Lightning ``.ckpt`` still load through
``torch.load(weights_only=True)`` in ``derain_zoo.weights``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and safetensors are imported where used: lookup.py reads SUFFIX without them
    from torch import Tensor, nn

    from derain_zoo.weights.lookup import Shipped

SUFFIX = ".safetensors"
_HEADER_BYTES = 8  # the file opens with the JSON header's length, a little-endian uint64


def is_safetensors(path: str | Path) -> bool:
    """A safetensors file by name; anything else is read with torch.load."""
    return Path(path).suffix.lower() == SUFFIX


def to_bytes(state: Mapping[str, Tensor], metadata: Mapping[str, Any]) -> bytes:
    """The file's bytes: every tensor as stored (dtype kept) and ``metadata`` as strings (JSON for non-strings)."""
    import safetensors.torch

    text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    return safetensors.torch.save({key: tensor.contiguous() for key, tensor in state.items()}, metadata=text)


def metadata_of(data: bytes, label: str) -> dict[str, str]:
    """The string metadata in a safetensors file's header (empty when it has none)."""
    try:
        (length,) = struct.unpack("<Q", data[:_HEADER_BYTES])
        header = json.loads(data[_HEADER_BYTES : _HEADER_BYTES + length])
    except (struct.error, ValueError) as error:
        raise ValueError(f"weights file {label} is not a safetensors file ({type(error).__name__})") from None
    return dict(header.get("__metadata__") or {}) if isinstance(header, dict) else {}


def read_payload(source: Path | bytes, label: str) -> dict[str, Any]:
    """The file as the payload ``derain_zoo.weights`` expects of a ``.pt``: ``{"state_dict", "model"}``.

    Raises FileNotFoundError for a missing path and ValueError for anything that is not a readable
    safetensors file; the caller turns both into one line naming the file.
    """
    import safetensors.torch

    data = Path(source).read_bytes() if isinstance(source, Path) else source
    metadata = metadata_of(data, label)
    try:
        state = safetensors.torch.load(data)
    except Exception as error:  # noqa: BLE001 - a cut file or junk: the safetensors error types vary by version
        raise ValueError(f"weights file {label} is not a readable safetensors file ({type(error).__name__})") from None
    return {"state_dict": state, "model": metadata.get("model"), "metadata": metadata}


def parameter_count(module: nn.Module) -> int:
    """Learnable parameters, as a model card and torchvision's ``num_params`` count them."""
    return sum(parameter.numel() for parameter in module.parameters())


def convert(entry: Shipped) -> Path:
    """Rewrite one shipped ``.pt`` as ``.safetensors``, tensors bit for bit, and point its manifest at it.

    The new file is read back and compared tensor by tensor (values, dtype, shape) before the
    manifest changes; its sha256, size and parameter count replace the old ones, the old file's name
    and sha256 stay in ``converted_from``, and the ``.pt`` is removed. A safetensors entry is left as it is.
    """
    import safetensors.torch
    import torch

    from derain_zoo.registry import model_registry
    from derain_zoo.weights.export import _write_atomic
    from derain_zoo.weights.loading import load_payload
    from derain_zoo.weights.lookup import WeightsError, _sha256, verified_bytes

    if is_safetensors(entry.path):
        return entry.path
    label = str(entry.path)
    state = load_payload(verified_bytes(entry), label)["state_dict"]
    parameters = parameter_count(model_registry()[entry.model](**entry.init_args))
    metadata = {"format": "pt", "model": entry.model, "name": entry.name, "architecture": entry.init_args}
    data = to_bytes(state, {**metadata, "parameters": parameters})
    again = safetensors.torch.load(data)
    same = again.keys() == state.keys() and all(
        again[key].dtype == tensor.dtype and torch.equal(again[key], tensor) for key, tensor in state.items()
    )
    if not same:
        raise WeightsError(f"converting {label} to safetensors changed its tensors; nothing written")
    target = entry.path.with_suffix(SUFFIX)
    _write_atomic(target, data)
    manifest = dict(entry.manifest)
    manifest.update(file=target.name, sha256=_sha256(data), size_bytes=len(data), parameters=parameters)
    manifest["converted_from"] = {"file": entry.path.name, "sha256": entry.manifest["sha256"]}
    _write_atomic(entry.manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    entry.path.unlink()
    return target
