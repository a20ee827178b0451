"""The ``derain-zoo`` command: a thin LightningCLI plus the benchmark, export, synthesize and weights tools."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import lightning
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

import derain_zoo
from derain_zoo.allocator import configure_allocator
from derain_zoo.checks import (
    UserError,
    check_checkpoint,
    check_folder,
    check_predict_input,
    check_weights,
    default_data,
    keep_user_model_args,
    model_class,
    user_model_args,
)
from derain_zoo.errors import one_line, worker_death
from derain_zoo.registry import UnknownNameError, data_registry, model_registry, resolve

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
TOOLS = ("benchmark", "export", "synthesize", "weights")


def run_info() -> dict[str, Any]:
    """Package version and git commit of the code that produced a run, for reproducibility."""
    info: dict[str, Any] = {
        "derain_zoo": derain_zoo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "git_commit": None,
    }
    try:
        repo = Path(derain_zoo.__file__).resolve().parents[1]
        command = ["git", "-C", str(repo), "rev-parse", "HEAD"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
        if result.returncode == 0:
            info["git_commit"] = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class RunRecord(SaveConfigCallback):
    """Saves the resolved config and, beside it, run_info.json (version, git commit)."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if log_dir is not None and trainer.is_global_zero:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            (Path(log_dir) / "run_info.json").write_text(json.dumps(run_info(), indent=2))


class OneLineErrorParser(LightningArgumentParser):
    """Argument errors (misspelt keys, bad values) end with one line that says what to fix."""

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        raise SystemExit(f"derain-zoo: error: {text} (see '{self.prog} --help')")


class DerainCLI(LightningCLI):
    """LightningCLI with the zoo's defaults: synthetic data, a PSNR-Y checkpoint, no fit of baselines."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from derain_zoo.data.video_io import DEFAULT_CRF  # imported here: the CLI module stays light to import

        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        if "weights_only" in {action.dest for action in parser._actions}:
            # checkpoints are data: never execute pickled code from one
            parser.set_defaults({"weights_only": True})
        parser.set_defaults(
            {
                "data": {"class_path": default_data()},
                "checkpoint.monitor": "val/psnr_y",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch}-{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # LightningCLI builds one parser per sub-command from the same hook, so these appear on
        # every sub-command; only ``predict`` reads them
        parser.add_argument(
            "--output",
            type=str | None,
            default=None,
            help="predict only: write restored video (.mp4/.avi/.mov...) or frame folder here",
        )
        parser.add_argument("--overwrite", action="store_true", help="predict only: replace an existing --output")
        parser.add_argument("--side_by_side", action="store_true", help="predict only: write rain | derained frames")
        parser.add_argument(
            "--crf",
            type=int,
            default=DEFAULT_CRF,
            help="predict only: H.264 quality of a video --output, 0 (lossless) to 51 (worst); lower is larger",
        )

    def predict(self, **kwargs: Any) -> Any:
        """Run prediction; with ``--output`` write it to disk, else keep the sequences for callers of ``main``."""
        from derain_zoo.outputs import OutputExistsError, check_target
        from derain_zoo.predict import PredictionWriter, SequenceCollector

        config = self.config[self.subcommand] if self.subcommand else self.config
        self.writer = None
        collector = None
        if not config.get("output"):
            # sequences arrive in chunks; the caller gets them joined, one tensor per sequence
            collector = SequenceCollector()
            self.trainer.callbacks.append(collector)
        else:
            try:
                check_target(config["output"], config.get("overwrite", False))
            except OutputExistsError as error:
                raise SystemExit(f"derain-zoo: error: {error}") from None
            self.writer = PredictionWriter(
                config["output"],
                overwrite=config.get("overwrite", False),
                side_by_side=config.get("side_by_side", False),
                crf=config["crf"],
                progress=self.trainer.progress_bar_callback is not None,
            )
            self.trainer.callbacks.append(self.writer)
        if kwargs.get("return_predictions") is None:
            kwargs["return_predictions"] = False  # Lightning's own list would hold the chunks a second time
        self.predictions = self.trainer.predict(**kwargs)
        if collector is not None:
            self.predictions = collector.joined()
        return self.predictions

    def _parse_ckpt_path(self) -> None:
        """Check the checkpoint against the requested model before Lightning adopts its hyper-parameters."""
        subcommand = self.config.get("subcommand")
        if subcommand:
            config = self.config[subcommand]
            cls = model_class(config)
            check_checkpoint(config.get("ckpt_path"), cls.alias if cls else None)
            chosen = user_model_args(config, self.argv)
        super()._parse_ckpt_path()
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            keep_user_model_args(self.config[subcommand], chosen, ckpt_path)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Keep the argument list: checks before instantiation tell typed options from defaults."""
        self.argv = list(args or [])
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        """Weights checks run on the parsed config, before any model is built or any file written."""
        if self.subcommand:
            config = self.config[self.subcommand]
            check_weights(config, self.subcommand, self.argv)
            check_predict_input(config, self.subcommand, self.argv)
            trainer = config.get("trainer")
            check_folder(trainer.get("default_root_dir") if trainer is not None else None, "--trainer.default_root_dir")

    def before_test(self) -> None:
        """Hand the model's chunk plan to the data module, which cuts test sequences as the model restores them."""
        self.datamodule.use_plan(self.model.sequence_plan())

    def before_predict(self) -> None:
        """Hand the model's chunk plan to the data module, which cuts predicted videos as the model restores them."""
        self.datamodule.use_plan(self.model.sequence_plan())

    def before_fit(self) -> None:
        if not getattr(self.model, "trainable", True):
            raise SystemExit(
                f"derain-zoo: error: model '{self.model.alias}' has no parameters to train; "
                "use it with validate, test or predict"
            )


