"""Loading weights into a model: a verified file read without executing pickled code, every key and shape
checked before one tensor is copied, so a mismatched file fails in one line naming it."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from derain_zoo.weights import safetensors_format
from derain_zoo.weights.lookup import Shipped, WeightsError, jsonable, manifest_for, verified_bytes


def load_payload(source: Path | bytes, label: str, safetensors: bool = False) -> dict[str, Any]:
    """A safetensors file, or torch.load without executing pickled code; any unreadable file is one problem."""
    if safetensors:
        try:
            return safetensors_format.read_payload(source, label)
        except FileNotFoundError:
            raise WeightsError(f"weights file not found: {label}") from None
        except ValueError as error:
            raise WeightsError(str(error)) from None
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
        payload = load_payload(verified_bytes(entry), label, safetensors_format.is_safetensors(entry.path))
    else:
        label = value
        payload = load_payload(Path(value), label, safetensors_format.is_safetensors(value))
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
        if key in given and jsonable(given[key]) != value
    }
