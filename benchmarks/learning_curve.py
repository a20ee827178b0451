"""Learning curve of a CPU recipe: validation PSNR-Y against step, and real-rain a1 PSNR-Y at its checkpoints.

    python benchmarks/learning_curve.py --model j4rnet --runs runs/cpu/j4rnet_phase1 runs/cpu/j4rnet
    python benchmarks/learning_curve.py --model ddsa --runs runs/cpu/ddsa --a1-points 6

Reads ``val/psnr_y`` from each run folder's TensorBoard log (stages in order, steps continued from one
stage to the next), scores the ``e*-s*.ckpt`` checkpoints on the NTURain a1 sample (``transfer.py``'s
scoring; all of them, or ``--a1-points`` spread evenly over the chained steps, the last always among
them, since a slow model takes minutes per checkpoint on the 168 a1 frames) and draws both, with the
rainy input's a1 PSNR-Y as a line, into ``derain_zoo/models/<model>/learning_curve.png`` and a JSON
of the points beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import A1, load_checkpoint, paired_y, read_sequence, reference_scores

MODELS = Path(__file__).resolve().parents[1] / "derain_zoo" / "models"
STEP = re.compile(r"e(\d+)-s(\d+)\.ckpt$")


def validation_curve(run: Path) -> list[tuple[int, float]]:
    """(step, val/psnr_y) of the newest TensorBoard log under a run folder."""
    logs = sorted(run.glob("**/events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return []
    events = EventAccumulator(str(logs[-1]))
    events.Reload()
    if "val/psnr_y" not in events.Tags()["scalars"]:
        return []
    return [(event.step, event.value) for event in events.Scalars("val/psnr_y")]


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every per-epoch checkpoint of a run, in step order."""
    found = [(int(STEP.search(path.name).group(2)), path) for path in run.glob("e*-s*.ckpt")]
    return sorted(found)


def spread(points: list[tuple[int, Path]], count: int | None) -> list[tuple[int, Path]]:
    """``count`` of the points evenly spaced by index, the last always kept (all of them for None)."""
    if count is None or count >= len(points):
        return points
    if count < 1:
        return []
    picks = {round(len(points) - 1 - i * (len(points) - 1) / max(count - 1, 1)) for i in range(count)}
    return [points[i] for i in sorted(picks)]


@torch.no_grad()
def real_rain_curve(points: list[tuple[int, Path]]) -> list[tuple[int, float]]:
    """(chained step, a1 PSNR-Y) of the given checkpoints."""
    rain, clean = read_sequence(A1 / "a1_Rain"), read_sequence(A1 / "a1_GT")
    curve = []
    for step, path in points:
        model = load_checkpoint(path).eval()
        curve.append((step, paired_y(model.restore_sequence(rain), clean)["psnr_y"]))
        print(f"{path}: step {step}, a1 PSNR-Y {curve[-1][1]:.2f}", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="alias: the PNG goes into its model folder")
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="recipe run folders, stages in order")
    parser.add_argument("--a1-points", type=int, help="score this many checkpoints on a1 (default: every one)")
    args = parser.parse_args()
    if args.a1_points is not None and args.a1_points < 1:
        parser.error(f"--a1-points must be >= 1, got {args.a1_points}")
    torch.set_num_threads(2)
    curves: dict[str, list[tuple[int, float]]] = {"val": [], "a1": []}
    saved: list[tuple[int, Path]] = []
    offset = 0
    for run in args.runs:
        val, stage_points = validation_curve(run), checkpoints(run)
        curves["val"] += [(offset + step, value) for step, value in val]
        saved += [(offset + step, path) for step, path in stage_points]
        offset += max([step for step, _ in val + stage_points], default=0)
    curves["a1"] = real_rain_curve(spread(saved, args.a1_points))
    rain = reference_scores()["a1_rain"]["psnr_y"]
    figure, axis = plt.subplots(figsize=(6, 3.6))
    if curves["val"]:
        axis.plot(*zip(*curves["val"], strict=True), label="validation PSNR-Y (synthetic)")
    if curves["a1"]:
        axis.plot(*zip(*curves["a1"], strict=True), "o-", label="NTURain a1 PSNR-Y (real sample)")
    axis.axhline(rain, color="grey", linestyle="--", label=f"a1 rainy input ({rain:.2f} dB)")
    axis.set_xlabel("training step (stages chained)")
    axis.set_ylabel("PSNR-Y (dB)")
    axis.set_title(f"{args.model}: CPU recipe ({', '.join(run.name for run in args.runs)})")
    axis.legend(fontsize=8)
    figure.tight_layout()
    out = MODELS / args.model / "learning_curve.png"
    figure.savefig(out, dpi=100)
    out.with_suffix(".json").write_text(json.dumps({**curves, "a1_rain_psnr_y": rain}, indent=1))
    print(f"wrote {out}: {len(curves['val'])} validation points, {len(curves['a1'])} a1 points")


if __name__ == "__main__":
    main()
