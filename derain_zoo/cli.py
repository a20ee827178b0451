"""The ``derain-zoo`` command: a thin LightningCLI plus the ``benchmark``, ``synthesize`` and ``weights`` tools."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import traceback
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
from derain_zoo.registry import UnknownNameError, class_path, data_registry, model_alias, model_registry, resolve

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
TOOLS = ("benchmark", "synthesize", "weights")
EVALUATION_COMMANDS = ("validate", "test", "predict")


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


class UserError(Exception):
    """A mistake in what the user passed; reported as one line, never as a traceback."""


class OneLineErrorParser(LightningArgumentParser):
    """Argument errors (misspelt keys, bad values) end with one line that says what to fix."""

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        raise SystemExit(f"derain-zoo: error: {text} (see '{self.prog} --help')")


def check_checkpoint(path: str | None, expected: str | None) -> None:
    """Refuse a missing checkpoint or one saved by another model, before Lightning loads it."""
    if path is None or path in ("last", "best", "hpc", "registry"):
        return
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path} (pass --ckpt_path=<run folder>/checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"{path} is not a readable derain-zoo checkpoint ({type(error).__name__})") from None
    saved_by = checkpoint.get("derain_zoo_model") if isinstance(checkpoint, dict) else None
    if saved_by is None:
        raise UserError(f"{path} is not a derain-zoo checkpoint (no model stamp); train one with 'derain-zoo fit'")
    if expected is not None and saved_by != expected:
        raise UserError(f"checkpoint {path} was saved by model '{saved_by}', not '{expected}'; pass --model={saved_by}")


def _model_class(config: Any) -> type | None:
    """The zoo model class a sub-command's config names (None for a class from outside the zoo)."""
    model = config.get("model")
    requested = model.get("class_path") if model is not None and hasattr(model, "get") else None
    return model_registry().get(model_alias(requested) or "")


def _typed_model_args(argv: Sequence[str]) -> set[str]:
    """Model argument names typed on the command line (``--model.x`` or ``--model.init_args.x``)."""
    typed = set()
    for arg in argv:
        key = arg.partition("=")[0]
        for prefix in ("--model.init_args.", "--model."):
            if key.startswith(prefix):
                typed.add(key[len(prefix) :])
                break
    return typed


def check_weights(config: Any, subcommand: str, argv: Sequence[str]) -> None:
    """Refuse evaluation on random weights, and adopt a weights manifest's architecture arguments.

    A trainable model in validate/test/predict needs ``--ckpt_path`` or ``--model.weights``
    (``--model.weights=random`` opts in to untrained weights). Weights with a manifest (shipped names,
    exported .pt files) set the architecture arguments they need; a typed one that disagrees is refused.
    """
    from derain_zoo.weights import RANDOM, manifest_for

    cls = _model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if cls is None or init_args is None:
        return
    weights, ckpt_path = init_args.get("weights"), config.get("ckpt_path")
    if weights not in (None, RANDOM) and ckpt_path:
        raise UserError(
            f"pass --ckpt_path ({ckpt_path}) or --model.weights ({weights}), not both: the checkpoint's weights "
            "would silently replace the others"
        )
    if subcommand in EVALUATION_COMMANDS and cls.trainable and weights is None and not ckpt_path:
        from derain_zoo.weights import shipped

        names = [entry.name for entry in shipped() if entry.model == cls.alias] or ["<name>"]
        raise UserError(
            f"model '{cls.alias}' would {subcommand} with untrained random weights: pass --model.weights={names[0]} "
            "(shipped weights, listed by 'derain-zoo weights') or a .ckpt/.pt path, or --ckpt_path=<run "
            "folder>/checkpoints/last.ckpt; --model.weights=random runs untrained weights on purpose (smoke tests)"
        )
    if weights in (None, RANDOM) or not cls.trainable:
        return
    entry = manifest_for(cls.alias, weights)
    if entry is not None:
        adopt_init_args(init_args, cls, entry.init_args, str(entry.path), _typed_model_args(argv))


def check_predict_input(config: Any, subcommand: str, argv: Sequence[str]) -> None:
    """Refuse ``predict --output`` with no input: it restored the built-in synthetic test set into files.

    A user who forgot ``--data.input`` got eight videos they did not ask for and exit 0; naming the
    synthetic data (``--data=synthetic``) on the command line still restores it on purpose.
    """
    data = config.get("data")
    if subcommand != "predict" or not config.get("output") or data is None:
        return
    init_args = data.get("init_args") or {}
    synthetic = data.get("class_path") == _default_data()
    if synthetic and not init_args.get("input") and not any(arg.partition("=")[0] == "--data" for arg in argv):
        raise UserError(
            "predict has no input: pass --data.input=<rainy video, frame folder or folder of them> (or "
            "--data=<dataset> --data.root=<folder>); --data=synthetic restores the built-in synthetic test set"
        )


