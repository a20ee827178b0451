"""What every converter of an authors' checkpoint shares: reading, checking the layout, writing.

A converter describes its model by a ``Layout``: for every tensor of the zoo network (built as the
authors' variant), the authors' key(s) it comes from and how (copied, concatenated, folded, sliced,
permuted), plus the authors' keys that exist in their files but do not compute the output (unused
BatchNorm buffers, heads whose output is thrown away). A file is refused, in one line, unless it
holds exactly those keys with the shapes the zoo network needs; nothing is loaded by guesswork.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from derain_zoo.outputs import Inputs, check_name_length, output_path, partial_path, remove, rename_no_replace
from derain_zoo.weights import WeightsError, architecture_of, fp16_state_dict

SHOWN = 4  # keys named in a refusal before "and N more"

# a zoo tensor computed from the authors' tensors, in the order ``Rule.sources`` lists them
Combine = Callable[[list[Tensor]], Tensor]


def copy(tensors: list[Tensor]) -> Tensor:
    """The authors' tensor unchanged."""
    return tensors[0]


def concat(tensors: list[Tensor]) -> Tensor:
    """Several authors' convs that read the same input, stacked as one conv's outputs (dim 0)."""
    return torch.cat(tensors, dim=0)


@dataclass(frozen=True)
class Rule:
    """One zoo tensor: the authors' keys it is made of and the function that makes it."""

    sources: tuple[str, ...]
    combine: Combine = copy


@dataclass
class Layout:
    """The authors' checkpoint as the zoo network reads it: a rule per zoo key, and what is ignored."""

    rules: dict[str, Rule]
    ignored: tuple[str, ...] = ()  # regular expressions of authors' keys that exist but compute nothing
    what: str = "the authors' checkpoint"

    def needed(self) -> list[str]:
        """Every authors' key some zoo tensor is made of, in first-use order."""
        return list(dict.fromkeys(key for rule in self.rules.values() for key in rule.sources))

    def is_ignored(self, key: str) -> bool:
        return any(re.search(pattern, key) for pattern in self.ignored)


@dataclass
class Release:
    """The authors' tensors read from one or more files, with each file's name and sha256."""

    tensors: dict[str, Tensor]
    files: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- reading
def load_file(path: str | Path) -> tuple[Any, str]:
    """``torch.load`` without running pickled code (CUDA storages mapped to the CPU), and the file's sha256."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WeightsError(f"checkpoint {path} is unreadable: {error.strerror}") from None
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise WeightsError(f"checkpoint {path} is not readable by torch.load ({type(error).__name__})") from None
    return payload, hashlib.sha256(data).hexdigest()


def tensor_dict(payload: Any, path: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The tensors of a (possibly DataParallel) state dict, ``module.`` stripped, nested dicts flattened
    with '/' (so a file of another layout is named key by key); refused if it holds something else."""
    if not isinstance(payload, Mapping) or not payload:
        raise WeightsError(f"checkpoint {path} holds no state dict ({type(payload).__name__})")
    tensors = {}
    for key, value in payload.items():
        name = prefix + str(key).removeprefix("module.")
        if isinstance(value, Mapping):
            tensors.update(tensor_dict(value, path, name + "/"))
        elif isinstance(value, Tensor):
            tensors[name] = value
        else:
            raise WeightsError(f"checkpoint {path}: entry {name} is a {type(value).__name__}, not a tensor")
    return tensors


def _listed(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def check_keys(layout: Layout, found: Mapping[str, Tensor], label: str) -> None:
    """Refuse a file that lacks an authors' key the zoo needs, or holds one the layout does not know."""
    missing = [key for key in layout.needed() if key not in found]
    needed = set(layout.needed())
    unexpected = [key for key in found if key not in needed and not layout.is_ignored(key)]
    if missing or unexpected:
        parts = ([f"missing {_listed(missing)}"] if missing else []) + (
            [f"unexpected {_listed(unexpected)}"] if unexpected else []
        )
        raise WeightsError(f"{label} is not {layout.what}: {'; '.join(parts)}")


def build_state(layout: Layout, found: Mapping[str, Tensor], network: nn.Module, label: str) -> dict[str, Tensor]:
    """The zoo network's state dict made from the authors' tensors, every shape checked."""
    own = network.state_dict()
    missing_rules = [key for key in own if key not in layout.rules]
    if missing_rules:  # a converter bug, not a user error: the layout must cover the whole network
        raise RuntimeError(f"the {layout.what} layout has no rule for {_listed(missing_rules)}")
    state = {}
    for key, rule in layout.rules.items():
        try:
            tensor = rule.combine([found[source].float() for source in rule.sources])
        except (RuntimeError, IndexError) as error:  # e.g. concatenating convs of different widths
            raise WeightsError(f"{label}: {', '.join(rule.sources)} do not combine ({error})") from None
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"{label}: {', '.join(rule.sources)} give {list(tensor.shape)}, the zoo network needs "
                f"{list(own[key].shape)} ({key})"
            )
        state[key] = tensor.to(own[key].dtype)
    return state


# ---------------------------------------------------------------------------------------------- writing
def _manifest(module: nn.Module, target: Path, data: bytes, source: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": module.alias,
        "name": target.stem,
        "file": target.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "init_args": architecture_of(module),
        "recipe": None,
        "source": json.loads(json.dumps(dict(source))),
        "data_version": source.get("data_version"),
        "steps": None,
        "wall_minutes": None,
        "scores": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }


def _place(data: bytes, target: Path, overwrite: bool) -> None:
    """Write beside ``target`` under a hidden name, then move it in; never over a file unless ``overwrite``."""
    partial = partial_path(target)
    partial.write_bytes(data)
    try:
        if overwrite:
            os.replace(partial, target)
        else:
            rename_no_replace(partial, target)
    except FileExistsError:
        raise WeightsError(
            f"{target} appeared while converting; it was kept (pass --overwrite to replace it)"
        ) from None
    finally:
        remove(partial)


def check_output(output: str | Path, inputs: Iterable[str | Path], overwrite: bool) -> Path:
    """The output .pt, refused before any work when it (or its manifest) exists, is an input, or cannot be made."""
    target = output_path(output)
    if target.suffix != ".pt":
        raise WeightsError(f"--output {output} must end in .pt (its manifest is written beside it as .json)")
    if not target.parent.is_dir():
        raise WeightsError(f"--output {output}: folder {target.parent} does not exist")
    for path in (target, target.with_suffix(".json")):
        check_name_length(path)
        Inputs(list(inputs)).check(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise WeightsError(f"{path} exists; pass --overwrite to replace it")
    return target


def write_converted(
    module: nn.Module, output: str | Path, source: Mapping[str, Any], inputs: Iterable[str | Path], overwrite: bool
) -> Path:
    """Write ``output`` (.pt, the zoo's weights format, fp32) and its manifest ``.json`` beside it."""
    target = check_output(output, inputs, overwrite)
    buffer = io.BytesIO()
    torch.save({"state_dict": fp16_state_dict(module, half=False), "model": module.alias}, buffer)
    data = buffer.getvalue()
    manifest = _manifest(module, target, data, source)
    _place(data, target, overwrite)
    _place((json.dumps(manifest, indent=2) + "\n").encode(), target.with_suffix(".json"), overwrite)
    return target
