"""Read and write frame folders and video files; every error names the file it is about.

Frames are uint8 (or uint16 for 16-bit PNG layers) numpy arrays ``H,W,3`` in RGB order.
Conversions, documented because datasets contain them: grayscale frames are replicated to three
channels, the alpha channel of RGBA frames is dropped (rain datasets store opaque frames; a
transparent frame would have no defined background).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
# OpenCV's writer has no WebM codec here (mp4v/MJPG only), so .webm is read but never written
WRITABLE_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")
DEFAULT_FPS = 25.0
FRAME_FILE = re.compile(r"(\d{5,})\.png")  # what write_frames names its frames: 00001.png, 00002.png, ...


class WriteError(OSError, ValueError):
    """A frame or video could not be written completely (disk full, read-only folder, encoder failure).

    An OSError for code that handles I/O failures, and a ValueError so the command line reports it
    in one line naming the file.
    """


def natural_key(path: Path) -> list[int | str]:
    """Sort key so that ``9.png`` comes before ``10.png`` (RainSyn25 names frames without padding)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def is_video(path: str | Path) -> bool:
    """True for a file with a video suffix (decided by name so a missing file still gets a clear error)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_frames(folder: str | Path) -> list[Path]:
    """The image files of a frame folder in natural order; an empty folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder {folder} does not exist")
    # hidden files (macOS ._00001.png resource forks, editors' backups) are not frames
    frames = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    frames.sort(key=natural_key)
    if not frames:
        raise ValueError(f"empty sequence: {folder} holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    return frames


def to_rgb(image: np.ndarray, path: str | Path) -> np.ndarray:
    """Bring a decoded OpenCV image to H,W,3 RGB: gray replicated, alpha dropped, BGR swapped."""
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return image[:, :, ::-1]
    if channels == 4:
        return image[:, :, 2::-1]
    raise ValueError(f"unsupported frame {path}: {channels} channels (expected gray, RGB or RGBA)")


def read_image(path: str | Path) -> np.ndarray:
    """Decode one frame to RGB H,W,3 (uint8, or uint16 for 16-bit files); corrupt files raise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame {path} does not exist")
    data = path.read_bytes()
    if path.suffix.lower() in (".jpg", ".jpeg") and data and not jpeg_is_complete(data):
        raise ValueError(f"truncated frame: {path} ends before its JPEG end-of-image marker")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None or image.size == 0:
        raise ValueError(f"unreadable or corrupt frame: {path}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported frame {path}: pixel type {image.dtype} (expected 8 or 16 bit)")
    return np.ascontiguousarray(to_rgb(image, path))


def jpeg_is_complete(data: bytes) -> bool:
    """False when a JPEG's data ends before its end-of-image marker (FF D9): the file was cut short.

    libjpeg decodes a truncated file without error, filling the missing rows with grey, so the
    frame would be used (or written into ground truth) as if it were whole. A file ending in FF D9
    is complete: entropy-coded data never holds FF D9, so a cut cannot leave it last. Otherwise
    (bytes appended after the image, or a cut) the markers are walked to find the end of the image.
    A structure this walk does not understand is left to the decoder, which already accepted it.
    """
    if data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return True
    pos = 2  # after SOI
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            return True
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte or a marker without length
            pos += 1 if marker == 0xFF else 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: skip entropy-coded data (FF 00 stuffing, FF D0-D7 restarts)
            pos = _end_of_scan(data, pos)
    return False


def _end_of_scan(data: bytes, pos: int) -> int:
    """Position of the first marker after the entropy-coded data starting at ``pos`` (len(data) if none)."""
    while (pos := data.find(b"\xff", pos)) >= 0 and pos + 1 < len(data):
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos
    return len(data)


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame (RGB uint8) so long videos need not fit in memory."""
    capture = _open_video(path)
    declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    decoded = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            decoded += 1
            yield np.ascontiguousarray(frame[:, :, ::-1])
    finally:
        capture.release()
    check_complete(path, decoded, declared)


def count_frames(path: str | Path) -> int:
    """Exact number of frames of a video, counted by demuxing it (container headers may only estimate it).

    A file holding fewer frames than its header declares was cut short (a copy or download that
    stopped): it is refused, or predict would restore the first part and exit 0 with only a
    decoder warning.
    """
    capture = _open_video(path)
    count = 0
    try:
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise ValueError(f"empty sequence: {path} holds no decodable frames")
    check_complete(path, count, declared)
    return count


# containers whose header states the frame count exactly (Matroska / WebM only estimate it from the duration)
EXACT_COUNT_SUFFIXES = (".avi", ".mp4", ".mov", ".m4v")


def check_complete(path: str | Path, decoded: int, declared: int) -> None:
    """Refuse a video that decodes to fewer frames than its header declares: it was truncated."""
    if Path(path).suffix.lower() in EXACT_COUNT_SUFFIXES and 0 < decoded < declared:
        raise ValueError(
            f"truncated video: {path} declares {declared} frames but only {decoded} decode (cut short while "
            "copying or recording?); use a complete copy"
        )


class VideoEndedError(IndexError, ValueError):
    """A video holds fewer frames than asked for (truncated or changed since it was counted).

    An IndexError for code that indexes frames, and a ValueError so the command line reports it as
    a problem with the user's file in one line.
    """


class ForwardVideoReader:
    """Frame access into a video file that is cheap when reads move forward, in bounded memory.

    Test and predict read a long video window by window, each window overlapping the previous one
    by a few context frames: the capture stays open between reads, skipped frames are only
    grabbed, and the last ``history`` frames are kept so an overlap is served from memory. A read
    behind that history reopens the file (correct, only slower).
    """

    def __init__(self, path: str | Path, history: int = 8) -> None:
        self.path = Path(path)
        self.history = max(1, history)
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._capture: cv2.VideoCapture | None = None
        self._next = 0

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (RGB uint8); an index past the end raises VideoEndedError naming the file."""
        if index in self._recent:
            return self._recent[index]
        if self._capture is None or index < self._next:
            self._reopen()
        assert self._capture is not None
        while self._next < index:
            if not self._capture.grab():
                raise VideoEndedError(f"{self.path} has no frame {index}: it ends after {self._next} frames")
            self._next += 1
        ok, frame = self._capture.read()
        if not ok:
            raise VideoEndedError(f"{self.path} has no frame {index}: it ends after {self._next} frames")
        self._next += 1
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        self._recent[index] = rgb
        while len(self._recent) > self.history:
            self._recent.popitem(last=False)
        return rgb

    def _reopen(self) -> None:
        self.close()
        self._capture = _open_video(self.path)
        self._next = 0

    def close(self) -> None:
        """Release the capture (the next read reopens it)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def video_fps(path: str | Path) -> float:
    """Frame rate stored in a video file (DEFAULT_FPS when the container does not say)."""
    capture = _open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return float(fps) if fps and fps > 0 else DEFAULT_FPS


def _open_video(path: str | Path) -> cv2.VideoCapture:
    """Open a video with OpenCV, turning its silent failure into an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"unreadable or corrupt video: {path}")
    return capture


def iter_frames(path: str | Path) -> tuple[Iterator[np.ndarray], float]:
    """Frames of a video file or frame folder as an iterator, plus the fps (DEFAULT_FPS for folders)."""
    path = Path(path)
    if is_video(path):
        fps = video_fps(path)
        return iter_video(path), fps
    if path.is_dir():
        return (read_image(p) for p in list_frames(path)), DEFAULT_FPS
    raise FileNotFoundError(f"{path} is neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a frame folder")


def read_frames(path: str | Path) -> tuple[np.ndarray, float]:
    """Whole sequence as T,H,W,3 RGB plus fps; frames of different sizes or no frames raise."""
    frames, fps = iter_frames(path)
    frames = list(frames)
    if not frames:
        raise ValueError(f"empty sequence: {path} holds no decodable frames")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames of {path} differ in size: {sorted(shapes)}")
    return np.stack(frames), fps


def write_frames(folder: str | Path, frames: Iterable[np.ndarray], start: int = 1) -> list[Path]:
    """Write RGB frames (uint8 or uint16, H,W,3 or H,W) as ``%05d.png`` numbered from ``start``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, frame in enumerate(frames, start):
        path = folder / f"{number:05d}.png"
        image = frame if frame.ndim == 2 else np.ascontiguousarray(frame[:, :, ::-1])
        if not cv2.imwrite(str(path), image):
            raise WriteError(f"could not write frame {path} (disk full or folder not writable?)")
        written.append(path)
    return written


class VideoFileWriter:
    """Append RGB uint8 frames to a video file (mp4v for .mp4/.mov/.m4v, MJPG for .avi), one at a time.

    The encoder opens at the first frame, which fixes the size; frames arrive as they are restored,
    so a long video never has to be held in memory to be written.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        """Encode one H,W,3 RGB uint8 frame."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            codec = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, (width, height))
            if not self._writer.isOpened():
                raise WriteError(f"could not open {self.path} for writing (codec {codec})")
        self._writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (nothing to do when no frame was written: the encoder never opened)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def finish(self, name: str | Path | None = None) -> None:
        """Close the file and check it holds every frame written, else raise WriteError naming it (or ``name``).

        OpenCV's writer reports no failure: on a full disk it prints a warning per frame and leaves
        a short or unreadable file. Counting the frames back costs one decode of the output, small
        next to restoring it, and is the only way to know the file is whole.
        """
        self.close()
        try:
            found = count_frames(self.path)
        except (OSError, ValueError):
            found = 0
        if found != self.frames:
            raise WriteError(
                f"could not write {name or self.path}: it holds {found} of {self.frames} frames (disk full?)"
            )
