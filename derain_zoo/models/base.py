"""DerainModule: the one contract every derainer in the zoo meets.

A model restores every frame of the clip it is given (``forward(rain B,T,C,H,W) -> B,T,C,H,W``).
Everything that is the same for all models lives here: the validation / test / predict steps,
whole-sequence inference in bounded memory (temporal chunks and spatial tiles with overlap, padding
to the network's multiple), optimiser plumbing, loss logging and the non-finite-loss guard.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from derain_zoo.inference import (
    SequencePlan,
    SequenceRestorer,
    TemporalProtocol,
    TilePlan,
    restore_whole,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

    from derain_zoo.data.batch import VideoBatch


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    """Adam at 1e-4: the learning rate most of the zoo's papers start from."""
    return torch.optim.Adam(params, lr=1e-4)


class NonFiniteLossError(RuntimeError):
    """Raised when a loss term becomes NaN or infinite, so no corrupted weights are saved."""


class DerainModule(L.LightningModule):
    """Base LightningModule of every derainer; subclasses add a network and a training step."""

    alias: ClassVar[str] = ""
    spatial_multiple: ClassVar[int] = 1
    trainable: ClassVar[bool] = True
    # constructor arguments that shape the network or change what its weights compute; shipped weights
    # record them (manifest init_args) and the CLI refuses a typed value that contradicts them
    architecture_args: ClassVar[tuple[str, ...]] = ()
    # how the paper runs the model over a video at test time (derain_zoo.inference.TemporalProtocol)
    protocol: ClassVar[TemporalProtocol | None] = None
    # constructor arguments kept out of the checkpoint's hyper-parameters: optimiser factories are code,
    # not data (the checkpoint stays loadable with weights_only), and starting weights are not needed
    # again once a checkpoint holds every weight (the run's config.yaml still records them); a subclass
    # extends the tuple (``unsaved_args = (*Parent.unsaved_args, "init_checkpoint")``)
    unsaved_args: ClassVar[tuple[str, ...]] = ("optimizer", "lr_scheduler", "weights")
    # constructor arguments renamed since checkpoints were saved: old name -> (new name, old value -> new
    # value), so a checkpoint written before a rename still loads (load_from_checkpoint, weights export)
    renamed_args: ClassVar[dict[str, tuple[str, Callable[[Any], Any]]]] = {}
    # a two-stage model sets this to whether its stage 2 starts from a stage-1 checkpoint (init_checkpoint)
    from_stage1: bool | None = None

    def __init_subclass__(cls, shared_base: bool = False, **kwargs: Any) -> None:
        """Wrap each subclass constructor so ``weights`` load once, after the outermost one built the network.

        Lightning's save_hyperparameters stops collecting arguments at the first wrapper frame, so a
        subclass of a model (two constructors deep) must record its own arguments itself. A base class
        that models subclass (``class GANDerainModule(DerainModule, shared_base=True)``) is left
        unwrapped, so the arguments of the models below it are still collected.
        """
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__ and not shared_base:
            cls.__init__ = _load_weights_after(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(
        self,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        chunk_frames: int = 16,
        chunk_overlap: int = 2,
        tile_size: int | None = 720,  # 640x480 one tile, 1280x720 two of 720x640 in under 4 GiB (benchmarks/README.md)
        tile_overlap: int | None = None,
        crop_border: int = 0,
        nonfinite: str = "raise",
        weights: str | None = None,
    ) -> None:
        super().__init__()
        for name, value, least in (
            ("chunk_frames", chunk_frames, 1),
            ("chunk_overlap", chunk_overlap, 0),
            ("tile_overlap", 0 if tile_overlap is None else tile_overlap, 0),
            ("crop_border", crop_border, 0),
        ):
            if value < least:
                raise ValueError(f"--model.{name} must be >= {least}, got {value}")
        if tile_size is not None and tile_size < 1:
            raise ValueError(f"--model.tile_size must be >= 1 (or null for whole frames), got {tile_size}")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.save_hyperparameters(ignore=list(self.unsaved_args))
        self.initial_weights = weights
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.chunk_frames = chunk_frames
        self.chunk_overlap = chunk_overlap
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.crop_border = crop_border
        self.nonfinite = nonfinite
        self.network = self.configure_network()
        # a network that pads itself to a multiple declares it; whole-sequence inference pads to the same
        self.spatial_multiple = getattr(self.network, "multiple", self.spatial_multiple)
        if type(self).__init__ is DerainModule.__init__:  # no subclass constructor to wait for
            self.load_initial_weights()

    # ------------------------------------------------------------------ hooks a model fills in
    def configure_network(self) -> nn.Module | None:
        """The network ``forward`` runs, built from the saved hyper-parameters (None: no network)."""
        return None

    def network_args(self, network: type[nn.Module], **overrides: Any) -> dict[str, Any]:
        """The hyper-parameters named like ``network``'s constructor arguments, then ``overrides``."""
        accepted = inspect.signature(network).parameters
        return {**{name: value for name, value in self.hparams.items() if name in accepted}, **overrides}

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,C,H,W rainy clip -> B,T,C,H,W restored clip."""
        return self.network(rain)

    def on_fit_start(self) -> None:
        """Stage 2 fitted without the stage-1 checkpoint trains its stage-1 parts from random weights: say so.

        A resumed fit (ckpt_path) or given weights (weights=random is the explicit opt-in) start elsewhere.
        """
        super().on_fit_start()
        untrained = self.from_stage1 is False and self.initial_weights is None and not self.trainer.ckpt_path
        if untrained and self.hparams.get("stage") == 2:
            rank_zero_warn(
                f"{self.alias}: stage 2 starts from random weights: no init_checkpoint (the stage-1 checkpoint) "
                "was given; pass --model.init_args.init_checkpoint=<stage-1 last.ckpt> (or weights=random to "
                "train stage 2 from scratch on purpose)"
            )

    def load_initial_weights(self) -> None:
        """Load ``weights`` (a shipped name or a .safetensors / .ckpt / .pt path) after checking its hash and shapes.

        ``None`` and ``"random"`` keep the initialisation; the CLI refuses ``None`` for evaluation of a
        trainable model, ``"random"`` is the explicit opt-in for smoke tests.
        """
        from derain_zoo.weights import RANDOM, WeightsError, load_into

        if self.initial_weights in (None, RANDOM):
            return
        if not self.trainable:
            raise WeightsError(f"model '{self.alias}' has no weights to load; drop weights={self.initial_weights}")
        load_into(self, self.alias, self.initial_weights)

    @classmethod
    def from_weights(cls, weights: str, **kwargs: Any) -> Self:
        """The model built with the architecture arguments its weights' manifest records, weights loaded.

        ``kwargs`` may set any other argument; an architecture argument that contradicts the manifest is
        refused rather than silently replaced.
        """
        from derain_zoo.weights import WeightsError, conflicting_args, manifest_for

        entry = manifest_for(cls.alias, weights)
        if entry is None:
            return cls(weights=weights, **kwargs)
        conflicts = conflicting_args(entry, kwargs)
        if conflicts:
            key, (given, shipped) = next(iter(conflicts.items()))
            raise WeightsError(f"{key}={given} contradicts the weights {entry.path} ({key}={shipped})")
        return cls(weights=weights, **{**entry.init_args, **kwargs})

    # ------------------------------------------------------------------ training plumbing
    def configure_optimizers(self) -> Any:
        """One optimiser (and optional scheduler) over all trainable parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(f"model '{self.alias}' has no trainable parameters")
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

    def log_losses(self, losses: dict[str, Tensor], stage: str = "train") -> None:
        """Log every loss term as ``<stage>/<name>`` on the progress bar's step axis."""
        for name, value in losses.items():
            self.log(f"{stage}/{name}", value.detach(), prog_bar=name == "loss")

    def check_finite(self, loss: Tensor, term: str = "loss") -> bool:
        """Stop (or, with ``nonfinite='skip'``, report False) when a loss term is NaN or inf."""
        if loss.device.type == "meta" or torch.isfinite(loss).all():  # a meta tensor has no values to check
            return True
        message = (
            f"non-finite loss in model '{self.alias or type(self).__name__}' at global step "
            f"{self.global_step}: term '{term}' = {loss.detach().float().cpu().tolist()}"
        )
        if self.nonfinite == "skip":
            self.print(f"skipping step: {message}")
            return False
        raise NonFiniteLossError(message + " (set --model.init_args.nonfinite=skip to skip such steps)")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stamp the model's alias (for clear errors on load) and refuse to save non-finite weights."""
        checkpoint["derain_zoo_model"] = self.alias or type(self).__name__
        checkpoint["derain_zoo_rng"] = torch.get_rng_state()
        bad = [
            name
            for name, tensor in checkpoint["state_dict"].items()
            if tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
        if bad:
            raise NonFiniteLossError(
                f"model '{self.alias}' has non-finite weights at step {self.global_step} ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''}); checkpoint not written"
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the torch RNG so a resumed run draws the same random numbers as an unbroken one."""
        if "derain_zoo_rng" in checkpoint:
            torch.set_rng_state(checkpoint["derain_zoo_rng"])

    # ------------------------------------------------------------------ shared eval steps
    def validation_step(self, batch: VideoBatch, batch_idx: int) -> dict[str, Tensor]:
        """Restore the validation clip in one pass; the Evaluator scores it."""
        return {"output": self(batch.rain).clamp(0, 1)}

    def test_step(self, batch: VideoBatch, batch_idx: int) -> dict[str, Tensor]:
        """Restore a test sequence (or its next chunk) under the model's protocol; the Evaluator scores it."""
        return {"output": self.restore_batch(batch)}

    def predict_step(self, batch: VideoBatch, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Restore a sequence (or its next chunk) for the user."""
        return self.restore_batch(batch)

    def configure_callbacks(self) -> list[L.Callback]:
        """Every model is scored by the same paper-exact evaluator."""
        from derain_zoo.metrics import Evaluator

        return [Evaluator(crop_border=self.crop_border)]

    # ------------------------------------------------------------------ the sequence protocol (derain_zoo.inference)
    def temporal_protocol(self) -> TemporalProtocol:
        """How the paper runs the model over a video: the model's ``protocol``, else its network's; a model
        that declares none is treated as a window of ``chunk_overlap`` frames."""
        declared = self.protocol or getattr(getattr(self, "network", None), "protocol", None)
        return declared if declared is not None else TemporalProtocol.window(self.chunk_overlap)

    def spatial_reach(self) -> int:
        """Pixels of context each output pixel needs: the network's declared ``spatial_reach``, else 32."""
        return int(getattr(getattr(self, "network", None), "spatial_reach", 32))

    def sequence_plan(self) -> SequencePlan:
        """The temporal chunks test and predict cut every sequence into (the data module receives it too)."""
        return SequencePlan(self.temporal_protocol(), self.chunk_frames)

    def tile_plan(self) -> TilePlan:
        """Spatial tiles; their overlap is the network's reach unless the user set ``tile_overlap``."""
        overlap = self.spatial_reach() if self.tile_overlap is None else self.tile_overlap
        return TilePlan(self.tile_size, overlap, self.spatial_multiple)

    def stream(self, rain: Tensor, context: tuple[int, int], state: Any) -> tuple[Tensor, Any]:
        """One chunk of a recurrent pass: the frames of ``rain`` between ``context`` frames, from ``state``
        (None: a video's start) -> (restored frames, the state after them). The network's ``stream``."""
        return self.network.stream(rain, state, context)

    def restore_batch(self, batch: VideoBatch) -> Tensor:
        """The frames of a test / predict batch, continuing the sequence the previous batch belonged to."""
        if getattr(self, "_restorer", None) is None:
            self._restorer = SequenceRestorer(self)
        return self._restorer.restore(batch.rain, batch.start, batch.context, batch.frames, batch.name[0])

    def on_test_start(self) -> None:
        """Every test run starts every sequence from a zero state."""
        self._restorer = None

    def on_predict_start(self) -> None:
        """Every predict run starts every sequence from a zero state."""
        self._restorer = None

    @torch.no_grad()
    def restore_sequence(self, rain: Tensor, context: tuple[int, int] = (0, 0)) -> Tensor:
        """Restore a whole B,T,C,H,W sequence under the model's protocol from a fresh state, in chunks and
        tiles; ``context`` = (before, after) frames are not returned. Chunk sizes never change the result."""
        return restore_whole(self, rain, context)


def _current_names(cls: type[DerainModule], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every renamed argument under its current name and in its current form.

    The old name wins: only a checkpoint saved before the rename carries it, and reloading that
    checkpoint through LightningCLI also fills the new name with its default.
    """
    for old, (new, convert) in cls.renamed_args.items():
        if old in kwargs:
            kwargs[new] = convert(kwargs.pop(old))
    return kwargs


def _load_weights_after(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` followed, in the outermost constructor only, by loading the requested weights."""

    @functools.wraps(init)
    def wrapped(self: DerainModule, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **_current_names(type(self), kwargs))
        if type(self).__init__ is wrapped:
            self.load_initial_weights()

    return wrapped


def load_weights(module: nn.Module, path: str, prefix: str = "", strict: bool = True) -> None:
    """Load a Lightning checkpoint's weights (no pickled code executed) into ``module``.

    ``prefix`` selects a sub-tree of the checkpoint's state_dict (e.g. ``"network."``), so a stage-2
    model can start from the stage-1 network it contains.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"checkpoint not found: {path}") from error
    except Exception as error:  # noqa: BLE001 - a truncated, corrupt or foreign file is one user problem
        raise ValueError(f"cannot read checkpoint {path}: truncated or corrupt ({type(error).__name__})") from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} is not a checkpoint (no state_dict)")
    state = checkpoint.get("state_dict", checkpoint)
    if prefix:
        state = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if not state:
            raise ValueError(f"checkpoint {path} holds no weights under '{prefix}'")
    module.load_state_dict(state, strict=strict)
