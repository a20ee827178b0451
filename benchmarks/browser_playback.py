"""Does a browser play what ``derain-zoo predict`` writes? Headless Chromium loads it in a ``<video>`` element.

    apt-get install -y chromium        # Debian's package; any Chromium or Chrome on PATH will do
    python benchmarks/browser_playback.py [--browser chromium] [--model temporal_median]

Takes the shipped real rainy clip (``derain_zoo/assets/ra1_rain.mp4``: MPEG-4 Part 2, what OpenCV's
writer made before the zoo wrote H.264), gives it a sine-wave AAC sound track, runs ``derain-zoo
predict --side_by_side`` on it, and loads both files in a page. For each it prints what PyAV reads
(codecs, duration) and what the browser reports: the duration and size of the video it loaded,
whether it decoded video and audio while playing, or the media error it raised instead. CI does
not run this (no browser there); the result is quoted in ``docs/video.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ASSET = Path(__file__).resolve().parents[1] / "derain_zoo" / "assets" / "ra1_rain.mp4"
PAGE = """<!doctype html><title>pending</title>
<video id="v" src="{src}" muted autoplay></video>
<script>
const v = document.getElementById("v");
const report = (extra) => {{ document.title = JSON.stringify(Object.assign({{
  duration: v.duration, width: v.videoWidth, height: v.videoHeight, readyState: v.readyState,
  played: v.currentTime, videoBytes: v.webkitVideoDecodedByteCount,
  audioBytes: v.webkitAudioDecodedByteCount}}, extra)); }};
v.addEventListener("error", () => report({{error: v.error.code, message: v.error.message}}));
v.addEventListener("ended", () => report({{ended: true}}));
v.addEventListener("loadedmetadata", () => report({{}}));
v.addEventListener("loadeddata", () => report({{}}));
v.addEventListener("timeupdate", () => report({{}}));
</script>"""


def with_sound(source: Path, target: Path, sample_rate: int = 44100) -> None:
    """``source``'s video packets unchanged plus a 440 Hz AAC tone as long as the video."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video = src.streams.video[0]
        copy = out.add_stream_from_template(video)
        audio = out.add_stream("aac", rate=sample_rate)
        audio.layout = "mono"
        seconds = float(video.duration * video.time_base)
        for packet in src.demux(video):
            if packet.size:
                packet.stream = copy
                out.mux(packet)
        tone = np.sin(2 * np.pi * 440 * np.arange(int(seconds * sample_rate)) / sample_rate).astype(np.float32) * 0.3
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


def describe(path: Path) -> str:
    """What ffprobe would say: each stream's codec and duration."""
    with av.open(str(path)) as container:
        parts = [
            f"{s.type} {s.codec_context.name}"
            + (f" {s.codec_context.pix_fmt}" if s.type == "video" else "")
            + (f" {float(s.duration * s.time_base):.3f} s" if s.duration else "")
            for s in container.streams
        ]
    return ", ".join(parts)


def in_browser(browser: str, video: Path) -> dict:
    """Load ``video`` in a page of headless ``browser`` and return what its <video> element reported."""
    page = video.with_suffix(".html")
    page.write_text(PAGE.format(src=video.name))
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False).stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    text = title.group(1).replace("&quot;", '"') if title else "no page"
    return json.loads(text) if text.startswith("{") else {"page": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browser", default=None, help="browser executable (default: chromium or google-chrome)")
    parser.add_argument("--model", default="temporal_median", help="zoo model to restore with")
    args = parser.parse_args()
    browser = args.browser or shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no chromium on PATH: apt-get install -y chromium, or pass --browser")
    print(subprocess.run([browser, "--version"], capture_output=True, text=True, check=False).stdout.strip())
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "ra1_with_sound.mp4"
        with_sound(ASSET, source)
        output = work / "derained.mp4"
        predict = ["derain-zoo", "predict", f"--model={args.model}", "--data=video", f"--data.input={source}"]
        predict += [f"--output={output}", "--side_by_side", "--trainer.logger=false"]
        predict += [f"--trainer.default_root_dir={work}"]
        subprocess.run(predict, check=True, capture_output=True)
        for label, video in (("shipped clip (OpenCV mp4v)", ASSET), ("derain-zoo predict output", output)):
            local = work / f"page_{video.name}"
            shutil.copy(video, local)
            print(f"{label}: {describe(local)}\n  browser: {in_browser(browser, local)}")


if __name__ == "__main__":
    main()