def _rewrite_names(args: list[str]) -> list[str]:
    """Replace --model/--data aliases and class names with class paths (both ``=`` and space forms)."""
    tables = {"--model": ("model", model_registry), "--data": ("data", data_registry)}
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, sep, value = arg.partition("=")
        if key in tables and (sep or i + 1 < len(args)):
            kind, registry = tables[key]
            if not sep:
                i += 1
                value = args[i]
            out.append(f"{key}={resolve(value, registry(), kind)}")
        else:
            out.append(arg)
        i += 1
    return out


def _rewrite_config_files(args: list[str]) -> list[str]:
    """Pass ``--config`` files whose ``model`` / ``data`` name an alias as their content with class paths.

    The command line accepts ``--model=identity``; a config file saying ``model: identity`` ended in a
    400-character parser dump. A file that needs no rewrite is passed as given (its path kept).
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        key, sep, value = args[i].partition("=")
        if key == "--config" and not sep and i + 1 < len(args):
            i += 1
            value, sep = args[i], "="
        out.append(f"--config={_resolved_config(value)}" if key == "--config" and sep else args[i])
        i += 1
    return out


def _resolved_config(path: str) -> str:
    """The config at ``path`` with aliases turned into class paths, as YAML text; ``path`` itself when unchanged."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return path  # not a readable file (or YAML given inline): the parser reports it
    tables = {"model": ("model", model_registry), "data": ("data", data_registry)}
    changed = False
    for key, (kind, registry) in tables.items() if isinstance(config, dict) else ():
        entry = config.get(key)
        name = entry.get("class_path") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            continue
        try:
            resolved = resolve(name, registry(), kind)
        except UnknownNameError as error:
            raise UnknownNameError(f"{error} (in {path})") from None
        if resolved != name:
            config[key] = {**entry, "class_path": resolved} if isinstance(entry, dict) else resolved
            changed = True
    return yaml.safe_dump(config, sort_keys=False) if changed else path


