"""Alias tables for the CLI, built from the registered classes so a new model needs no CLI change."""

from __future__ import annotations

import importlib
import os


class UnknownNameError(ValueError):
    """A --model / --data value that names nothing in the zoo."""


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _table(base: type) -> dict[str, type]:
    """alias -> class for every public subclass of ``base`` that declares an alias."""
    named = [sub for sub in _subclasses(base) if getattr(sub, "alias", "") and not sub.__name__.startswith("_")]
    return {sub.alias: sub for sub in named}


def model_registry() -> dict[str, type]:
    """alias -> DerainModule subclass, for every model the zoo ships."""
    importlib.import_module("derain_zoo.models")
    from derain_zoo.models.base import DerainModule

    return dict(sorted(_table(DerainModule).items()))


def data_registry() -> dict[str, type]:
    """alias -> DerainDataModule subclass, for every dataset layout the zoo reads."""
    data = importlib.import_module("derain_zoo.data")
    return dict(sorted(_table(data.DerainDataModule).items()))


def class_path(cls: type) -> str:
    """The dotted path LightningCLI resolves (the public package path, not the defining module)."""
    package = cls.__module__.rsplit(".", 1)[0] if cls.__module__.count(".") > 1 else cls.__module__
    module = importlib.import_module(package)
    public = getattr(module, cls.__name__, None) is cls
    return f"{package}.{cls.__name__}" if public else f"{cls.__module__}.{cls.__name__}"


def model_alias(name: str | None) -> str | None:
    """The alias of the zoo model ``name`` denotes: an alias or class name (any case), or a class path
    (the public one or the defining module's); None for anything else, e.g. a class from outside the zoo."""
    if not name:
        return None
    for alias, cls in model_registry().items():
        names = (alias, cls.__name__.lower(), class_path(cls).lower(), f"{cls.__module__}.{cls.__name__}".lower())
        if name.lower() in names:
            return alias
    return None


def resolve(value: str, registry: dict[str, type], kind: str) -> str:
    """Turn an alias or class name into a class path; pass paths, files and JSON through unchanged."""
    if "." in value or value.startswith("{") or os.path.exists(value):
        return value
    by_name = {name.lower(): cls for name, cls in registry.items()}
    by_name.update({cls.__name__.lower(): cls for cls in registry.values()})
    cls = by_name.get(value.lower())
    if cls is None:
        valid = ", ".join(registry)
        raise UnknownNameError(f"unknown {kind} '{value}'; valid {kind} names: {valid}")
    return class_path(cls)
