"""What the user passed, checked before Lightning builds anything: checkpoints, weights, model arguments, folders.

Each check fails with a ``UserError`` whose message is one line saying what to fix; the CLI runs them
on the parsed config (``DerainCLI.before_instantiate_classes`` and ``_parse_ckpt_path``).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from derain_zoo.registry import class_path, model_alias, model_registry

EVALUATION_COMMANDS = ("validate", "test", "predict")


class UserError(Exception):
    """A mistake in what the user passed; reported as one line, never as a traceback."""


def check_checkpoint(path: str | None, expected: str | None) -> None:
    """Refuse a missing checkpoint or one saved by another model, before Lightning loads it."""
    if path is None or path in ("last", "best", "hpc", "registry"):
        return
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path} (pass --ckpt_path=<run folder>/checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"{path} is not a readable derain-zoo checkpoint ({type(error).__name__})") from None
    saved_by = checkpoint.get("derain_zoo_model") if isinstance(checkpoint, dict) else None
    if saved_by is None:
        raise UserError(f"{path} is not a derain-zoo checkpoint (no model stamp); train one with 'derain-zoo fit'")
    if expected is not None and saved_by != expected:
        raise UserError(f"checkpoint {path} was saved by model '{saved_by}', not '{expected}'; pass --model={saved_by}")


def model_class(config: Any) -> type | None:
    """The zoo model class a sub-command's config names (None for a class from outside the zoo)."""
    model = config.get("model")
    requested = model.get("class_path") if model is not None and hasattr(model, "get") else None
    return model_registry().get(model_alias(requested) or "")


def _typed_model_args(argv: Sequence[str]) -> set[str]:
    """Model argument names typed on the command line (``--model.x`` or ``--model.init_args.x``)."""
    typed = set()
    for arg in argv:
        key = arg.partition("=")[0]
        for prefix in ("--model.init_args.", "--model."):
            if key.startswith(prefix):
                typed.add(key[len(prefix) :])
                break
    return typed


def check_weights(config: Any, subcommand: str, argv: Sequence[str]) -> None:
    """Refuse evaluation on random weights, and adopt a weights manifest's architecture arguments.

    A trainable model in validate/test/predict needs ``--ckpt_path`` or ``--model.weights``
    (``--model.weights=random`` opts in to untrained weights). Weights with a manifest (shipped names,
    exported .safetensors or .pt files) set the architecture arguments they need; a typed one that disagrees is refused.
    """
    from derain_zoo.weights import RANDOM, manifest_for

    cls = model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if cls is None or init_args is None:
        return
    weights, ckpt_path = init_args.get("weights"), config.get("ckpt_path")
    if weights not in (None, RANDOM) and ckpt_path:
        raise UserError(
            f"pass --ckpt_path ({ckpt_path}) or --model.weights ({weights}), not both: the checkpoint's weights "
            "would silently replace the others"
        )
    if subcommand in EVALUATION_COMMANDS and cls.trainable and weights is None and not ckpt_path:
        from derain_zoo.weights import shipped

        names = [entry.name for entry in shipped() if entry.model == cls.alias] or ["<name>"]
        raise UserError(
            f"model '{cls.alias}' would {subcommand} with untrained random weights: pass --model.weights={names[0]} "
            "(shipped weights, listed by 'derain-zoo weights') or a .safetensors/.ckpt/.pt path, or --ckpt_path=<run "
            "folder>/checkpoints/last.ckpt; --model.weights=random runs untrained weights on purpose (smoke tests)"
        )
    if weights in (None, RANDOM) or not cls.trainable:
        return
    entry = manifest_for(cls.alias, weights)
    if entry is not None:
        adopt_init_args(init_args, cls, entry.init_args, str(entry.path), _typed_model_args(argv))


