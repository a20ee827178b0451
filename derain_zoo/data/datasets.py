"""Paired sequence datasets for every layout the zoo reads (DESIGN section 7), plus video files.

A layout function turns a root into a list of ``Sequence`` objects (rain frames, optional ground
truth and physical layers, checked to pair frame by frame); ``ClipDataset`` serves training and
validation clips of ``num_frames`` and ``SequenceDataset`` whole sequences for test and predict.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from derain_zoo.data import video_io
from derain_zoo.data.transforms import ClipAugment, center_crop_box, crop

LAYER_CHANNELS = {"streak": 3, "occlusion": 1, "transmission": 1, "atmosphere": 3, "haze": 3}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root that does not hold the layout the chosen data module reads."""

    def __init__(self, root: str | Path | None, layout: str, hint: str) -> None:
        where = "(no root given)" if root is None else f"at root={str(root)!r}"
        super().__init__(f"no dataset found {where}: expected {layout}. {hint}")


class FrameSource:
    """The frames of one folder (read on demand, optionally cached) or one video file.

    A video is decoded whole on first use for training, where clips are drawn at random and random
    access into compressed video is too slow to repeat. Test and predict read forward window by
    window, so ``stream()`` switches a video to a ``ForwardVideoReader`` that holds only a few frames.
    """

    def __init__(self, path: str | Path, cache: bool = False, frames: list[Path] | None = None) -> None:
        self.path = Path(path)
        self.cache = cache
        self.fps: float | None = None
        self._frames: list[Path] | None = frames
        self._decoded: dict[int, np.ndarray] = {}
        self._video: np.ndarray | None = None
        self._length: int | None = None
        self._history: int | None = None
        self._reader: video_io.ForwardVideoReader | None = None
        if frames is None and video_io.is_video(self.path):
            self.fps = video_io.video_fps(self.path)
        elif frames is None:
            self._frames = video_io.list_frames(self.path)

    def __len__(self) -> int:
        if self._frames is not None:
            return len(self._frames)
        if self._video is not None:
            return len(self._video)
        if self._length is None:
            self._length = video_io.count_frames(self.path)  # counting keeps memory flat; decoding would not
        return self._length

    def stream(self, history: int) -> None:
        """Read a video forward in bounded memory, keeping the last ``history`` frames for overlaps."""
        self._history = history

    def stems(self) -> list[str] | None:
        """Frame file names without suffix (None for a video), used to pair rain with ground truth."""
        return None if self._frames is None else [p.stem for p in self._frames]

    def describe(self, index: int) -> str:
        """The file (or video and frame number) behind a frame, for error messages."""
        return str(self._frames[index]) if self._frames is not None else f"{self.path} frame {index}"

    def read(self, index: int) -> np.ndarray:
        """One RGB frame H,W,3 (uint8 or uint16)."""
        if self._frames is None:
            return self._read_video(index)
        if index in self._decoded:
            return self._decoded[index]
        frame = video_io.read_image(self._frames[index])
        if self.cache:
            self._decoded[index] = frame
        return frame

    def _read_video(self, index: int) -> np.ndarray:
        """From the streaming reader when ``stream()`` was called, else from the whole decoded video."""
        if self._history is None or self._video is not None:
            return self._load_video()[index]
        if self._reader is None:
            self._reader = video_io.ForwardVideoReader(self.path, self._history)
        return self._reader.read(index)

    def _load_video(self) -> np.ndarray:
        """Decode the whole video once: random access into compressed video is too slow to repeat."""
        if self._video is None:
            self._video, _ = video_io.read_frames(self.path)
        return self._video

    def __getstate__(self) -> dict[str, Any]:
        """Do not ship decoded frames or an open capture to worker processes; each worker opens its own."""
        state = dict(self.__dict__)
        state["_decoded"] = {}
        state["_video"] = None
        state["_reader"] = None
        return state


