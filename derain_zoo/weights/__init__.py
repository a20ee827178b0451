"""Shipped weights: find, verify, load, export and list the weights trained by the zoo's own recipes.

Each shipped set is two files in this folder (or in ``$DERAIN_ZOO_WEIGHTS_DIR``):
``<alias>-<name>.pt``, a ``torch.save`` of ``{"state_dict": ..., "model": alias}`` with floating
tensors in fp16 (readable with ``torch.load(weights_only=True)``), and ``<alias>-<name>.json``, its
manifest (sha256, size, the architecture arguments the weights need, recipe, data version, steps,
wall time, scores). A model takes them as ``weights=<name>`` or ``weights=<path>`` (an exported
``.pt`` or a Lightning ``.ckpt``); nothing is loaded without checking the hash and every shape first,
so a damaged or mismatched file fails with one line naming it instead of giving wrong output.

The package hands on the names of its rooms: ``lookup`` (finding and verifying), ``loading`` (into a
model), ``export`` (fp16 files and manifests) and ``command`` (the ``derain-zoo weights`` tool). The
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
