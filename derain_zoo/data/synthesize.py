"""``derain-zoo synthesize``: render rain onto clean videos or frame folders, written as a dataset.

The output is the ``folder`` layout, readable with ``--data=folder --data.root=<output>``::

    <output>/gt/<sequence>/00001.png ...          the clean input frames
    <output>/rain/<sequence>/00001.png ...        the rainy frames (8-bit)
    <output>/{streak,occlusion,transmission,atmosphere,haze}/<sequence>/00001.png ...

Layers are 16-bit PNG so they recombine to the rainy frame (before its 8-bit rounding) within
about 1e-4 by O = (1-alpha)(T(B+S) + (1-T)A) + alpha A. Each sequence gets one rain field
rendered chunk by chunk, so rain stays coherent over any length without holding the video in memory.

Written as ``predict`` writes (``derain_zoo.outputs``): the whole dataset goes to a hidden folder
beside the output and is moved into place only once every sequence is complete, so a failure
leaves the output as it was; ``--overwrite`` replaces only the frames the run writes.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from derain_zoo.data import video_io
from derain_zoo.data.rain import LAYER_KEYS, RAIN_KINDS, sample_rain
from derain_zoo.frames import to_uint
from derain_zoo.outputs import (
    Inputs,
    OutputExistsError,
    UnsafeOutputError,
    appeared,
    check_stale_frames,
    check_target,
    move_frames_into,
    partial_path,
    remove,
    remove_stale_partials,
    rename_no_replace,
)

CHOICES = (*RAIN_KINDS, "mixed")
CHUNK = 8


def synthesize(inputs: list[str], output: str, rain: str, seed: int = 0, overwrite: bool = False) -> None:
    """Write a rainy copy of every input (video file or frame folder) under ``output``."""
    if rain not in CHOICES:
        raise ValueError(f"unknown rain '{rain}'; expected one of {', '.join(CHOICES)}")
    if not inputs:
        raise ValueError("no input given: pass one or more clean videos or frame folders")
    names = _sequence_names(inputs)
    out = _check_output(output, overwrite, [Path(p) for p in inputs], names)
    partial = partial_path(out)
    remove_stale_partials(out)
    try:
        for number, (path, name) in enumerate(zip(inputs, names, strict=True)):
            kind = (
                rain
                if rain != "mixed"
                else RAIN_KINDS[int(np.random.default_rng([seed, number]).integers(len(RAIN_KINDS)))]
            )
            generator = torch.Generator().manual_seed(seed * 100003 + number)
            _synthesize_one(Path(path), partial, name, kind, generator)
        _move_into_place(partial, out, overwrite)
    finally:
        remove(partial)


def _check_output(output: str, overwrite: bool, inputs: list[Path], names: list[str]) -> Path:
    """The output folder; a non-empty one needs ``--overwrite``, and neither it nor any sequence folder
    the run writes may be, hold or lie inside an input, or hold an input frame under another name."""
    out = check_target(output, overwrite=True)  # kind, name length, writable; emptiness is checked here
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UnsafeOutputError(f"output folder {out} is not empty; pass --overwrite to replace its sequences")
    identified = Inputs(inputs)
    identified.check(out)
    for folder in ("gt", "rain", *LAYER_KEYS):
        for name in names:
            identified.check(out / folder / name)
    return out


def _move_into_place(partial: Path, out: Path, overwrite: bool) -> None:
    """Move the finished dataset into ``out``: whole when ``out`` is new, else sequence folder by sequence folder.

    Every target is checked before the first move, so a refusal leaves ``out`` as it was. Without
    ``--overwrite`` no move replaces anything (a folder that appeared meanwhile fails the run).
    """
    try:
        if not out.exists():
            rename_no_replace(partial, out)
            return
        moves = [(folder, out / folder.relative_to(partial)) for folder in sorted(partial.glob("*/*"))]
        for folder, target in moves:
            if target.exists() and not overwrite:
                raise appeared(target)
            check_stale_frames(target, len(list(folder.iterdir())))
        for folder, target in moves:
            if target.is_dir():
                move_frames_into(folder, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                rename_no_replace(folder, target)
    except FileExistsError as error:
        raise error if isinstance(error, OutputExistsError) else appeared(out) from None
    except OSError as error:
        raise video_io.WriteError(f"could not write {out}: {error.strerror or error}") from error


def _sequence_names(inputs: list[str]) -> list[str]:
    """One output name per input (file stem or folder name); two inputs with one name are refused."""
    names = []
    for path in map(Path, inputs):
        if not (path.is_dir() or path.is_file()):
            raise FileNotFoundError(f"input {path} does not exist (expected a video file or a folder of frames)")
        names.append(path.stem if path.is_file() else path.name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"inputs share the sequence name(s) {', '.join(duplicates)}; rename them so outputs do not collide"
        )
    return names


def _chunks(path: Path) -> Iterator[np.ndarray]:
    """The input's frames in chunks of CHUNK as T,H,W,3 uint8, checking they keep one size."""
    frames, _ = video_io.iter_frames(path)
    chunk: list[np.ndarray] = []
    for frame in frames:
        if frame.dtype != np.uint8:
            frame = (frame // 257).astype(np.uint8)
        if chunk and frame.shape != chunk[0].shape:
            raise ValueError(f"frames of {path} change size from {chunk[0].shape[1::-1]} to {frame.shape[1::-1]}")
        chunk.append(frame)
        if len(chunk) == CHUNK:
            yield np.stack(chunk)
            chunk = []
    if chunk:
        yield np.stack(chunk)


def _synthesize_one(path: Path, out: Path, name: str, kind: str, generator: torch.Generator) -> None:
    """Render one sequence chunk by chunk with a single rain field and write all its folders."""
    field = None
    start = 0
    for chunk in _chunks(path):
        clean = torch.from_numpy(chunk).permute(0, 3, 1, 2).float() / 255.0
        if field is None:
            field = sample_rain(kind, clean.shape[-2], clean.shape[-1], generator)
        elif clean.shape[-2:] != (field.height, field.width):
            raise ValueError(f"frames of {path} change size to {clean.shape[-1]}x{clean.shape[-2]}")
        rainy, layers = field.render(clean, start)
        video_io.write_frames(out / "gt" / name, chunk, start + 1)
        video_io.write_frames(out / "rain" / name, _to_uint(rainy, np.uint8), start + 1)
        for key, layer in layers.items():
            video_io.write_frames(out / key / name, _to_uint(layer, np.uint16), start + 1)
        start += len(chunk)
    if field is None:
        raise ValueError(f"empty sequence: {path} holds no frames")


def _to_uint(frames: torch.Tensor, dtype: type) -> list[np.ndarray]:
    """T,C,H,W floats in [0, 1] to rounded H,W,C (or H,W for one channel) integer images."""
    array = to_uint(frames, dtype)
    return [a[:, :, 0] if a.shape[2] == 1 else a for a in array]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``derain-zoo synthesize``."""
    parser.add_argument("--input", nargs="+", required=True, help="clean video files or folders of frames")
    parser.add_argument("--output", required=True, help="dataset folder to write (folder layout)")
    parser.add_argument("--rain", choices=CHOICES, default="heavy", help="rain model (mixed: one per sequence)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same rain")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM stops the command like Ctrl-C: the hidden partial dataset is removed on the way out."""
    raise SystemExit("derain-zoo: error: synthesize was terminated (SIGTERM); nothing written")


def run(args: argparse.Namespace) -> None:
    """Run the command from parsed arguments."""
    signal.signal(signal.SIGTERM, _terminated)
    synthesize(args.input, args.output, args.rain, args.seed, args.overwrite)
    count = len(args.input)
    print(f"wrote {count} sequence(s) with {args.rain} rain to {args.output}")
    print(f"train on it with: derain-zoo fit --data=folder --data.root={args.output}")
