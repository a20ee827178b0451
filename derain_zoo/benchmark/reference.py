"""``derain-zoo benchmark --compare-ref TREE``: the same benchmark run by another checkout's code, in one run.

A speed-up is only a figure on this shared CPU when the old and the new code are timed under the
same load, one right after the other. ``TREE`` is a git worktree of the code to compare with (e.g.
``git worktree add --detach /tmp/main main``); its own ``derain-zoo benchmark`` runs in a child
process with that tree first on the path, with the same arguments (``--no-flops``: its count is
taken on shapes alone instead, ``benchmark.flops``, so it costs no extra pass), and the rows of
both are printed with the ratios per model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from derain_zoo.table import Column, format_table

FLOPS_MODULE = Path(__file__).with_name("flops.py")
COMPARISON = (
    Column("model", "model", 16),
    Column("reference_gflops_per_frame", "ref GFLOP/frame", 16, ".2f"),
    Column("gflops_per_frame", "GFLOP/frame", 13, ".2f"),
    Column("reference_ms_per_frame", "ref ms/frame", 13, ".1f"),
    Column("latency_ms_per_frame", "ms/frame", 10, ".1f"),
    Column("speedup", "speed-up", 9, ".2f"),
)

# counts FLOPs of the reference tree's model with this tree's counter, loaded from its file
_COUNT = """
import importlib.util, json, sys, torch
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("counter", sys.argv[2])
counter = importlib.util.module_from_spec(spec); spec.loader.exec_module(counter)
from derain_zoo.registry import model_registry
alias, init_args, shape, dtype = json.loads(sys.argv[3])
model = model_registry()[alias](**init_args).eval()
print("GFLOP", counter.restore_gflops_per_frame(model, tuple(shape), getattr(torch, dtype)))
"""


def check_tree(tree: Path) -> None:
    """Refuse, in one line naming the argument, a folder that holds no derain_zoo package."""
    if not (tree / "derain_zoo" / "__init__.py").is_file():
        raise SystemExit(f"derain-zoo: error: argument --compare-ref: no derain_zoo package under {tree}")


def benchmark_argv(args: argparse.Namespace) -> list[str]:
    """The ``derain-zoo benchmark`` arguments that measured ``args``, for the reference tree."""
    argv = ["benchmark", f"--model={args.model}"] if args.model else ["benchmark", "--all"]
    argv += [f"--size={args.size[0]}x{args.size[1]}", f"--frames={args.frames}", f"--threads={args.threads}"]
    argv += [f"--repeats={args.repeats}", f"--warmup={args.warmup}", f"--path={args.path}"]
    argv += [f"--device={args.device}", f"--dtype={args.dtype}", f"--matmul-size={args.matmul_size}"]
    if args.init_args:
        argv.append(f"--init-args={json.dumps(args.init_args)}")
    if args.configs:
        argv.append(f"--configs={args.configs.resolve()}")
    if args.in_process:
        argv.append("--in-process")
    if args.path == "restore":
        argv.append("--no-flops")
    return argv


def reference_rows(tree: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows the reference tree's own benchmark prints for ``args``."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rows.json"
        code = "import sys; from derain_zoo.cli import main; main(sys.argv[1:])"
        command = [sys.executable, "-c", code, *benchmark_argv(args), f"--json={out}"]
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if result.returncode != 0 or not out.is_file():
            raise SystemExit(f"derain-zoo: error: the benchmark in {tree} failed:\n{result.stderr[-2000:]}")
        return json.loads(out.read_text())


def reference_gflops(tree: Path, alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> float:
    """GFLOP per frame of the reference tree's restore path, counted on shapes by this tree's counter."""
    shape = [1, args.frames, 3, *args.size]
    payload = json.dumps([alias, init_args, shape, args.dtype])
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    command = [sys.executable, "-c", _COUNT, str(tree.resolve()), str(FLOPS_MODULE), payload]
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("GFLOP ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"derain-zoo: error: counting FLOPs in {tree} failed:\n{result.stderr[-2000:]}")
    return float(lines[-1].split()[1])


def compare(rows: list[dict[str, Any]], args: argparse.Namespace, init_args: dict[str, dict[str, Any]]) -> None:
    """Run the reference tree on ``args``, add its figures and the speed-up to each row, print both."""
    tree = args.compare_ref
    print(f"benchmarking the code in {tree} ...", file=sys.stderr, flush=True)
    reference = {row["model"]: row for row in reference_rows(tree, args)}
    for row in rows:
        old = reference[row["model"]]
        if args.path == "restore" and row.get("gflops_per_frame") is not None:
            old["gflops_per_frame"] = reference_gflops(tree, row["model"], init_args[row["model"]], args)
        row["reference_gflops_per_frame"] = old.get("gflops_per_frame")
        row["reference_ms_per_frame"] = old["latency_ms_per_frame"]
        row["speedup"] = old["latency_ms_per_frame"] / row["latency_ms_per_frame"]
    print(f"the code in {tree}, measured in the same run (after this tree's rows above):")
    from derain_zoo.benchmark.command import format_rows

    print(format_rows(list(reference.values())))
    print(format_table(rows, COMPARISON))
