"""The shipped-weights tables of README.md and docs/shipped-weights.md, printed from the manifests.

    python benchmarks/weights_table.py            # docs: a1 / ra1 / synthetic summary, then synthetic per sequence
    python benchmarks/weights_table.py --readme   # README: one table, the models with their shipped scores

The scores are the ones measured with each shipped file (``benchmarks/ship_weights.py``); this only
lays them out, and ``tests/test_readme.py`` checks that both files hold exactly what it prints, so the
tables cannot drift from what ships: after a manifest changes, paste the new output in.
"""

from __future__ import annotations

import argparse

from derain_zoo.weights import Shipped, provenance, shipped

# the README's model column: name, paper, how it runs (each model's README has the full citation)
MODELS = {
    "s2vd": "S2VD, Yue et al., CVPR 2021: the authors' released derainer (3D conv, fixed chunks)",
    "j4rnet": "J4R-Net, Liu et al., CVPR 2018 (recurrent)",
    "rmfd": "RMFD, Yang et al., TPAMI (recurrent, two stages, GAN)",
    "estinet": "ESTINet, Zhang et al. (bidirectional, 5-frame clips)",
    "raintrn": "RainTRN, Dutta (recurrent spatio-temporal transformer, GAN)",
    "ddsa": "DDSA, Fan et al., 2023 (image transformer, frame by frame)",
}


def summary_row(entry: Shipped) -> str:
    """model / name | a1 PSNR-Y / SSIM-Y (gain) | ra1 NIQE / BRISQUE | synthetic | minutes (steps) | made by."""
    scores = entry.manifest["scores"]
    a1, ra1, synthetic = scores["a1"], scores["ra1"], scores["synthetic"]
    gain = a1["psnr_y"] - a1["rain_psnr_y"]
    minutes, steps = entry.manifest.get("wall_minutes"), entry.manifest.get("steps")
    trained = f"{minutes} ({steps})" if minutes is not None else "-"
    return (
        f"| `{entry.model}` {entry.name} | {a1['psnr_y']:.2f} / {a1['ssim_y']:.4f} ({gain:+.2f}) | "
        f"{ra1['niqe']:.2f} / {ra1['brisque']:.1f} | {synthetic['psnr_y']:.2f} | {trained} | {provenance(entry)} |"
    )


def sequence_row(entry: Shipped) -> str:
    """model / name | PSNR-Y per synthetic test sequence, with its difference to the input."""
    per = entry.manifest["scores"]["synthetic"]["per_sequence"]
    cells = [f"{ours:.2f} ({ours - rain:+.2f})" for ours, rain in zip(per["psnr_y"], per["rain_psnr_y"], strict=True)]
    return f"| `{entry.model}` {entry.name} | " + " | ".join(cells) + " |"


def scored() -> list[Shipped]:
    """The shipped files that carry a1 scores, by model then name."""
    return [entry for entry in shipped() if "a1" in (entry.manifest.get("scores") or {})]


def _inputs(entries: list[Shipped]) -> dict:
    """The scores of the rainy input and of the temporal median, recorded beside every file's own."""
    return next(e.manifest["scores"] for e in entries if "frames" in e.manifest["scores"]["a1"])


def readme_table() -> str:
    """The README's one table: each model (S2VD first, the baselines last) with every file it ships."""
    entries = scored()
    shipping = {entry.model for entry in entries}
    unnamed = shipping - set(MODELS)
    if unnamed:  # a model that starts shipping gets its row only once it has its line in MODELS
        raise KeyError(f"add {', '.join(sorted(unnamed))} to MODELS in benchmarks/weights_table.py")
    order = sorted(shipping, key=lambda alias: (alias != "s2vd", alias))
    lines = [
        "| model | weights | a1 PSNR-Y / SSIM-Y (gain) | ra1 NIQE / BRISQUE | synthetic PSNR-Y |",
        "| --- | --- | --- | --- | --- |",
    ]
    for alias in order:
        for i, entry in enumerate(e for e in entries if e.model == alias):
            scores = entry.manifest["scores"]
            a1, ra1 = scores["a1"], scores["ra1"]
            model = f"[`{alias}`](derain_zoo/models/{alias}/README.md) {MODELS[alias]}" if i == 0 else ""
            lines.append(
                f"| {model} | {entry.name} | {a1['psnr_y']:.2f} / {a1['ssim_y']:.4f} "
                f"({a1['psnr_y'] - a1['rain_psnr_y']:+.2f}) | {ra1['niqe']:.2f} / {ra1['brisque']:.1f} | "
                f"{scores['synthetic']['psnr_y']:.2f} |"
            )
    inputs = _inputs(entries)
    a1, rain, median = inputs["a1"], inputs["ra1"]["rain"], inputs["a1_median"]
    lines.append(
        f'| `identity` the rainy input, the "Rain" row | - | {a1["rain_psnr_y"]:.2f} / {a1["rain_ssim_y"]:.4f} | '
        f"{rain['niqe']:.2f} / {rain['brisque']:.1f} | {inputs['synthetic']['rain_psnr_y']:.2f} |"
    )
    lines.append(
        f"| `temporal_median` a per-pixel median over 5 frames | - | {median['psnr_y']:.2f} / {median['ssim_y']:.4f} "
        "| - | - |"
    )
    return "\n".join(lines)


def docs_tables() -> str:
    """docs/shipped-weights.md's tables: the inputs' scores, every file's summary, then per synthetic sequence."""
    entries = scored()
    first = _inputs(entries)
    a1, ra1, median = first["a1"], first["ra1"]["rain"], first["a1_median"]
    out = [
        f"a1: {a1['frames']} frames; rainy input {a1['rain_psnr_y']:.2f} / {a1['rain_ssim_y']:.4f}; "
        f"5-frame temporal median {median['psnr_y']:.2f} / {median['ssim_y']:.4f}",
        f"ra1 rainy input NIQE / BRISQUE {ra1['niqe']:.2f} / {ra1['brisque']:.1f}",
        "",
    ]
    header = (
        "weights",
        "a1 PSNR-Y / SSIM-Y (gain)",
        "ra1 NIQE / BRISQUE",
        "synthetic PSNR-Y",
        "minutes (steps)",
        "made by",
    )
    out += ["| " + " | ".join(header) + " |", "| --- | --- | --- | --- | --- | --- |"]
    out += [summary_row(entry) for entry in entries]
    rain = first["synthetic"]["per_sequence"]["rain_psnr_y"]
    out += ["", "| weights | " + " | ".join(f"sequence {i} (input {r:.2f})" for i, r in enumerate(rain)) + " |"]
    out += ["| --- |" + " --- |" * len(rain)]
    out += [sequence_row(entry) for entry in entries]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="store_true", help="the README's one table instead of the docs' tables")
    print(readme_table() if parser.parse_args().readme else docs_tables())


if __name__ == "__main__":
    main()
