"""The benchmark's argument types and protocol options, shared by ``derain-zoo benchmark`` and the per-model scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``.

    ``--size 0`` measured an empty clip and reported millions of fps; ``--frames -1`` ended in a
    traceback. The argument is refused instead, in argparse's message naming it.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def frame_size(text: str) -> tuple[int, int]:
    """An argparse type: ``HxW`` (height by width, e.g. ``480x640``) or one number for a square frame."""
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 480x640) or one whole number, got {text!r}")
    height, width = (int(parts[0]), int(parts[-1]))
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"height and width must be at least 1, got {height}x{width}")
    return height, width


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``--init-args``), refused in one line when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"window\": 3}}', got {text!r}")
    return value


def add_protocol_arguments(
    parser: argparse.ArgumentParser, frames: int | None = 5, repeats: int = 5, rectangular: bool = False
) -> None:
    """The protocol options every benchmark shares (the CLI's and the per-model scripts').

    ``rectangular``: ``--size`` takes ``HxW`` and gives a (height, width) pair; otherwise one side.
    """
    if rectangular:
        parser.add_argument("--size", type=frame_size, default=(256, 256), help="frame HxW (e.g. 480x640) or one side")
    else:
        parser.add_argument("--size", type=at_least(1), default=256, help="frame height and width")
    parser.add_argument("--frames", type=at_least(1), default=frames, help="frames per clip")
    parser.add_argument("--threads", type=at_least(1), default=2)
    parser.add_argument("--repeats", type=at_least(1), default=repeats)
    parser.add_argument("--warmup", type=at_least(0), default=1)