@dataclass
class Sequence:
    """One rainy sequence, its ground truth and layers when the dataset has them, over frames [start, stop)."""

    name: str
    rain: FrameSource
    clean: FrameSource | None = None
    layers: dict[str, FrameSource] = field(default_factory=dict)
    start: int = 0
    stop: int | None = None

    def __len__(self) -> int:
        return (len(self.rain) if self.stop is None else self.stop) - self.start

    def sources(self) -> dict[str, FrameSource]:
        """Every frame source by batch key."""
        found = {"rain": self.rain, **self.layers}
        if self.clean is not None:
            found["clean"] = self.clean
        return found

    def window(self, start: int, stop: int) -> Sequence:
        """The same sequence restricted to frames [start, stop) of the current window."""
        return Sequence(self.name, self.rain, self.clean, self.layers, self.start + start, self.start + stop)

    def check_pairing(self) -> None:
        """Same number of frames and the same frame names in every source, or a ValueError naming both."""
        for key, source in self.sources().items():
            if len(source) != len(self.rain):
                raise ValueError(
                    f"sequence '{self.name}': {key} {source.path} has {len(source)} frames "
                    f"but rain {self.rain.path} has {len(self.rain)}"
                )
            ours, theirs = self.rain.stems(), source.stems()
            if ours is not None and theirs is not None and ours != theirs:
                first = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
                raise ValueError(
                    f"sequence '{self.name}': frame {self.rain.describe(first)} has no partner in {source.path} "
                    f"(found {source.describe(first)}); rain and {key} frames must share names"
                )

    def read(
        self, positions: list[int] | range, min_size: int | None = None, keys: tuple[str, ...] | None = None
    ) -> dict[str, Tensor]:
        """Frames at the given positions as T,C,H,W tensors (uint8, or float for 16-bit files)."""
        sources = {k: v for k, v in self.sources().items() if keys is None or k in keys or k == "rain"}
        positions = list(positions)
        frames = {key: [source.read(self.start + p) for p in positions] for key, source in sources.items()}
        sample = {}
        for key, stack in frames.items():
            self._check_sizes(key, stack, positions, frames["rain"][0].shape[:2], min_size)
            array = np.stack(stack).transpose(0, 3, 1, 2)
            tensor = torch.from_numpy(array) if array.dtype == np.uint8 else torch.from_numpy(array / 65535.0).float()
            sample[key] = tensor[:, :1] if LAYER_CHANNELS.get(key) == 1 else tensor
        return sample

    def _check_sizes(
        self, key: str, frames: list[np.ndarray], positions: list[int], expected: tuple[int, ...], min_size: int | None
    ) -> None:
        """Frames of a clip must match the first rain frame's size and be at least ``crop_size``."""
        source = self.sources()[key]
        for frame, position in zip(frames, positions, strict=True):
            where = source.describe(self.start + position)
            if frame.shape[:2] != expected:
                raise ValueError(
                    f"frame size mismatch in sequence '{self.name}': {where} is {frame.shape[1]}x{frame.shape[0]} "
                    f"but rain {self.rain.describe(self.start + positions[0])} is {expected[1]}x{expected[0]}"
                )
            if min_size is not None and min(frame.shape[:2]) < min_size:
                raise ValueError(
                    f"frame {where} is {frame.shape[1]}x{frame.shape[0]}, smaller than crop_size={min_size}; "
                    "pass a smaller --data.crop_size (or crop_size=None for whole frames)"
                )


def to_float(sample: dict[str, Any]) -> dict[str, Any]:
    """uint8 frame tensors to float32 in [0, 1]; other entries unchanged."""
    return {k: v.float() / 255.0 if isinstance(v, Tensor) and v.dtype == torch.uint8 else v for k, v in sample.items()}


def clip_span(num_frames: int, frame_stride: int) -> int:
    """Frames of the sequence a clip covers."""
    return (num_frames - 1) * frame_stride + 1


