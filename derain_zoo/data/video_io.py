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
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
# written as H.264; WebM cannot hold H.264 (and its VP9 would need a second quality scale), so .webm is only read
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


def _open_video(path: str | Path) -> tuple[InputContainer, VideoStream]:
    """Open a video and its first video stream with PyAV, turning any failure into an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError):
        raise ValueError(f"unreadable or corrupt video: {path}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"unreadable video: {path} holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: decoding is most of a long video's reading time
    return container, stream


class _Decoder:
    """The frames of a video's first video stream in presentation order, read forward once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.container, stream = _open_video(self.path)
        self.declared = stream.frames  # the header's count: exact in mp4/mov/avi, 0 where the container omits it
        self.decoded = 0
        self._frames = self.container.decode(stream)

    def next(self) -> av.VideoFrame | None:
        """The next frame, None at the end; a frame that fails to decode raises ValueError naming the file."""
        try:
            frame = next(self._frames, None)
        except av.FFmpegError as error:
            raise ValueError(
                f"corrupt video: {self.path} fails to decode after {self.decoded} frames ({error})"
            ) from None
        self.decoded += frame is not None
        return frame

    def close(self) -> None:
        self.container.close()


def rotation_of(frame: av.VideoFrame) -> int:
    """Degrees (0, 90, 180 or 270) a player turns the stored frame counterclockwise: a phone video's display matrix."""
    return round(frame.rotation / 90) % 4 * 90


