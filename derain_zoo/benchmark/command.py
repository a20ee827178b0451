"""The ``derain-zoo benchmark`` command: models (or the Evaluator) measured under one stated protocol, one table.

Each model runs in a fresh process (its peak memory its own) unless ``--in-process``; the protocol
line printed above the table and saved with every row states the conditions of every figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from derain_zoo.allocator import allocator_from_environment, configure_allocator
from derain_zoo.benchmark.arguments import add_protocol_arguments, at_least, json_object
from derain_zoo.benchmark.forward import FIELDS, FORWARD_TABLE, measure
from derain_zoo.benchmark.metrics import METRICS_TABLE, SAMPLE_PAIRS, measure_metrics
from derain_zoo.benchmark.restore import BARE_SHAPE, RESTORE_TABLE, measure_restore
from derain_zoo.table import format_table


def protocol(args: argparse.Namespace) -> str:
    """One line stating the conditions every figure was measured under."""
    height, width = args.size
    if args.path == "restore":
        shape = f"restore_sequence on 1x{args.frames}x3x{height}x{width} with each model's tiles and chunks"
        shape += f", bare forward on 1x{BARE_SHAPE[1]}x3x{BARE_SHAPE[3]}x{BARE_SHAPE[4]}"
    else:
        shape = f"input 1x{args.frames}x3x{height}x{width}"
    return (
        f"{shape}, threads {args.threads}, device {args.device}, "
        f"dtype {args.dtype}, eval mode, median of {args.repeats} runs after {args.warmup} warm-up, "
        f"peak memory = {'max allocated' if args.device.startswith('cuda') else 'process max RSS'}, "
        f"allocator {allocator_from_environment()}, THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )


def _benchmark_alias(alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from derain_zoo.registry import model_registry

    configure_allocator()  # this is a fresh process: the parent's DERAIN_ZOO_ALLOCATOR applies here too
    model = model_registry()[alias](**init_args)
    shape = (1, args.frames, 3, *args.size)
    dtype = getattr(torch, args.dtype)
    if args.path == "restore":
        return {
            "model": alias,
            **measure_restore(
                model, shape, args.threads, args.repeats, args.warmup, args.device, dtype, flops=not args.no_flops
            ),
        }
    row = measure(model, shape, args.threads, args.repeats, args.warmup, args.device, dtype, args.matmul_size)
    return {"model": alias, **row}


def config_init_args(folder: Path, alias: str) -> dict[str, Any]:
    """``model.init_args`` of ``<folder>/<alias>.yaml`` (empty when the file has none), for --configs."""
    import yaml

    path = folder / f"{alias}.yaml"
    if not path.is_file():
        return {}  # a model without a config (the baselines) is built with its defaults
    model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
    # optimisers are class_path dicts for LightningCLI, not callables, and play no part in a forward
    return {k: v for k, v in (model.get("init_args") or {}).items() if k not in ("optimizer", "lr_scheduler")}


def _in_subprocess(alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run one model in a fresh process so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_benchmark_alias, (alias, init_args, args))


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of benchmark rows (bare forward or restore path, by the rows' fields)."""
    return format_table(rows, RESTORE_TABLE if rows and "ratio_to_bare" in rows[0] else FORWARD_TABLE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``derain-zoo benchmark``."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="model alias (see 'derain-zoo --help')")
    target.add_argument("--all", action="store_true", help="every model of the zoo")
    target.add_argument(
        "--metrics",
        action="store_true",
        help="time the Evaluator per real 640x480 frame against BasicSR's formulation (no model)",
    )
    parser.add_argument(
        "--init-args",
        type=json_object,
        default={},
        help="JSON constructor arguments (with --all: an object keyed by alias)",
    )
    add_protocol_arguments(parser, frames=None, rectangular=True)
    parser.add_argument(
        "--path",
        choices=["forward", "restore"],
        default="forward",
        help="forward: the bare network on one clip (default 5 frames); restore: restore_sequence, the "
        "test/predict path with the model's tiles and chunks (default 10 frames), against the bare "
        "forward at 256x256 per pixel",
    )
    parser.add_argument(
        "--no-flops",
        action="store_true",
        help="with --path restore: skip the FLOP-counting pass (GFLOP left empty), e.g. for memory at 1280x720",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--configs",
        type=Path,
        help="folder of <alias>.yaml whose model.init_args build each model (e.g. configs/)",
    )
    parser.add_argument(
        "--matmul-size",
        type=at_least(1),
        default=2048,
        help="side of the square fp32 matmul reference",
    )
    parser.add_argument(
        "--metrics-data",
        type=Path,
        default=SAMPLE_PAIRS,
        help="folder of <seq>_Rain / <seq>_GT frame folders for --metrics (default: the repository's NTURain a1)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="skip the fresh process per model (faster; peak memory is shared)",
    )
    parser.add_argument(
        "--compare-ref",
        type=Path,
        help="also run this benchmark with the code of this git worktree (e.g. of main), in the same run, "
        "and print the speed-up per model",
    )
    parser.add_argument("--json", type=Path, help="write the rows as a JSON list")
    parser.add_argument("--csv", type=Path, help="write the rows as CSV")


def _check(args: argparse.Namespace) -> None:
    """Refuse, in one line naming the argument, what argparse's types cannot see alone."""
    if args.configs is not None and not args.configs.is_dir():
        raise SystemExit(f"derain-zoo: error: argument --configs: no such folder: {args.configs}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"derain-zoo: error: argument --device: {args.device} asked for, but CUDA is not available")
    if args.no_flops and args.path != "restore":
        raise SystemExit(
            "derain-zoo: error: argument --no-flops: only with --path restore (the forward row's FLOPs are its point)"
        )
    if args.metrics and not args.metrics_data.is_dir():
        raise SystemExit(f"derain-zoo: error: argument --metrics-data: no such folder: {args.metrics_data}")
    if args.frames is None:
        args.frames = 10 if args.path == "restore" else 5
    if args.compare_ref is not None:
        from derain_zoo.benchmark.reference import check_tree

        check_tree(args.compare_ref)


def _write(rows: list[dict[str, Any]], args: argparse.Namespace, line: str) -> None:
    if args.json:
        args.json.write_text(json.dumps([{**row, "protocol": line} for row in rows], indent=2))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else FIELDS)
            writer.writeheader()
            writer.writerows(rows)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Benchmark the chosen models (or the Evaluator), print the table and write the requested files."""
    from derain_zoo.registry import UnknownNameError, model_alias, model_registry, resolve

    _check(args)
    if args.metrics:
        rows = [measure_metrics(args.metrics_data, args.repeats, args.threads)]
        line = f"Evaluator (PairedScores.update) vs BasicSR's float64 formulation, best of {args.repeats}, "
        line += f"threads {args.threads}, frames of {args.metrics_data}"
        print(line)
        print(format_table(rows, METRICS_TABLE))
        _write(rows, args, line)
        return rows
    registry = model_registry()
    if args.all:
        aliases = list(registry)
    else:
        try:
            resolve(args.model, registry, "model")
        except UnknownNameError as error:
            raise SystemExit(f"derain-zoo: error: {error}") from None
        aliases = [model_alias(args.model)]
    bench = _benchmark_alias if args.in_process else _in_subprocess
    rows, built = [], {}
    for alias in aliases:
        init_args = config_init_args(args.configs, alias) if args.configs else {}
        # with --all, --init-args is keyed by alias; with --model it is the model's own arguments
        init_args.update(args.init_args.get(alias, {}) if args.all else args.init_args)
        # a paper-size --all run takes minutes per model: say what is being measured
        print(f"benchmarking {alias} ...", file=sys.stderr, flush=True)
        rows.append(bench(alias, init_args, args))
        built[alias] = init_args
    print(protocol(args))
    print(format_rows(rows))
    if args.compare_ref is not None:
        from derain_zoo.benchmark.reference import compare

        compare(rows, args, built)  # adds the reference's figures and the speed-up to every row
    _write(rows, args, protocol(args))
    return rows
