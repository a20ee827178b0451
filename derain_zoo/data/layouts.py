"""The on-disk layouts the zoo reads (docs/data.md): each parser turns a root into paired sequences.

NTURain, RainSynLight25 / RainSynComplex25, RainSynAll100, the generic ``{rain,gt}`` folder, single-image
sets and the user's own rainy footage (``input_sequences``); a root that does not hold its layout raises
``DatasetNotFoundError`` saying what was expected.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from derain_zoo.data import video_io
from derain_zoo.data.batch import LAYER_CHANNELS
from derain_zoo.data.sequence import FrameSequence
from derain_zoo.data.sources import FrameSource


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root that does not hold the layout the chosen data module reads."""

    def __init__(self, root: str | Path | None, layout: str, hint: str) -> None:
        where = "(no root given)" if root is None else f"at root={str(root)!r}"
        super().__init__(f"no dataset found {where}: expected {layout}. {hint}")


def _require_dir(path: Path, root: str | Path, layout: str, hint: str) -> Path:
    """``path`` if it is a directory, else the DatasetNotFoundError of this layout."""
    if not path.is_dir():
        raise DatasetNotFoundError(root, layout, f"{path} is missing. {hint}")
    return path


def _children(folder: Path) -> list[Path]:
    """Sub-folders and video files of a folder in natural order (hidden entries skipped)."""
    found = [p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or video_io.is_video(p))]
    return sorted(found, key=video_io.natural_key)


def _name(path: Path) -> str:
    """The sequence name of a folder (its name) or video file (its stem)."""
    return path.stem if path.is_file() else path.name


def _partner(folder: Path, name: str) -> Path | None:
    """The ground-truth entry for sequence ``name``: a folder or a video file with any video suffix."""
    if (folder / name).is_dir():
        return folder / name
    for suffix in video_io.VIDEO_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def _make(name: str, rain: Path, clean: Path | None, layers: dict[str, Path], cache: bool) -> FrameSequence:
    """Build a sequence and check that all its sources pair frame by frame."""
    seq = FrameSequence(
        name,
        FrameSource(rain, cache),
        None if clean is None else FrameSource(clean, cache),
        {k: FrameSource(p, cache) for k, p in layers.items()},
    )
    seq.check_pairing()
    return seq


NTURAIN_LAYOUT = (
    "NTURain: Dataset_Training_Synthetic/t{n}_Rain_{k}/ with t{n}_GT/, Dataset_Testing_Synthetic/{a1..b4}_Rain/ "
    "with _GT/, Dataset_Testing_RealRain/*_Rain/"
)
NTURAIN_SPLITS = {
    "train": "Dataset_Training_Synthetic",
    "test": "Dataset_Testing_Synthetic",
    "real": "Dataset_Testing_RealRain",
}
_NTU_RAIN = re.compile(r"^(?P<base>.+)_Rain(?:_[^_]+)?$")


def nturain_sequences(root: str | Path, split: str, cache: bool = False) -> list[FrameSequence]:
    """NTURain sequences of ``train``, ``test`` or ``real``; several rain versions share one GT folder."""
    folder = _require_dir(Path(root) / NTURAIN_SPLITS[split], root, NTURAIN_LAYOUT, "Pass the folder that holds it.")
    sequences = []
    for path in _children(folder):
        match = _NTU_RAIN.match(_name(path))
        if match is None:
            continue
        clean = None
        if split != "real":
            clean = _partner(folder, f"{match['base']}_GT")
            if clean is None:
                raise ValueError(f"NTURain rain sequence {path} has no ground truth {folder / (match['base'] + '_GT')}")
        sequences.append(_make(match.group(0), path, clean, {}, cache))
    if not sequences:
        raise DatasetNotFoundError(root, NTURAIN_LAYOUT, f"{folder} holds no *_Rain sequence.")
    return sequences


RAINSYN25_LAYOUT = "RainSynLight25 / RainSynComplex25: {train,test}/input/<N>/<k>.png with {train,test}/processed/<N>/"


