"""The ``derain-zoo`` command: a thin LightningCLI plus the ``benchmark`` and ``synthesize`` tools."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Optional

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from derain_zoo.registry import UnknownNameError, class_path, data_registry, model_registry, resolve

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
TOOLS = ("benchmark", "synthesize")


def run_info() -> dict[str, Any]:
    """Package version and git commit of the code that produced a run, for reproducibility."""
    import subprocess
    from pathlib import Path

    import lightning
    import torch

    import derain_zoo

    info: dict[str, Any] = {
        "derain_zoo": derain_zoo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "git_commit": None,
    }
    try:
        repo = Path(derain_zoo.__file__).resolve().parents[1]
        result = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if result.returncode == 0:
            info["git_commit"] = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class RunRecord(SaveConfigCallback):
    """Saves the resolved config and, beside it, run_info.json (version, git commit)."""

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import json
        from pathlib import Path

        super().save_config(trainer, pl_module, stage)
        log_dir = trainer.log_dir
        if log_dir is not None and trainer.is_global_zero:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            (Path(log_dir) / "run_info.json").write_text(json.dumps(run_info(), indent=2))


class DerainCLI(LightningCLI):
    """LightningCLI with the zoo's defaults: synthetic data, a PSNR-Y checkpoint, no fit of baselines."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "data": {"class_path": _default_data()},
                "checkpoint.monitor": "val/psnr_y",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch}-{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # LightningCLI builds one parser per sub-command from the same hook, so these appear on
        # every sub-command; only ``predict`` reads them
        parser.add_argument("--output", type=Optional[str], default=None,
                            help="predict only: write restored video (.mp4/.avi/.mov...) or frame folder here")
        parser.add_argument("--overwrite", action="store_true", help="predict only: replace an existing --output")
        parser.add_argument("--side_by_side", action="store_true", help="predict only: write rain | derained frames")

    def predict(self, **kwargs: Any) -> Any:
        """Run prediction; with ``--output`` write it to disk, else keep the sequences for callers of ``main``."""
        from derain_zoo.predict import OutputExistsError, PredictionWriter, check_target

        config = self.config[self.subcommand] if self.subcommand else self.config
        self.writer = None
        if config.get("output"):
            try:
                check_target(config["output"], config.get("overwrite", False))
            except OutputExistsError as error:
                raise SystemExit(f"derain-zoo: error: {error}") from None
            self.writer = PredictionWriter(
                config["output"],
                overwrite=config.get("overwrite", False),
                side_by_side=config.get("side_by_side", False),
                progress=self.trainer.progress_bar_callback is not None,
            )
            self.trainer.callbacks.append(self.writer)
            # written sequences need not stay in memory as well
            if kwargs.get("return_predictions") is None:
                kwargs["return_predictions"] = False
        self.predictions = self.trainer.predict(**kwargs)
        return self.predictions

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


def _default_data() -> str:
    from derain_zoo.data import SyntheticRainDataModule

    return class_path(SyntheticRainDataModule)


def usage() -> str:
    """Top-level help: the sub-commands and every model and dataset name."""
    models = ", ".join(model_registry())
    datasets = ", ".join(data_registry())
    return (
        "usage: derain-zoo {fit,validate,test,predict,benchmark,synthesize} [options]\n\n"
        "Video rain removal models on PyTorch Lightning.\n\n"
        "commands:\n"
        "  fit          train a model (default data: built-in synthetic rain videos)\n"
        "  validate     score a model on the validation split\n"
        "  test         PSNR/SSIM (RGB and Y) per sequence and mean; writes metrics.json/csv\n"
        "  predict      restore whole sequences\n"
        "  benchmark    parameters, GFLOPs, latency and memory per model\n"
        "  synthesize   render rain onto your own clean videos\n\n"
        f"models (--model=NAME):   {models}\n"
        f"datasets (--data=NAME):  {datasets}\n\n"
        "Run 'derain-zoo fit --help' for every option of a command.\n"
    )


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the console script (returns nothing, so the exit code stays 0)."""
    run(args)


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
        argv = _rewrite_names(argv)
    except UnknownNameError as error:
        raise SystemExit(f"derain-zoo: error: {error}") from None
    from derain_zoo.models import DerainModule
    from derain_zoo.data import VideoDerainDataModule

    return DerainCLI(
        DerainModule,
        VideoDerainDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_callback=RunRecord,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        parser_kwargs={command: {"default_config_files": []} for command in LIGHTNING_COMMANDS},
        args=argv,
    )


def _run_tool(name: str, argv: list[str]) -> None:
    import argparse

    if name == "synthesize":
        from derain_zoo.data import synthesize as tool
    else:
        from derain_zoo import benchmark as tool
    parser = argparse.ArgumentParser(prog=f"derain-zoo {name}", description=tool.__doc__)
    tool.add_arguments(parser)
    tool.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
