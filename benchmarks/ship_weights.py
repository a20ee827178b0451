"""Export a trained CPU recipe into the package's shipped weights, scored with the exported (fp16) file.

    python benchmarks/ship_weights.py --recipes configs/cpu/j4rnet_phase1.yaml configs/cpu/j4rnet.yaml

Takes the last stage's ``last.ckpt`` (the recipe's ``checkpoint.dirpath``), writes
``derain_zoo/weights/<alias>-synthetic-cpu.safetensors``, its card and its manifest (model, recipe chain, data version,
steps and training minutes summed over the stages from their ``scores.json``, sha256), then loads the
file back exactly as a user would (``Model.from_weights``), scores it with ``transfer.score_module``
(real a1 and ra1, a1 crop, synthetic test) and records those scores in the manifest.

    python benchmarks/ship_weights.py --rescore j4rnet raintrn

re-scores files that already ship with the current code (after a change to the test protocol, say)
and rewrites only the ``scores`` of their manifests; the weights and their sha256 stay as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import a1_scores, print_row, score_module

from derain_zoo.data.scenes import DATA_VERSION
from derain_zoo.registry import model_registry
from derain_zoo.weights import export_weights, module_from_checkpoint, shipped


def stage_folder(recipe: str) -> Path:
    """Where a recipe writes its checkpoints."""
    return Path(yaml.safe_load(Path(recipe).read_text())["checkpoint"]["dirpath"])


def stage_record(recipe: str) -> tuple[int, float | None]:
    """(steps, training minutes) of one stage, from the checkpoint and transfer.py's scores.json."""
    folder = stage_folder(recipe)
    steps = int(torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["global_step"])
    scores = folder / "scores.json"
    minutes = json.loads(scores.read_text()).get("train_minutes") if scores.is_file() else None
    return steps, minutes


def rescore(alias: str, name: str, only_a1: bool = False) -> None:
    """Score a shipped file as a user loads it and write the scores into its manifest, nothing else.

    ``only_a1`` re-measures the a1 entries alone (after the sample grew) and keeps the others, which
    the change did not touch (the crop, ra1, the synthetic split).
    """
    entry = next((e for e in shipped() if e.model == alias and e.name == name), None)
    if entry is None:
        raise SystemExit(f"no shipped weights {alias}-{name}")
    module = model_registry()[alias].from_weights(name).eval()
    scores = {**entry.manifest.get("scores", {}), **a1_scores(module)} if only_a1 else score_module(module)
    manifest = {**entry.manifest, "scores": json.loads(json.dumps(scores, default=float))}
    entry.manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print_row(f"{alias} {name}", scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", help="the recipe's stages, in training order")
    parser.add_argument("--rescore", nargs="+", metavar="ALIAS", help="re-score these models' shipped files")
    parser.add_argument("--only-a1", action="store_true", help="with --rescore: re-measure the a1 entries only")
    parser.add_argument("--name", default="synthetic-cpu")
    parser.add_argument("--out-dir", default=None, help="default: the package's derain_zoo/weights")
    parser.add_argument("--start", default=None, help="shipped weights the first recipe fine-tunes (adds its record)")
    parser.add_argument("--teacher", default=None, help="the teacher whose outputs were targets, e.g. 's2vd official'")
    parser.add_argument("--data-version", default=DATA_VERSION, help="version of the training data")
    parser.add_argument("--minutes", type=float, default=None, help="training minutes of the recipes (no scores.json)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.rescore:
        for alias in args.rescore:
            rescore(alias, args.name, args.only_a1)
        return
    if not args.recipes:
        parser.error("--recipes or --rescore is required")
    records = [stage_record(recipe) for recipe in args.recipes]
    minutes = [m for _, m in records] if args.minutes is None else [args.minutes]
    recipe = " -> ".join(args.recipes)
    trained = module_from_checkpoint(stage_folder(args.recipes[-1]) / "last.ckpt")
    steps = sum(steps for steps, _ in records)
    if args.start:  # a fine-tune: its record starts with the record of the weights it started from
        start = next(e for e in shipped() if e.model == trained.alias and e.name == args.start).manifest
        recipe = f"{args.start} ({start['recipe']}) -> {recipe}"
        steps += int(start["steps"])
        minutes.append(start["wall_minutes"])
    common = {
        "recipe": recipe + (f", teacher: {args.teacher}" if args.teacher else ""),
        "data_version": args.data_version,
        "steps": steps,
        "wall_minutes": round(sum(minutes), 1) if None not in minutes else None,
        "overwrite": True,
    }
    path = export_weights(trained, args.name, args.out_dir, **common)
    exported = type(trained).from_weights(str(path)).eval()
    scores = score_module(exported)
    export_weights(trained, args.name, args.out_dir, scores=scores, **common)
    print_row(f"{trained.alias} {args.name}", scores)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