def rainsyn25_sequences(root: str | Path, split: str, cache: bool = False) -> list[FrameSequence]:
    """RainSynLight25 / RainSynComplex25 sequences of ``train`` or ``test`` (``processed`` is the GT)."""
    hint = "Pass the folder that holds train/ and test/."
    rain_dir = _require_dir(Path(root) / split / "input", root, RAINSYN25_LAYOUT, hint)
    gt_dir = _require_dir(Path(root) / split / "processed", root, RAINSYN25_LAYOUT, hint)
    return _paired_children(rain_dir, gt_dir, {}, root, RAINSYN25_LAYOUT, cache)


RAINSYNALL100_LAYOUT = "RainSynAll100: {train,test}/{Rain_Haze,GT}/<NNNN>/<t>.jpg, optional Haze/, Trans/, Alpha/"
RAINSYNALL100_LAYERS = {"Haze": "haze", "Trans": "transmission", "Alpha": "atmosphere"}


def rainsynall100_sequences(root: str | Path, split: str, cache: bool = False) -> list[FrameSequence]:
    """RainSynAll100 sequences with their physical layers (Haze, Trans, Alpha = atmospheric light)."""
    hint = "Pass the folder that holds train/ and test/."
    rain_dir = _require_dir(Path(root) / split / "Rain_Haze", root, RAINSYNALL100_LAYOUT, hint)
    gt_dir = _require_dir(Path(root) / split / "GT", root, RAINSYNALL100_LAYOUT, hint)
    layers = {key: Path(root) / split / folder for folder, key in RAINSYNALL100_LAYERS.items()}
    return _paired_children(rain_dir, gt_dir, layers, root, RAINSYNALL100_LAYOUT, cache)


FOLDER_LAYOUT = "<root>/rain/<sequence>/ (frames or a video file) with <root>/gt/<sequence>/, optional layer folders"


def folder_sequences(root: str | Path, cache: bool = False, require_clean: bool = True) -> list[FrameSequence]:
    """Generic ``{rain,gt}/<sequence>`` frames or videos, with the layer folders ``synthesize`` writes."""
    hint = "Pass the folder that holds rain/ and gt/ (or train/ and test/ holding them)."
    rain_dir = _require_dir(Path(root) / "rain", root, FOLDER_LAYOUT, hint)
    gt_dir = Path(root) / "gt"
    if not gt_dir.is_dir():
        if require_clean:
            _require_dir(gt_dir, root, FOLDER_LAYOUT, hint)
        return [_make(_name(p), p, None, {}, cache) for p in _children(rain_dir)]
    layers = {key: Path(root) / key for key in LAYER_CHANNELS}
    return _paired_children(rain_dir, gt_dir, layers, root, FOLDER_LAYOUT, cache)


def _paired_children(
    rain_dir: Path, gt_dir: Path, layer_dirs: dict[str, Path], root: str | Path, layout: str, cache: bool
) -> list[FrameSequence]:
    """One sequence per entry of ``rain_dir``, each with its same-named GT entry (and layers if present).

    Ground truth without rain is refused as rain without ground truth is: skipped without a word,
    the mean would silently cover fewer sequences than the user put there.
    """
    rain_names = {_name(path) for path in _children(rain_dir)}
    for path in _children(gt_dir):
        if _name(path) not in rain_names:
            raise ValueError(
                f"ground truth {path} has no rain sequence in {rain_dir} (expected {rain_dir / _name(path)}); "
                "add its rainy frames or move it out of the dataset"
            )
    sequences = []
    for path in _children(rain_dir):
        name = _name(path)
        clean = _partner(gt_dir, name)
        if clean is None:
            raise ValueError(f"rain sequence {path} has no ground truth in {gt_dir} (expected {gt_dir / name})")
        layers = {key: p for key, folder in layer_dirs.items() if folder.is_dir() and (p := _partner(folder, name))}
        sequences.append(_make(name, path, clean, layers, cache))
    if not sequences:
        raise DatasetNotFoundError(root, layout, f"{rain_dir} holds no sequence.")
    return sequences


IMAGE_LAYOUT = "single images: <root>/input/*.png with same-named <root>/target/*.png"


