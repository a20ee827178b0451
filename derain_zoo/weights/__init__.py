"""Shipped weights: find, verify, load, export and list the weights trained by the zoo's own recipes.

Each shipped set is three files in this folder (or in ``$DERAIN_ZOO_WEIGHTS_DIR``):
``<alias>-<name>.safetensors``, the state dict (floating tensors in fp16, or fp32 for a release
kept exact) with metadata naming model, name and architecture; ``<alias>-<name>.json``, its
manifest (sha256, size, parameter count, the architecture arguments the weights need, recipe, data
version, steps, wall time, scores); and ``<alias>-<name>.md``, its model card generated from the
manifest. A model takes them as ``weights=<name>`` or ``weights=<path>`` (an exported
``.safetensors``, an older ``.pt`` or a Lightning ``.ckpt``); nothing is loaded without checking the
hash and every shape first, so a damaged or mismatched file fails with one line naming it instead
of giving wrong output.

The package hands on the names of its rooms: ``lookup`` (finding and verifying), ``loading`` (into a
model), ``export`` (fp16 files, manifests and cards), ``safetensors_format`` (the file format and the
conversion of ``.pt`` sets), ``cards`` (model cards) and ``command`` (the ``derain-zoo weights`` tool). The
command's names are handed on when first asked for: it rebuilds models from checkpoints through the
model registry, and the models, which load their weights through this package, must not import that.
"""

from typing import Any

from derain_zoo.weights.export import SIZE_LIMIT_BYTES, architecture_of, export_weights, fp16_state_dict
from derain_zoo.weights.loading import conflicting_args, load_into, load_payload, read_state_dict, shape_problems
from derain_zoo.weights.lookup import (
    PATH_SUFFIXES,
    RANDOM,
    WEIGHTS_DIR_ENV,
    Shipped,
    WeightsError,
    find_shipped,
    is_path,
    jsonable,
    manifest_for,
    read_manifest,
    shipped,
    verified_bytes,
    weights_dir,
)
from derain_zoo.weights.lookup import _sha256 as _sha256  # read by tests/test_weights.py

__all__ = [
    "PATH_SUFFIXES",
    "RANDOM",
    "SIZE_LIMIT_BYTES",
    "WEIGHTS_DIR_ENV",
    "Shipped",
    "WeightsError",
    "add_arguments",
    "architecture_of",
    "conflicting_args",
    "export_weights",
    "find_shipped",
    "format_table",
    "fp16_state_dict",
    "is_path",
    "jsonable",
    "load_into",
    "load_payload",
    "main",
    "manifest_for",
    "module_from_checkpoint",
    "provenance",
    "read_manifest",
    "read_state_dict",
    "run",
    "shape_problems",
    "shipped",
    "verified_bytes",
    "weights_dir",
]

_COMMAND = ("add_arguments", "format_table", "main", "module_from_checkpoint", "provenance", "run")


def __getattr__(name: str) -> Any:
    """The command's names (``derain_zoo.weights.main`` and the rest), imported on first use."""
    if name in _COMMAND:
        from derain_zoo.weights import command

        return getattr(command, name)
    raise AttributeError(f"module 'derain_zoo.weights' has no attribute {name!r}")
