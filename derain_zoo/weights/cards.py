"""Model cards: ``<alias>-<name>.md`` beside each weights file, generated from its manifest, never edited by hand.

The front matter is a Hugging Face model card's (``license``, ``datasets``, ``metrics``, ``tags``
and a ``model-index`` whose results say how each score was measured: the Y channel, BasicSR's
convention and which frames). Its ``derain_zoo`` block repeats what the file claims (file, size,
sha256, parameter count, architecture), so a test can recompute every claim from the files.
``derain-zoo weights cards`` rewrites every card of the weights folder; an export writes its own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from derain_zoo.weights import Shipped

LICENCE = "mit"  # the zoo's own weights are under the project's licence; a converted release names its own
PAIRED = "PSNR and SSIM on the Y channel (BT.601, 16-235) of frames quantised to uint8, BasicSR's convention"
A1 = {"type": "nturain", "name": "NTURain a1 (real rain with ground truth; never trained or tuned on)"}
RA1 = {"type": "nturain", "name": "NTURain ra1 (real rain, no ground truth; never trained or tuned on)"}
SYNTHETIC = {"type": "derain-zoo-synthetic", "name": "derain-zoo built-in synthetic rain, test split"}
PAIRED_ARGS = {
    "channel": "Y (BT.601, 16-235)",
    "convention": "BasicSR",
    "crop_border": 0,
    "ssim_window": "11x11 Gaussian",
}
BLIND_ARGS = {"channel": "Y (NIQE, BasicSR's convention); gray (BRISQUE, the authors' MATLAB)", "frames": "all"}


def card_path(entry: Shipped) -> Path:
    """Where the card of a weights file lives: beside its manifest, ``<alias>-<name>.md``."""
    return entry.manifest_path.with_suffix(".md")


def _metric(kind: str, label: str, value: Any, protocol: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return {"type": kind, "name": label, "value": round(float(value), 4), "args": dict(protocol)}  # no YAML aliases


def _result(dataset: dict[str, str], split: str, metrics: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    kept = [metric for metric in metrics if metric is not None]
    if not kept:
        return None
    task = {"type": "image-to-image", "name": "Video rain removal"}
    return {"task": task, "dataset": {**dataset, "split": split}, "metrics": kept}


def _paired(dataset: dict[str, str], split: str, block: dict[str, Any]) -> dict[str, Any] | None:
    """PSNR-Y and SSIM-Y (those the block holds) on ``split`` of a dataset with ground truth."""
    protocol = {**PAIRED_ARGS, "frames": split}
    psnr = _metric("psnr", "PSNR-Y", block.get("psnr_y"), protocol)
    return _result(dataset, split, [psnr, _metric("ssim", "SSIM-Y", block.get("ssim_y"), protocol)])


def results(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's scores as model-index results, each metric with the protocol it was measured under."""
    a1, crop, ra1 = scores.get("a1") or {}, scores.get("a1_crop") or {}, scores.get("ra1") or {}
    size = crop.get("size", "?")
    window = f"{size}x{size} crop at top {crop.get('top')}, left {crop.get('left')}"
    found = [
        _paired(A1, f"frames 1-{a1.get('frames', '?')}", a1),
        _paired(A1, f"frames 1-{crop.get('frames', '?')}, {window}", crop),
        _result(
            RA1,
            "all frames",
            [
                _metric("niqe", "NIQE (lower is better)", ra1.get("niqe"), BLIND_ARGS),
                _metric("brisque", "BRISQUE (lower is better)", ra1.get("brisque"), BLIND_ARGS),
            ],
        ),
        _paired(
            SYNTHETIC, "4 sequences of 10 frames, 256x256, sequences weighted equally", scores.get("synthetic") or {}
        ),
    ]
    return [result for result in found if result is not None]


def front_matter(entry: Shipped, parameters: int) -> dict[str, Any]:
    """The card's YAML front matter: Hugging Face's fields, then the file's own claims under ``derain_zoo``."""
    manifest = entry.manifest
    source = manifest.get("source") or {}
    found = results(manifest.get("scores") or {})
    metrics = sorted({metric["type"] for result in found for metric in result["metrics"]})
    return {
        "license": str(source.get("licence", LICENCE)).lower(),
        "library_name": "derain-zoo",
        "pipeline_tag": "image-to-image",
        "tags": ["video-deraining", "rain-removal", "pytorch-lightning", "derain-zoo", entry.model],
        "datasets": [str(manifest.get("data_version") or "unknown")],
        "metrics": metrics,
        "model-index": [{"name": f"{entry.model}-{entry.name}", "results": found}],
        "derain_zoo": {
            "model": entry.model,
            "name": entry.name,
            "file": manifest["file"],
            "size_bytes": manifest["size_bytes"],
            "sha256": manifest["sha256"],
            "parameters": parameters,
            "architecture": entry.init_args,
        },
    }