def adopt_init_args(init_args: Any, cls: type, needed: dict[str, Any], source: str, typed: set[str]) -> None:
    """Set the architecture arguments ``needed`` by weights from ``source``; refuse a user value that disagrees.

    A value counts as the user's when it was typed (``typed``) or differs from the class default (a config
    file set it); only defaults are replaced, so nothing the user chose is silently overridden.
    """
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in needed.items():
        if key not in parameters:
            raise UserError(f"weights {source} need {key}={value}, which model '{cls.alias}' does not take")
        current = json.loads(json.dumps(init_args.get(key)))
        if _chosen(init_args, parameters, key, typed) and current != value:
            raise UserError(
                f"--model.{key}={json.dumps(current)} contradicts the weights {source}, which need {key}="
                f"{json.dumps(value)}; drop the option or pass other weights"
            )
        init_args[key] = value


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Constructor parameters of ``cls`` and of the bases its ``**kwargs`` reach (a subclass's own win)."""
    parameters: dict[str, inspect.Parameter] = {}
    constructors = [c for c in cls.__mro__ if "__init__" in c.__dict__ and c.__module__.startswith("derain_zoo")]
    for base in reversed(constructors):
        parameters.update(inspect.signature(base.__dict__["__init__"]).parameters)
    return {key: p for key, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _chosen(init_args: Any, parameters: Any, key: str, typed: set[str]) -> bool:
    """Whether the user chose ``key``: typed on the command line, or set (by a config file) to a non-default value."""
    if key in typed:
        return True
    default = parameters[key].default if key in parameters else inspect.Parameter.empty
    if default is inspect.Parameter.empty:
        return True
    return json.loads(json.dumps(init_args.get(key), default=str)) != json.loads(json.dumps(default, default=str))


def user_model_args(config: Any, argv: Sequence[str]) -> dict[str, Any]:
    """The model arguments the user chose (typed, or set by a config file to other than the class default)."""
    cls = _model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if init_args is None:
        return {}
    parameters = _parameters(cls)
    typed = _typed_model_args(argv)
    return {
        key: init_args[key] for key in parameters if key in init_args and _chosen(init_args, parameters, key, typed)
    }


def keep_user_model_args(config: Any, chosen: dict[str, Any], ckpt_path: str) -> None:
    """After Lightning restored a checkpoint's hyper-parameters, give back what the user chose.

    Evaluation, memory and training options the user chose win over the checkpoint's (the checkpoint's
    weights do not depend on them); an architecture argument that contradicts the checkpoint is refused.
    """
    cls = _model_class(config)
    init_args = config["model"].get("init_args") if cls is not None else None
    if init_args is None:
        return
    for key, value in chosen.items():
        saved = init_args.get(key)
        if key in cls.architecture_args and json.dumps(saved, default=str) != json.dumps(value, default=str):
            raise UserError(
                f"--model.{key}={json.dumps(value, default=str)} contradicts the checkpoint {ckpt_path}, which was "
                f"trained with {key}={json.dumps(saved, default=str)}; drop the option or pass another checkpoint"
            )
        init_args[key] = value


class DerainCLI(LightningCLI):
    """LightningCLI with the zoo's defaults: synthetic data, a PSNR-Y checkpoint, no fit of baselines."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        if "weights_only" in {action.dest for action in parser._actions}:
            # checkpoints are data: never execute pickled code from one
            parser.set_defaults({"weights_only": True})
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
        parser.add_argument(
            "--output",
            type=str | None,
            default=None,
            help="predict only: write restored video (.mp4/.avi/.mov...) or frame folder here",
        )
        parser.add_argument("--overwrite", action="store_true", help="predict only: replace an existing --output")
        parser.add_argument("--side_by_side", action="store_true", help="predict only: write rain | derained frames")

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
            model_class = _model_class(config)
            check_checkpoint(config.get("ckpt_path"), model_class.alias if model_class else None)
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


def _default_data() -> str:
    from derain_zoo.data import SyntheticRainDataModule

    return class_path(SyntheticRainDataModule)


def usage() -> str:
    """Top-level help: the sub-commands and every model and dataset name."""
    models = ", ".join(model_registry())
    datasets = ", ".join(data_registry())
    return (
        "usage: derain-zoo {fit,validate,test,predict,benchmark,synthesize,weights} [options]\n\n"
        "Video rain removal models on PyTorch Lightning.\n\n"
        "commands:\n"
        "  fit          train a model (default data: built-in synthetic rain videos)\n"
        "  validate     score a model on the validation split\n"
        "  test         PSNR/SSIM (RGB and Y) per sequence and mean; writes metrics.json/csv\n"
        "  predict      restore whole sequences\n"
        "  benchmark    parameters, GFLOPs, latency and memory per model\n"
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
        text = " ".join(_worker_message(_os_message(_union_cause(_weights_cause(error)))).split())
        raise SystemExit(f"derain-zoo: error: {text}") from None
    except (RuntimeError, ConnectionError, EOFError) as error:
        text = _worker_death(error)
        if text is None or os.environ.get("DERAIN_ZOO_DEBUG"):
            raise
        raise SystemExit(f"derain-zoo: error: {text}") from None


STOPPED = "the run stopped (predict leaves no unfinished output)"
WORKER_DIED = re.compile(r"DataLoader worker \(pid.*?\) (?:is killed by signal: (?P<signal>[^.]+)|exited unexpectedly)")


def _worker_death(error: BaseException) -> str | None:
    """One line for a DataLoader worker that died under the run (None for any other error).

    Workers defer SIGTERM (``derain_zoo.data.workers``), but one killed before it could (just started, or
    past its grace) ends the run as SIGTERM to the main process does. The OOM killer or a full /dev/shm (SIGBUS) kill a
    worker outright: torch says "DataLoader worker (pid N) is killed by signal: ..." or "exited
    unexpectedly", or, when the worker dies while handing a batch over, the main process's read of it
    fails with a reset connection inside the DataLoader.
    """
    match = WORKER_DIED.search(str(error))
    if match is not None and match["signal"] == "Terminated":
        return f"terminated (SIGTERM) while DataLoader workers ran; {STOPPED}"
    if match is not None:
        how = f"was killed by signal: {match['signal']}" if match["signal"] else "exited unexpectedly"
    elif isinstance(error, (ConnectionError, EOFError)) and _raised_in_dataloader(error):
        how = "died while handing over a batch"
    else:
        return None
    return (
        f"a DataLoader worker {how} (out of memory, or /dev/shm full?); {STOPPED}; free memory or pass "
        "--data.num_workers=0"
    )


def _raised_in_dataloader(error: BaseException) -> bool:
    """Whether torch's DataLoader was on the stack where ``error`` was raised (a batch being received)."""
    frames = traceback.extract_tb(error.__traceback__)
    return any(frame.filename.endswith(os.path.join("torch", "utils", "data", "dataloader.py")) for frame in frames)


def _worker_message(text: str) -> str:
    """The message of an error raised in a DataLoader worker, without torch's "Caught ... Original Traceback" text."""
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]  # "ValueError: truncated frame: ..."
    return last.split(": ", 1)[1] if ": " in last else last


def _os_message(error: BaseException) -> str:
    """``<file>: <reason>`` for a bare OS error (``[Errno 17] File exists: 'x'`` says neither what nor why first)."""
    if isinstance(error, OSError) and error.filename is not None and str(error).startswith("[Errno"):
        where = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        return f"{where}: {error.strerror.lower() if error.strerror else error}"
    return str(error)


def check_folder(path: str | os.PathLike | None, option: str) -> None:
    """Refuse a folder option whose path runs through a file, or that lies in a folder the user cannot write."""
    if path is None:
        return
    wanted = Path(path).expanduser().absolute()
    for existing in (wanted, *wanted.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            raise UserError(f"{option}={path}: {existing} is a file, not a folder; choose another {option}")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{option}={path}: {existing} is not writable; choose another {option}")
        return


UNION_MESSAGE = "Does not validate against any of the Union subtypes"


def _union_cause(error: BaseException) -> BaseException:
    """The constructor's own error behind jsonargparse's 500-900 character union-type message (``tile_size=0``)."""
    if UNION_MESSAGE not in str(error):
        return error
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if UNION_MESSAGE not in str(cause):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return error


def _weights_cause(error: BaseException) -> BaseException:
    """The WeightsError behind ``error``: jsonargparse wraps constructor errors in a long union-type message."""
    from derain_zoo.weights import WeightsError

    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, WeightsError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return error


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


def _run_tool(name: str, argv: list[str]) -> None:
    import argparse

    if name == "synthesize":
        from derain_zoo.data import synthesize as tool
    elif name == "weights":
        from derain_zoo import weights as tool
    else:
        from derain_zoo import benchmark as tool

    class OneLineToolParser(argparse.ArgumentParser):
        """Argument errors of a tool end in one line, like those of the Lightning commands."""

        def error(self, message: str) -> NoReturn:
            raise SystemExit(f"derain-zoo: error: {message} (see '{self.prog} --help')")

    parser = OneLineToolParser(prog=f"derain-zoo {name}", description=tool.__doc__)
    tool.add_arguments(parser)
    tool.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