def image_sequences(root: str | Path, cache: bool = False) -> list[FrameSequence]:
    """Single-image pairs ``{input,target}/`` as one-frame sequences named after the file."""
    hint = "Pass the folder that holds input/ and target/ (or train/ and test/ holding them)."
    rain_dir = _require_dir(Path(root) / "input", root, IMAGE_LAYOUT, hint)
    gt_dir = _require_dir(Path(root) / "target", root, IMAGE_LAYOUT, hint)
    targets = {p.stem: p for p in video_io.list_frames(gt_dir)}
    sequences = []
    for path in video_io.list_frames(rain_dir):
        if path.stem not in targets:
            raise ValueError(f"image {path} has no target of the same name in {gt_dir}")
        sequences.append(_single_image(path, targets[path.stem], cache))
    return sequences


def _single_image(rain: Path, clean: Path, cache: bool) -> FrameSequence:
    """A one-frame sequence over a single image file pair."""
    return FrameSequence(rain.stem, FrameSource(rain, cache, [rain]), FrameSource(clean, cache, [clean]))


INPUT_LAYOUT = (
    f"a video file ({', '.join(video_io.VIDEO_SUFFIXES)}), a folder of frames, or a folder of videos or frame folders"
)


def input_sequences(path: str | Path, cache: bool = False) -> list[FrameSequence]:
    """Rainy footage given by the user, without ground truth: one video, one frame folder, or a folder
    of videos and frame folders (one sequence each, as NTURain's real-rain split is laid out)."""
    path = Path(path)
    if path.is_file() and video_io.is_video(path):
        return [FrameSequence(path.stem, FrameSource(path, cache))]
    if not path.is_dir():
        raise DatasetNotFoundError(path, INPUT_LAYOUT, "Pass --data.input=<video or folder>.")
    entries = [p for p in sorted(path.iterdir(), key=video_io.natural_key) if not p.name.startswith(".")]
    videos = [p for p in entries if p.is_file() and video_io.is_video(p)]
    images = [p for p in entries if p.is_file() and p.suffix.lower() in video_io.IMAGE_SUFFIXES]
    if videos and images:
        # neither reading is what the user meant for sure: the videos alone drop the images, the frames alone
        # drop the videos (a cover.jpg beside two clips became one 1-frame sequence)
        raise ValueError(
            f"{path} holds both videos ({_few(videos)}) and images ({_few(images)}); pass one video "
            f"(--data.input={videos[0]}), or a folder that holds only videos or only the frames of one sequence"
        )
    if images:
        return [FrameSequence(path.name, FrameSource(path, cache))]
    folders = [p for p in entries if p.is_dir()]
    sequences = [p for p in folders if _holds_frames(p)]
    if videos or sequences:
        names = video_names(videos) + [p.name for p in sequences]
        return [FrameSequence(name, FrameSource(p, cache)) for name, p in zip(names, videos + sequences, strict=True)]
    if folders:
        raise ValueError(
            f"{path} holds only folders ({_few(folders)}) whose files are not frames: pass the folder of the "
            f"sequences to restore (videos or frame folders), e.g. --data.input={_deepest_sequences(path)}"
        )
    return [FrameSequence(path.name, FrameSource(path, cache))]  # empty: FrameSource says it holds no frames


def _holds_frames(folder: Path) -> bool:
    """Whether a folder holds at least one (non-hidden) image file: a sequence of frames."""
    return any(
        p.suffix.lower() in video_io.IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        for p in folder.iterdir()
    )


def _deepest_sequences(path: Path) -> Path:
    """The first folder under ``path`` whose sub-folders hold frames (or videos): what to pass as the input."""
    for folder in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: (len(p.parts), str(p))):
        if any((child.is_dir() and _holds_frames(child)) or video_io.is_video(child) for child in folder.iterdir()):
            return folder
    return path


def _few(paths: list[Path], shown: int = 3) -> str:
    """Up to ``shown`` file names, then how many more."""
    names = ", ".join(p.name for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def video_names(videos: list[Path]) -> list[str]:
    """Sequence names of videos: their stems, with the suffix added where stems clash (clip_avi, clip_mp4).

    The name is where predict writes a sequence, so ``clip.avi`` and ``clip.mp4`` in one folder
    must not both be called ``clip``. Stems are compared ignoring case, as some file systems do.
    """
    stems = Counter(p.stem.lower() for p in videos)
    return [f"{p.stem}_{p.suffix[1:]}" if stems[p.stem.lower()] > 1 else p.stem for p in videos]
