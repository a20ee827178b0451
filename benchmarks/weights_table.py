"""The README's shipped-weights tables, printed from the manifests (whose scores ship_weights.py measured).

    python benchmarks/weights_table.py            # a1 / ra1 / synthetic summary, then synthetic per sequence

The scores are the ones measured with each shipped file (``benchmarks/ship_weights.py``); this only
lays them out, so the README's tables cannot drift from what ships.
"""

from __future__ import annotations

from derain_zoo.weights import Shipped, provenance, shipped


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


def main() -> None:
    entries = [entry for entry in shipped() if "a1" in (entry.manifest.get("scores") or {})]
    first = next(e.manifest["scores"] for e in entries if "frames" in e.manifest["scores"]["a1"])
    a1, ra1 = first["a1"], first["ra1"]["rain"]
    print(f"a1: {a1['frames']} frames; rainy input {a1['rain_psnr_y']:.2f} / {a1['rain_ssim_y']:.4f}; ", end="")
    median = first["a1_median"]
    print(f"5-frame temporal median {median['psnr_y']:.2f} / {median['ssim_y']:.4f}")
    print(f"ra1 rainy input NIQE / BRISQUE {ra1['niqe']:.2f} / {ra1['brisque']:.1f}\n")
    header = (
        "weights",
        "a1 PSNR-Y / SSIM-Y (gain)",
        "ra1 NIQE / BRISQUE",
        "synthetic PSNR-Y",
        "minutes (steps)",
        "made by",
    )
    print("| " + " | ".join(header) + " |")
    print("| --- | --- | --- | --- | --- | --- |")
    for entry in entries:
        print(summary_row(entry))
    rain = first["synthetic"]["per_sequence"]["rain_psnr_y"]
    print("\n| weights | " + " | ".join(f"sequence {i} (input {r:.2f})" for i, r in enumerate(rain)) + " |")
    print("| --- |" + " --- |" * len(rain))
    for entry in entries:
        print(sequence_row(entry))


if __name__ == "__main__":
    main()