def check_predict_input(config: Any, subcommand: str, argv: Sequence[str]) -> None:
    """Refuse ``predict --output`` with no input: it restored the built-in synthetic test set into files.

    A user who forgot ``--data.input`` got eight videos they did not ask for and exit 0; naming the
    synthetic data (``--data=synthetic``) on the command line still restores it on purpose.
    """
    data = config.get("data")
    if subcommand != "predict" or not config.get("output") or data is None:
        return
    init_args = data.get("init_args") or {}
    synthetic = data.get("class_path") == default_data()
    if synthetic and not init_args.get("input") and not any(arg.partition("=")[0] == "--data" for arg in argv):
        raise UserError(
            "predict has no input: pass --data.input=<rainy video, frame folder or folder of them> (or "
            "--data=<dataset> --data.root=<folder>); --data=synthetic restores the built-in synthetic test set"
        )


def adopt_init_args(init_args: Any, cls: type, needed: dict[str, Any], source: str, typed: set[str]) -> None:
    """Set the architecture arguments ``needed`` by weights from ``source``; refuse a user value that disagrees.

    A value counts as the user's when it was typed (``typed``) or differs from the class default (a config
    file set it); only defaults are replaced, so nothing the user chose is silently overridden.
    """
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in needed.items():
        if key not in parameters:
            raise UserError(f"weights {source} need {key}={value}, which model '{cls.alias}' does not take")
        current = json.loads(json.dumps(init_args.get(key)))
        if _chosen(init_args, parameters, key, typed) and current != value:
            raise UserError(
                f"--model.{key}={json.dumps(current)} contradicts the weights {source}, which need {key}="
                f"{json.dumps(value)}; drop the option or pass other weights"
            )
        init_args[key] = value


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Constructor parameters of ``cls`` and of the bases its ``**kwargs`` reach (a subclass's own win)."""
    parameters: dict[str, inspect.Parameter] = {}
    constructors = [c for c in cls.__mro__ if "__init__" in c.__dict__ and c.__module__.startswith("derain_zoo")]
    for base in reversed(constructors):
        parameters.update(inspect.signature(base.__dict__["__init__"]).parameters)
    return {key: p for key, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _chosen(init_args: Any, parameters: Any, key: str, typed: set[str]) -> bool:
    """Whether the user chose ``key``: typed on the command line, or set (by a config file) to a non-default value."""
    if key in typed:
        return True
    default = parameters[key].default if key in parameters else inspect.Parameter.empty
    if default is inspect.Parameter.empty:
        return True
    return json.loads(json.dumps(init_args.get(key), default=str)) != json.loads(json.dumps(default, default=str))


def user_model_args(config: Any, argv: Sequence[str]) -> dict[str, Any]:
    """The model arguments the user chose (typed, or set by a config file to other than the class default)."""
    cls = model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if init_args is None:
        return {}
    parameters = _parameters(cls)
    typed = _typed_model_args(argv)
    return {
        key: init_args[key] for key in parameters if key in init_args and _chosen(init_args, parameters, key, typed)
    }


def keep_user_model_args(config: Any, chosen: dict[str, Any], ckpt_path: str) -> None:
    """After Lightning restored a checkpoint's hyper-parameters, give back what the user chose.

    Evaluation, memory and training options the user chose win over the checkpoint's (the checkpoint's
    weights do not depend on them); an architecture argument that contradicts the checkpoint is refused.
    """
    cls = model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if init_args is None:
        return
    for key, value in chosen.items():
        saved = init_args.get(key)
        if key in cls.architecture_args and json.dumps(saved, default=str) != json.dumps(value, default=str):
            raise UserError(
                f"--model.{key}={json.dumps(value, default=str)} contradicts the checkpoint {ckpt_path}, which was "
                f"trained with {key}={json.dumps(saved, default=str)}; drop the option or pass another checkpoint"
            )
        init_args[key] = value


def check_folder(path: str | os.PathLike | None, option: str) -> None:
    """Refuse a folder option whose path runs through a file, or that lies in a folder the user cannot write."""
    if path is None:
        return
    wanted = Path(path).expanduser().absolute()
    for existing in (wanted, *wanted.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            raise UserError(f"{option}={path}: {existing} is a file, not a folder; choose another {option}")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{option}={path}: {existing} is not writable; choose another {option}")
        return


def default_data() -> str:
    """The class path of the data module used when none is named: the built-in synthetic rain."""
    from derain_zoo.data import SyntheticRainDataModule

    return class_path(SyntheticRainDataModule)