def _provenance(entry: Shipped) -> list[str]:
    manifest = entry.manifest
    source = manifest.get("source") or {}
    if source:
        lines = [
            f"Converted, tensors unchanged, from the authors' release `{source.get('file')}` of "
            f"{source.get('repository')} (sha256 `{source.get('sha256')}`), licence {source.get('licence')} "
            f"(`{source.get('licence_file', 'see the repository')}`).",
            f"Paper: {source.get('paper', '-')}.",
        ]
    else:
        lines = [
            f"Trained by derain-zoo's recipe `{manifest.get('recipe')}` on `{manifest.get('data_version')}` "
            f"({manifest.get('steps')} steps, {manifest.get('wall_minutes')} minutes on a CPU).",
        ]
    previous = manifest.get("converted_from")
    if previous:
        lines.append(f"Stored as safetensors since `{previous['file']}` (sha256 `{previous['sha256']}`), bit for bit.")
    return lines


def _score(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _table(scores: dict[str, Any]) -> list[str]:
    a1, ra1, synthetic = scores.get("a1") or {}, scores.get("ra1") or {}, scores.get("synthetic") or {}
    median, rain = scores.get("a1_median") or {}, ra1.get("rain") or {}
    return [
        "| | a1 PSNR-Y / SSIM-Y | ra1 NIQE / BRISQUE | synthetic PSNR-Y |",
        "| --- | --- | --- | --- |",
        f"| these weights | {_score(a1.get('psnr_y'), 2)} / {_score(a1.get('ssim_y'), 4)} | "
        f"{_score(ra1.get('niqe'), 2)} / {_score(ra1.get('brisque'), 2)} | {_score(synthetic.get('psnr_y'), 2)} |",
        f"| rainy input | {_score(a1.get('rain_psnr_y'), 2)} / {_score(a1.get('rain_ssim_y'), 4)} | "
        f"{_score(rain.get('niqe'), 2)} / {_score(rain.get('brisque'), 2)} | "
        f"{_score(synthetic.get('rain_psnr_y'), 2)} |",
        f"| 5-frame temporal median | {_score(median.get('psnr_y'), 2)} / {_score(median.get('ssim_y'), 4)} | - | - |",
    ]


def card_text(entry: Shipped, parameters: int, title: str) -> str:
    """The whole card: front matter, then what the weights are, how to use them, where they come from, scores."""
    header = yaml.safe_dump(front_matter(entry, parameters), sort_keys=False, allow_unicode=True, width=110)
    frames = (entry.manifest.get("scores") or {}).get("a1", {}).get("frames", "?")
    body = [
        f"# {entry.model} `{entry.name}`: {title}",
        "",
        "<!-- generated from the manifest by `derain-zoo weights cards`; edit the manifest, not this file -->",
        "",
        f"`{entry.manifest['file']}`: {parameters:,} learnable parameters (the whole model as stored, a "
        f"training critic included where it has one), {entry.manifest['size_bytes']:,} bytes, safetensors "
        "(no code runs on load), with the architecture it needs in its metadata.",
        "",
        "    pip install derain-zoo",
        f"    derain-zoo predict --model={entry.model} --model.weights={entry.name} --data.input=rainy.mp4 "
        "--output=derained.mp4",
        "",
        "## Provenance",
        "",
        *_provenance(entry),
        "",
        "## Scores",
        "",
        f"{PAIRED}, SSIM with an 11x11 Gaussian (sigma 1.5), no border cropped; per frame, averaged per "
        f"sequence, sequences weighted equally. a1: NTURain's real rainy clip with ground truth, frames 1-{frames}, "
        "every frame scored, the model run under its own test protocol (CONTRIBUTING.md). ra1: the real rainy "
        "clip without ground truth, scored with NIQE and BRISQUE as the authors' MATLAB releases compute them. "
        "synthetic: the built-in synthetic test split. Neither a1 nor ra1 is ever trained or tuned on.",
        "",
        *_table(entry.manifest.get("scores") or {}),
        "",
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)


def _model_facts(entry: Shipped) -> tuple[int, str]:
    """The parameter count of the model the manifest describes, and the class it loads into."""
    from derain_zoo.registry import model_registry
    from derain_zoo.weights.safetensors_format import parameter_count

    cls = model_registry()[entry.model]
    title = f"{cls.__name__} (`{cls.__module__}.{cls.__qualname__}`)"
    parameters = entry.manifest.get("parameters")
    return (int(parameters) if parameters is not None else parameter_count(cls(**entry.init_args))), title


def write_card(entry: Shipped) -> Path:
    """Write (or rewrite) the card of one weights file; return its path."""
    path = card_path(entry)
    path.write_text(card_text(entry, *_model_facts(entry)))
    return path


def read_front_matter(path: Path) -> dict[str, Any]:
    """A card's front matter, as a hub or a test reads it."""
    text = path.read_text()
    if not text.startswith("---\n"):
        raise ValueError(f"model card {path} has no front matter")
    return yaml.safe_load(text[4 : text.index("\n---\n", 4)])