def upright(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as RGB uint8 H,W,3, turned the way a player shows it (rain falls down in it).

    The colour conversion runs on one thread: swscale's slice threads deadlocked a data-loader worker
    forked from a process that had converted frames before (the worker waited on threads it never had).
    """
    rgb = frame.reformat(format="rgb24", threads=1).to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, k=rotation_of(frame) // 90))


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame (RGB uint8, upright) so long videos need not fit in memory."""
    decoder = _Decoder(path)
    try:
        while (frame := decoder.next()) is not None:
            yield upright(frame)
    finally:
        decoder.close()
    check_complete(path, decoder.decoded, decoder.declared)


@dataclass(frozen=True)
class VideoTiming:
    """When each frame of a video is shown and how a player turns it: what a restored copy keeps.

    ``pts`` are the frames' presentation times in ``time_base`` units, in order (variable frame
    timing is kept by reusing them); ``rotation`` is the display rotation of phone videos.
    """

    pts: tuple[int, ...]
    time_base: Fraction
    rotation: int
    fps: float


def probe(path: str | Path) -> VideoTiming:
    """Every frame's presentation time and the rotation, by decoding the video once (no RGB conversion).

    Decoding, not the container's index, is what counts: a file holding fewer frames than its header
    declares was cut short and is refused, or predict would restore the first part and exit 0.
    """
    decoder = _Decoder(path)
    pts: list[int | None] = []
    rotation = 0
    try:
        time_base = decoder.container.streams.video[0].time_base or Fraction(1, 1)
        while (frame := decoder.next()) is not None:
            rotation = rotation if pts else rotation_of(frame)
            pts.append(frame.pts)
    finally:
        decoder.close()
    if not pts:
        raise ValueError(f"empty sequence: {path} holds no decodable frames")
    check_complete(path, decoder.decoded, decoder.declared)
    fps = video_fps(path)
    # a raw stream has no timestamps, and AVI's are decode order (out of order behind B-frames): use the stated rate
    if None in pts or any(b <= a for a, b in zip(pts, pts[1:], strict=False)):  # type: ignore[operator]
        return VideoTiming(tuple(range(len(pts))), _rate(fps) ** -1, rotation, fps)
    return VideoTiming(tuple(int(p) for p in pts), Fraction(time_base), rotation, fps)  # type: ignore[arg-type]


def count_frames(path: str | Path) -> int:
    """Exact number of frames of a video, counted by decoding it (container headers may only estimate it)."""
    return len(probe(path).pts)


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
    by a few context frames: the decoder stays open between reads, skipped frames are decoded but
    not converted, and the last ``history`` frames are kept so an overlap is served from memory. A
    read behind that history reopens the file (correct, only slower).
    """

    def __init__(self, path: str | Path, history: int = 8) -> None:
        self.path = Path(path)
        self.history = max(1, history)
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder: _Decoder | None = None
        self._next = 0

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (RGB uint8); an index past the end raises VideoEndedError naming the file."""
        if index in self._recent:
            return self._recent[index]
        if self._decoder is None or index < self._next:
            self._reopen()
        assert self._decoder is not None
        while (frame := self._decoder.next()) is not None and self._next < index:
            self._next += 1
        if frame is None:
            raise VideoEndedError(f"{self.path} has no frame {index}: it ends after {self._next} frames")
        self._next += 1
        rgb = upright(frame)
        self._recent[index] = rgb
        while len(self._recent) > self.history:
            self._recent.popitem(last=False)
        return rgb

    def _reopen(self) -> None:
        self.close()
        self._decoder = _Decoder(self.path)
        self._next = 0

    def close(self) -> None:
        """Close the file (the next read reopens it)."""
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None


def video_fps(path: str | Path) -> float:
    """Mean frame rate of a video file (DEFAULT_FPS when the container does not say)."""
    container, stream = _open_video(path)
    try:
        rate = stream.average_rate or stream.guessed_rate
    finally:
        container.close()
    return float(rate) if rate and rate > 0 else DEFAULT_FPS


def _rate(fps: float) -> Fraction:
    """A frame rate as the fraction encoders take: 29.97 becomes 30000/1001, 25.0 stays 25."""
    return Fraction(fps).limit_denominator(1001)


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


DEFAULT_CRF = 18  # H.264 constant-rate factor: 0 lossless, 18 visually near-lossless, 23 x264's own default, 51 worst
MAX_CRF = 51
_FASTSTART = (".mp4", ".mov", ".m4v")  # the index first, so a browser plays the file while it downloads
# AVI holds one frame rate and no rotation flag: its frames are written upright at the source's mean rate
_CONSTANT_RATE = (".avi",)


class VideoFileWriter:
    """Append RGB uint8 frames to a video file as H.264 (yuv420p, plays in browsers), one at a time.

    The encoder opens at the first frame, which fixes the size; frames arrive as they are restored,
    so a long video never has to be held in memory to be written. ``crf`` is x264's quality (lower
    is better and larger). With ``source``, the video the frames were restored from, the output
    keeps what a viewer gets from it: each frame's presentation time (variable frame timing too),
    the rotation flag of phone videos (frames arrive upright and are stored turned back, as in the
    source) and its audio, copied packet by packet as the video advances. AVI keeps only the audio.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        source: str | Path | None = None,
        crf: int = DEFAULT_CRF,
        name: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path  # what errors call the file: the target, not a hidden partial name
        self.fps = float(fps)
        self.source = Path(source) if source is not None else None
        self.crf = check_crf(crf)
        self.frames = 0
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._timing: VideoTiming | None = None
        self._audio: _AudioCopy | None = None

    def write(self, frame: np.ndarray) -> None:
        """Encode one H,W,3 RGB uint8 frame (upright, as the source's frames were read)."""
        try:
            if self._container is None:
                self._open(frame.shape[0], frame.shape[1])
            assert self._stream is not None and self._timing is not None
            stored = np.ascontiguousarray(np.rot90(frame, k=-self._timing.rotation // 90))
            encoded = av.VideoFrame.from_ndarray(stored, format="rgb24")
            encoded.pts, encoded.time_base = self._pts(self.frames), self._timing.time_base
            if self._audio is not None:
                self._audio.copy_until(float(encoded.pts * self._timing.time_base))
            self._mux(self._stream.encode(encoded))
        except av.FFmpegError as error:
            raise WriteError(f"could not write {self.name}: {error}") from None
        self.frames += 1

    def _open(self, height: int, width: int) -> None:
        """Open the file and its H.264 stream (and the source's audio) at the first frame."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        timing = probe(self.source) if self.source is not None else None
        rate = _rate(timing.fps if timing else self.fps)
        if timing is None or self.path.suffix.lower() in _CONSTANT_RATE:
            timing = VideoTiming((), rate**-1, 0, float(rate))
        self._timing = timing
        options = {"movflags": "+faststart"} if self.path.suffix.lower() in _FASTSTART else {}
        self._container = av.open(str(self.path), "w", options=options)
        stream = self._container.add_stream("libx264", rate=rate, options={"crf": str(self.crf)})
        turned = self._timing.rotation in (90, 270)
        stream.width, stream.height = (height, width) if turned else (width, height)
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = self._timing.time_base
        # swscale converts RGB to YUV with BT.601 coefficients: say so, or players assume BT.709 for HD
        stream.codec_context.colorspace = stream.codec_context.color_primaries = av.video.reformatter.Colorspace.ITU601
        if self._timing.rotation:
            stream.set_display_rotation(self._timing.rotation)
        self._stream = stream
        self._audio = _AudioCopy.open(self.source, self._container) if self.source is not None else None

    def _pts(self, index: int) -> int:
        """The presentation time of frame ``index``: the source's own, or the next tick of a constant rate."""
        assert self._timing is not None
        pts = self._timing.pts
        if index < len(pts):
            return pts[index]
        if not pts:
            return index
        step = pts[-1] - pts[-2] if len(pts) > 1 else 1
        return pts[-1] + step * (index - len(pts) + 1)

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio and finish the file (no-op when no frame came)."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    container.mux(packet)
            if self._audio is not None:
                self._audio.copy_until(None)
        except av.FFmpegError as error:
            raise WriteError(f"could not write {self.name}: {error}") from None
        finally:
            if self._audio is not None:
                self._audio.close()
            _close_quietly(container)

    def abort(self) -> None:
        """Close without flushing: the file is removed by the caller and need not be whole."""
        container, self._container = self._container, None
        if self._audio is not None:
            self._audio.close()
        if container is not None:
            _close_quietly(container)

    def finish(self, name: str | Path | None = None) -> None:
        """Close the file and check it holds every frame written, else raise WriteError naming it (or ``name``).

        A full disk can leave a short or unreadable file behind an encoder that reported success.
        Counting the frames back costs one decode of the output, small next to restoring it, and is
        the only way to know the file is whole.
        """
        self.close()
        try:
            found = count_frames(self.path)
        except (OSError, ValueError):
            found = 0
        if found != self.frames:
            raise WriteError(
                f"could not write {name or self.name}: it holds {found} of {self.frames} frames (disk full?)"
            )


def _close_quietly(container: OutputContainer) -> None:
    """Close a container whose write already failed: the first error is the one to report."""
    try:
        container.close()
    except av.FFmpegError:
        pass


class _AudioCopy:
    """The source video's first audio stream, muxed into an output as its video advances.

    Packets are copied unchanged where the output container can hold the codec, else decoded and
    encoded to AAC. Copying as the video advances keeps the file interleaved and memory bounded.
    """

    def __init__(self, source: InputContainer, audio: AudioStream, output: OutputContainer) -> None:
        self._source = source
        self._output = output
        self._copy = audio.codec_context.name in output.supported_codecs
        if self._copy:
            self._stream = output.add_stream_from_template(audio)
        else:
            self._stream = output.add_stream("aac", rate=audio.codec_context.sample_rate)
        self._packets = source.demux(audio)
        self._held: av.Packet | None = None

    @classmethod
    def open(cls, path: Path, output: OutputContainer) -> _AudioCopy | None:
        """The copier of ``path``'s audio, or None when the source has no audio stream."""
        source = av.open(str(path))
        if not source.streams.audio:
            source.close()
            return None
        return cls(source, source.streams.audio[0], output)

    def copy_until(self, seconds: float | None) -> None:
        """Mux the audio packets that start before ``seconds`` (all that are left for None)."""
        while (packet := self._held or next(self._packets, None)) is not None:
            self._held = None
            if packet.pts is None and packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._held = packet
                return
            self._mux(packet)
        if not self._copy:
            for encoded in self._stream.encode(None):
                self._output.mux(encoded)

    def _mux(self, packet: av.Packet) -> None:
        if self._copy:
            packet.stream = self._stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            for encoded in self._stream.encode(frame):
                self._output.mux(encoded)

    def close(self) -> None:
        self._source.close()


def check_crf(crf: int) -> int:
    """The H.264 quality, refused in one line outside x264's range."""
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= MAX_CRF:
        raise ValueError(f"--crf {crf!r}: H.264 quality must be an integer from 0 (lossless) to {MAX_CRF} (worst)")
    return crf