class ClipDataset(Dataset):
    """Every clip of ``num_frames`` (every ``frame_stride``-th frame) of every sequence.

    Items are addressed by ``i`` or ``(epoch, i)``: the random crop / flip / reversal of a training
    clip is drawn from (seed, epoch, i), so any worker and a resumed run see the same stream.
    Without ``augment`` clips are centre-cropped to ``crop_size`` (deterministic validation).
    """

    def __init__(
        self,
        sequences: list[Sequence],
        num_frames: int,
        frame_stride: int = 1,
        crop_size: int | None = None,
        augment: ClipAugment | None = None,
        seed: int = 0,
    ) -> None:
        self.sequences = sequences
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.crop_size = crop_size
        self.augment = augment
        self.seed = seed
        span = clip_span(num_frames, frame_stride)
        for seq in sequences:
            if len(seq) < span:
                raise ValueError(
                    f"num_frames={num_frames} with frame_stride={frame_stride} spans {span} frames but sequence "
                    f"'{seq.name}' ({seq.rain.path}) has only {len(seq)}; lower --data.num_frames or frame_stride"
                )
        self.windows = [(s, start) for s, seq in enumerate(sequences) for start in range(len(seq) - span + 1)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        s, start = self.windows[i]
        seq = self.sequences[s]
        positions = [start + k * self.frame_stride for k in range(self.num_frames)]
        sample: dict[str, Any] = seq.read(positions, self.crop_size)
        sample["index"] = torch.tensor([seq.start + p for p in positions], dtype=torch.int64)
        if self.augment is not None:
            sample = self.augment(sample, np.random.default_rng([self.seed, epoch, i]))
        elif self.crop_size is not None:
            height, width = sample["rain"].shape[-2:]
            sample = crop(sample, *center_crop_box(height, width, self.crop_size), self.crop_size)
        sample = to_float(sample)
        sample["name"] = seq.name
        return sample


class SequenceDataset(Dataset):
    """Whole sequences, one per item, for test and predict (the model chunks them itself).

    ``segments`` gives the bounded-memory view the test and predict loaders use for long videos.
    """

    def __init__(self, sequences: list[Sequence], keys: tuple[str, ...] | None = None) -> None:
        self.sequences = sequences
        self.keys = keys

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict[str, Any]:
        seq = self.sequences[i]
        sample: dict[str, Any] = to_float(seq.read(list(range(len(seq))), keys=self.keys))
        sample["index"] = torch.arange(seq.start, seq.start + len(seq), dtype=torch.int64)
        sample["name"] = seq.name
        if seq.rain.fps is not None:
            sample["fps"] = seq.rain.fps
        return sample

    def segments(self, frames: int, context: int) -> SegmentDataset:
        """The same sequences served ``frames`` output frames at a time with ``context`` rain frames around."""
        return SegmentDataset(self.sequences, frames, context, self.keys)


class SegmentDataset(Dataset):
    """Whole sequences for test and predict, served in pieces so memory does not grow with their length.

    Item ``i`` holds ``frames`` consecutive frames of one sequence (``index``: their absolute
    numbers; ``clean`` when the dataset has it) and ``rain`` for those frames plus up to ``context``
    neighbours on each side; ``context`` says how many neighbours ``rain`` has before and after, and
    ``last_segment`` whether the sequence ends here. When ``frames`` is the model's ``chunk_frames``
    and ``context`` its ``chunk_overlap``, the restored frames equal those of the whole sequence in
    one batch, while a 1000-frame HD video only ever has ``frames + 2 * context`` frames in memory.
    """

    def __init__(
        self, sequences: list[Sequence], frames: int, context: int, keys: tuple[str, ...] | None = None
    ) -> None:
        if frames < 1 or context < 0:
            raise ValueError(f"segments need frames >= 1 and context >= 0, got {frames} and {context}")
        self.sequences, self.frames, self.context = sequences, frames, context
        self.keys = keys
        self.items = [
            (s, start, min(len(seq), start + frames))
            for s, seq in enumerate(sequences)
            for start in range(0, len(seq), frames)
        ]
        for seq in sequences:
            for source in seq.sources().values():
                source.stream(history=2 * context + 1)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, start, stop = self.items[i]
        seq = self.sequences[s]
        first, last = max(0, start - self.context), min(len(seq), stop + self.context)
        # one forward pass over [first, last) in every source (a video reader never seeks back);
        # the model sees rain with context, everything else is cut to the frames it restores
        window = seq.read(range(first, last), keys=self.keys)
        sample: dict[str, Any] = {k: v if k == "rain" else v[start - first : stop - first] for k, v in window.items()}
        sample = to_float(sample)
        sample["index"] = torch.arange(seq.start + start, seq.start + stop, dtype=torch.int64)
        sample["context"] = torch.tensor([start - first, last - stop], dtype=torch.int64)
        sample["last_segment"] = stop == len(seq)
        sample["sequence_frames"] = len(seq)
        sample["name"] = seq.name
        if seq.rain.fps is not None:
            sample["fps"] = seq.rain.fps
        return sample


def collate_sequence(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch of one whole sequence: tensors get B=1, ``name`` a one-element list, ``fps`` stays a float."""
    if len(items) != 1:
        raise ValueError(f"whole-sequence batches hold one sequence, got {len(items)}")
    item = items[0]
    batch = {k: v[None] if isinstance(v, Tensor) else v for k, v in item.items()}
    batch["name"] = [item["name"]]
    return batch


# ---------------------------------------------------------------------------------------------
# Layouts


def _require_dir(path: Path, root: str | Path, layout: str, hint: str) -> Path:
    """``path`` if it is a directory, else the DatasetNotFoundError of this layout."""
    if not path.is_dir():
        raise DatasetNotFoundError(root, layout, f"{path} is missing. {hint}")
    return path


def _children(folder: Path) -> list[Path]:
    """Sub-folders and video files of a folder in natural order (hidden entries skipped)."""
    found = [p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or video_io.is_video(p))]
    return sorted(found, key=video_io.natural_key)


def _partner(folder: Path, name: str) -> Path | None:
    """The ground-truth entry for sequence ``name``: a folder or a video file with any video suffix."""
    if (folder / name).is_dir():
        return folder / name
    for suffix in video_io.VIDEO_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def _make(name: str, rain: Path, clean: Path | None, layers: dict[str, Path], cache: bool) -> Sequence:
    """Build a sequence and check that all its sources pair frame by frame."""
    seq = Sequence(
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


def nturain_sequences(root: str | Path, split: str, cache: bool = False) -> list[Sequence]:
    """NTURain sequences of ``train``, ``test`` or ``real``; several rain versions share one GT folder."""
    folder = _require_dir(Path(root) / NTURAIN_SPLITS[split], root, NTURAIN_LAYOUT, "Pass the folder that holds it.")
    sequences = []
    for path in _children(folder):
        match = _NTU_RAIN.match(path.stem if path.is_file() else path.name)
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


def rainsyn25_sequences(root: str | Path, split: str, cache: bool = False) -> list[Sequence]:
    """RainSynLight25 / RainSynComplex25 sequences of ``train`` or ``test`` (``processed`` is the GT)."""
    hint = "Pass the folder that holds train/ and test/."
    rain_dir = _require_dir(Path(root) / split / "input", root, RAINSYN25_LAYOUT, hint)
    gt_dir = _require_dir(Path(root) / split / "processed", root, RAINSYN25_LAYOUT, hint)
    return _paired_children(rain_dir, gt_dir, {}, root, RAINSYN25_LAYOUT, cache)


RAINSYNALL100_LAYOUT = "RainSynAll100: {train,test}/{Rain_Haze,GT}/<NNNN>/<t>.jpg, optional Haze/, Trans/, Alpha/"
RAINSYNALL100_LAYERS = {"Haze": "haze", "Trans": "transmission", "Alpha": "atmosphere"}


def rainsynall100_sequences(root: str | Path, split: str, cache: bool = False) -> list[Sequence]:
    """RainSynAll100 sequences with their physical layers (Haze, Trans, Alpha = atmospheric light)."""
    hint = "Pass the folder that holds train/ and test/."
    rain_dir = _require_dir(Path(root) / split / "Rain_Haze", root, RAINSYNALL100_LAYOUT, hint)
    gt_dir = _require_dir(Path(root) / split / "GT", root, RAINSYNALL100_LAYOUT, hint)
    layers = {key: Path(root) / split / folder for folder, key in RAINSYNALL100_LAYERS.items()}
    return _paired_children(rain_dir, gt_dir, layers, root, RAINSYNALL100_LAYOUT, cache)


FOLDER_LAYOUT = "<root>/rain/<sequence>/ (frames or a video file) with <root>/gt/<sequence>/, optional layer folders"


def folder_sequences(root: str | Path, cache: bool = False, require_clean: bool = True) -> list[Sequence]:
    """Generic ``{rain,gt}/<sequence>`` frames or videos, with the layer folders ``synthesize`` writes."""
    hint = "Pass the folder that holds rain/ and gt/ (or train/ and test/ holding them)."
    rain_dir = _require_dir(Path(root) / "rain", root, FOLDER_LAYOUT, hint)
    gt_dir = Path(root) / "gt"
    if not gt_dir.is_dir():
        if require_clean:
            _require_dir(gt_dir, root, FOLDER_LAYOUT, hint)
        return [_make(p.stem if p.is_file() else p.name, p, None, {}, cache) for p in _children(rain_dir)]
    layers = {key: Path(root) / key for key in LAYER_CHANNELS}
    return _paired_children(rain_dir, gt_dir, layers, root, FOLDER_LAYOUT, cache)


def _paired_children(
    rain_dir: Path, gt_dir: Path, layer_dirs: dict[str, Path], root: str | Path, layout: str, cache: bool
) -> list[Sequence]:
    """One sequence per entry of ``rain_dir``, each with its same-named GT entry (and layers if present)."""
    sequences = []
    for path in _children(rain_dir):
        name = path.stem if path.is_file() else path.name
        clean = _partner(gt_dir, name)
        if clean is None:
            raise ValueError(f"rain sequence {path} has no ground truth in {gt_dir} (expected {gt_dir / name})")
        layers = {key: p for key, folder in layer_dirs.items() if folder.is_dir() and (p := _partner(folder, name))}
        sequences.append(_make(name, path, clean, layers, cache))
    if not sequences:
        raise DatasetNotFoundError(root, layout, f"{rain_dir} holds no sequence.")
    return sequences


IMAGE_LAYOUT = "single images: <root>/input/*.png with same-named <root>/target/*.png"


def image_sequences(root: str | Path, cache: bool = False) -> list[Sequence]:
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


def _single_image(rain: Path, clean: Path, cache: bool) -> Sequence:
    """A one-frame sequence over a single image file pair."""
    return Sequence(rain.stem, FrameSource(rain, cache, [rain]), FrameSource(clean, cache, [clean]))


INPUT_LAYOUT = f"a video file ({', '.join(video_io.VIDEO_SUFFIXES)}), a folder of frames, or a folder of videos"


def input_sequences(path: str | Path, cache: bool = False) -> list[Sequence]:
    """Rainy footage given by the user, without ground truth: one video, one frame folder, or a
    folder of videos (one sequence each)."""
    path = Path(path)
    if path.is_file() and video_io.is_video(path):
        return [Sequence(path.stem, FrameSource(path, cache))]
    if not path.is_dir():
        raise DatasetNotFoundError(path, INPUT_LAYOUT, "Pass --data.input=<video or folder>.")
    files = [p for p in sorted(path.iterdir(), key=video_io.natural_key) if not p.name.startswith(".") and p.is_file()]
    videos = [p for p in files if video_io.is_video(p)]
    images = [p for p in files if p.suffix.lower() in video_io.IMAGE_SUFFIXES]
    if videos and images:
        # neither reading is what the user meant for sure: the videos alone drop the images, the frames alone
        # drop the videos (a cover.jpg beside two clips became one 1-frame sequence)
        raise ValueError(
            f"{path} holds both videos ({_few(videos)}) and images ({_few(images)}); pass one video "
            f"(--data.input={videos[0]}), or a folder that holds only videos or only the frames of one sequence"
        )
    if videos:
        return [Sequence(name, FrameSource(p, cache)) for name, p in zip(video_names(videos), videos)]
    return [Sequence(path.name, FrameSource(path, cache))]


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


def hold_out(
    sequences: list[Sequence], fraction: float, seed: int, min_frames: int = 1
) -> tuple[list[Sequence], list[Sequence]]:
    """Split off a validation part by scene: rain versions sharing one GT (NTURain's t1_Rain_01,
    t1_Rain_02, ...) stay on one side. With a single scene, the last frames are held out instead."""
    if fraction <= 0:
        return sequences, []
    scenes: dict[str, list[int]] = {}
    for i, seq in enumerate(sequences):
        scenes.setdefault(str(seq.clean.path if seq.clean is not None else seq.name), []).append(i)
    groups = list(scenes.values())
    if len(groups) >= 2:
        count = min(len(groups) - 1, max(1, round(fraction * len(groups))))
        chosen = {i for g in np.random.default_rng(seed).permutation(len(groups))[:count] for i in groups[g]}
        return [s for i, s in enumerate(sequences) if i not in chosen], [
            s for i, s in enumerate(sequences) if i in chosen
        ]
    return [_tail_split(seq, fraction, min_frames)[0] for seq in sequences], [
        _tail_split(seq, fraction, min_frames)[1] for seq in sequences
    ]


def _tail_split(seq: Sequence, fraction: float, min_frames: int) -> tuple[Sequence, Sequence]:
    """The first frames for training and the last ``fraction`` (at least one clip) for validation."""
    cut = len(seq) - max(min_frames, round(fraction * len(seq)))
    if cut < min_frames:
        raise ValueError(
            f"sequence '{seq.name}' has {len(seq)} frames: too few to hold out val_fraction={fraction} "
            f"with clips of {min_frames} frames; set --data.val_fraction=0 or add sequences"
        )
    return seq.window(0, cut), seq.window(cut, len(seq))


def check_first_frames(sequences: list[Sequence], min_size: int | None) -> None:
    """Read the first frame of every sequence so a too-small or unreadable dataset fails at setup."""
    for seq in sequences:
        seq.read([0], min_size)