def usage() -> str:
    """Top-level help: the sub-commands and every model and dataset name."""
    models = ", ".join(model_registry())
    datasets = ", ".join(data_registry())
    return (
        "usage: derain-zoo {fit,validate,test,predict,benchmark,export,synthesize,weights} [options]\n\n"
        "Video rain removal models on PyTorch Lightning.\n\n"
        "commands:\n"
        "  fit          train a model (default data: built-in synthetic rain videos)\n"
        "  validate     score a model on the validation split\n"
        "  test         PSNR/SSIM (RGB and Y) per sequence and mean; writes metrics.json/csv\n"
        "  predict      restore whole sequences\n"
        "  benchmark    parameters, GFLOPs, latency and memory per model\n"
        "  export       write a model as ONNX, TorchScript or a torch.export program (docs/export.md)\n"
        "  synthesize   render rain onto your own clean videos\n"
        "  weights      list the shipped weights (--model.weights=NAME) with their scores\n\n"
        f"models (--model=NAME):   {models}\n"
        f"datasets (--data=NAME):  {datasets}\n\n"
        "Run 'derain-zoo fit --help' for every option of a command.\n"
    )


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the console script: user mistakes end in one line and a non-zero exit."""
    from derain_zoo.data.layouts import DatasetNotFoundError
    from derain_zoo.data.workers import WorkerMemoryError
    from derain_zoo.models.base import NonFiniteLossError
    from derain_zoo.predict import IncompleteOutputError

    user_errors = (
        UserError,
        DatasetNotFoundError,
        NonFiniteLossError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        ValueError,
        IncompleteOutputError,
        WorkerMemoryError,
    )
    try:
        configure_allocator()  # DERAIN_ZOO_ALLOCATOR=heap: a process-wide choice, made before any model runs
        run(args)
    except user_errors as error:
        if os.environ.get("DERAIN_ZOO_DEBUG"):
            raise
        text = one_line(error)
        raise SystemExit(f"derain-zoo: error: {text}") from None
    except (RuntimeError, ConnectionError, EOFError) as error:
        text = worker_death(error)
        if text is None or os.environ.get("DERAIN_ZOO_DEBUG"):
            raise
        raise SystemExit(f"derain-zoo: error: {text}") from None


def run(args: Sequence[str] | None = None) -> DerainCLI | None:
    """Run a command; tests call it in-process and get the CLI (model, trainer, predictions) back."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return None
    if argv[0] in TOOLS:
        _run_tool(argv[0], argv[1:])
        return None
    try:
        argv = _rewrite_config_files(_rewrite_names(argv))
    except UnknownNameError as error:
        raise SystemExit(f"derain-zoo: error: {error}") from None
    from derain_zoo.data import DerainDataModule
    from derain_zoo.models import DerainModule

    # the console script passes its own (rewritten) argv, which LightningCLI would warn about
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")  # Lightning vs torch 2.13

    return DerainCLI(
        DerainModule,
        DerainDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_callback=RunRecord,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        parser_class=OneLineErrorParser,
        parser_kwargs={command: {"default_config_files": []} for command in LIGHTNING_COMMANDS},
        args=argv,
    )


def tool_parser(name: str) -> tuple[Any, argparse.ArgumentParser]:
    """The module of the tool ``name`` (``benchmark``, ``synthesize``, ``weights``) and its parser."""
    if name == "synthesize":
        from derain_zoo.data import synthesize as tool
    elif name == "weights":
        from derain_zoo import weights as tool
    elif name == "export":
        from derain_zoo.export import command as tool
    else:
        from derain_zoo import benchmark as tool

    class OneLineToolParser(argparse.ArgumentParser):
        """Argument errors of a tool end in one line, like those of the Lightning commands."""

        def error(self, message: str) -> NoReturn:
            raise SystemExit(f"derain-zoo: error: {message} (see '{self.prog} --help')")

    parser = OneLineToolParser(prog=f"derain-zoo {name}", description=tool.__doc__)
    tool.add_arguments(parser)
    return tool, parser


def _run_tool(name: str, argv: list[str]) -> None:
    tool, parser = tool_parser(name)
    tool.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
