"""Parity with the authors' code: their network and the zoo's, on the same weights, give the same output.

The authors' network is built from their own source files (``--official-src``, a folder outside
this repository holding their ``models/`` / ``networks/`` / ``basicsr/`` files as in their
repository; README of ``docs/official_weights.md`` says which files and commits), given random
weights, saved as their training scripts save checkpoints, converted with ``derain-zoo weights
convert``, loaded into the zoo model from the converted file, and both networks are run on the
same random clip. Prints the largest absolute difference of the outputs (target 1e-5 in fp32).

    python benchmarks/official_parity.py --model estinet --official-src /work/scratch29/estinet
    python benchmarks/official_parity.py --model ddsa --official-src /work/scratch29/ddsa \\
        --write-fixture tests/fixtures/official/ddsa.json

``--write-fixture`` also stores the authors' key names and shapes (the facts the converter tests
need, without the authors' code) as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from derain_zoo.convert import convert
from derain_zoo.registry import model_registry


@dataclass
class Case:
    """One release of the authors' network: its checkpoint files (as saved) and how to run it."""

    name: str
    files: dict[str, object]  # file name -> what their script passes to torch.save
    run: Callable[[Tensor], Tensor]  # B,T,3,H,W clip in [0, 1] -> B,T',3,H,W as the zoo lays it out
    zoo_run: Callable[[nn.Module, Tensor], Tensor]  # the zoo model's output for the same frames


@dataclass
class Official:
    """The authors' network of one model, built from their source: the releases to check."""

    cases: list[Case]
    commit: str
    modules: list[nn.Module]  # every authors' module, to run them in another precision


@contextlib.contextmanager
def authors_source(folder: Path) -> Iterator[None]:
    """Import the authors' packages from ``folder``, and forget them afterwards."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            del sys.modules[name]


@contextlib.contextmanager
def cuda_to_cpu() -> Iterator[None]:
    """Their code moves fresh zero states with ``.to('cuda')``; on a CPU-only machine that is the CPU."""
    original = torch.Tensor.to

    def to(self: Tensor, *args: object, **kwargs: object) -> Tensor:
        if args and args[0] == "cuda" and not torch.cuda.is_available():
            return self
        return original(self, *args, **kwargs)

    torch.Tensor.to = to  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.to = original  # type: ignore[method-assign]


def randomize_(module: nn.Module, seed: int) -> None:
    """Random weights on top of the authors' initialisation: every tensor perturbed, BatchNorm statistics too,
    so no conversion step (a fold, a slice, a permutation) can pass by acting on zeros or ones."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.dim() <= 1:  # biases, norms' scales and shifts, mixing scalars
                tensor.add_(0.05 * noise)
            else:
                scale = float(tensor.std()) if tensor.numel() > 1 and float(tensor.std()) > 0 else 0.02
                tensor.add_(0.5 * scale * noise)


# ---------------------------------------------------------------------------------------------- ESTINet
def estinet(src: Path, seed: int) -> Official:
    """CoarseNet (resnet18, R_CLSTM_5, bidirectional, input_residue) + FineNet_npic, as build_model makes them."""
    with authors_source(src):
        modules, net, resnet = (importlib.import_module(f"models.{name}") for name in ("modules", "net", "resnet"))
        backbone = resnet.resnet18(pretrained=False, use_bn=False)
        encoder = modules.E_resnet(backbone, use_bn=False)
        decoder = modules.D_resnet(num_features=512)
        coarse = net.CoarseNet(
            encoder, decoder, [64, 128, 256, 512], "R_CLSTM_5", bidirectional=True, input_residue=True
        )
        fine = net.FineNet_npic()
    for index, part in enumerate((coarse, fine)):
        randomize_(part, seed + index)
        part.eval()

    def run(clip: Tensor, stage: int = 2) -> Tensor:
        from derain_zoo.models.estinet.code_variant import denormalize, normalize

        x = normalize(clip).transpose(1, 2)  # B,3,T,H,W as their data loader gives it
        with cuda_to_cpu():
            out = coarse(x)
            out = fine(out, x) if stage == 2 else out
        return denormalize(out.transpose(1, 2))

    def wrap(part: nn.Module) -> dict[str, Tensor]:  # their test script loads into nn.DataParallel
        return {f"module.{key}": value for key, value in part.state_dict().items()}

    files = {"C_checkpoints_best.pth.tar": wrap(coarse), "F_checkpoints_best.pth.tar": wrap(fine)}
    zoo_run = lambda model, clip: model.network(clip)  # noqa: E731
    return Official(
        cases=[
            Case("coarse + fine (stage 2)", files, run, zoo_run),
            Case(
                "coarse only (stage 1)",
                {"C_checkpoints_best.pth.tar": files["C_checkpoints_best.pth.tar"]},
                lambda clip: run(clip, stage=1),
                zoo_run,
            ),
        ],
        commit="HDCVLab/Enhanced-Spatio-Temporal-Interaction-Learning-for-Video-Deraining@d201178e "
        "(block.py: Lukas-VI fork @57eb3396)",
        modules=[coarse, fine],
    )


# ---------------------------------------------------------------------------------------------- DDSA
def ddsa(src: Path, seed: int) -> Official:
    """Restormer of IDT-DDSA with their Deraining_Restormer.yml arguments, saved as BasicSR saves it."""
    with authors_source(src):
        arch = importlib.import_module("basicsr.models.archs.restormer_arch")
        config = {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4, "heads": [1, 2, 4, 8]}
        network = arch.Restormer(**config, ffn_expansion_factor=2.66, bias=False, LayerNorm_type="WithBias")
    randomize_(network, seed)
    network.eval()

    def run(clip: Tensor) -> Tensor:  # their test script: one image at a time, sizes a multiple of 8 here
        return torch.stack([network(frame) for frame in clip.unbind(1)], dim=1)

    return Official(
        cases=[Case("net_g (params)", {"net_g_latest.pth": {"params": network.state_dict()}}, run, lambda m, c: m(c))],
        commit="zt-fan/IDT-DDSA@a41f6114",
        modules=[network],
    )


# ---------------------------------------------------------------------------------------------- RMFD
def rmfd_step(nets: tuple[nn.Module, nn.Module, nn.Module], clip: Tensor) -> Tensor:
    """Their test_video_rain.py loop: frames t..t+4 -> background of t+2, states and outputs carried."""
    res, haze, s2 = nets
    state = state_trans = state_alpha = state_s2 = None
    outputs: list[Tensor] = []
    frames = clip.unbind(1)
    for t in range(len(frames) - 4):
        f1, f2, f3, f4, f5 = frames[t : t + 5]
        inputs = torch.cat((f1, f2, f3, f3, f4, f5), 1)
        haze3, _, _, _, state, _ = res(inputs, state, None)
        trans3, alpha3, _, _, state_trans, state_alpha = haze(inputs, state_trans, state_alpha)
        trans3 = torch.cat([trans3[:, 0:1]] * 3, 1)
        trans3[trans3 <= 0.05] = 0.05
        res3 = (haze3 - alpha3 * (1 - trans3)) / trans3
        o1 = outputs[-2] if t >= 2 else res3  # their "t+2 >= 5" with t from 1
        o2 = outputs[-1] if t >= 1 else res3
        out, _, _, _, state_s2, _ = s2(torch.cat((o1, o2, res3, f3, f4, f5), 1), state_s2, None)
        outputs.append(out)
    return torch.stack(outputs, 1)


def rmfd(src: Path, seed: int) -> Official:
    """MultiShareTransformNet x 3 (init_tag 0, 1, 0) with their defaults nf 32, 5 blocks, saved by save_model."""
    cases, modules = [], []
    for index, release in enumerate(("without GAN (wo_gan)", "with GAN (w_gan)")):
        with authors_source(src):
            networks = importlib.import_module("networks")
            # their `from numpy import *` once brought `math` along; NumPy 2 no longer exports it
            sys.modules["networks.MultiShareTransformNet"].math = math
            opts = argparse.Namespace(nf=32, blocks=5, norm="none")
            nets = tuple(networks.MultiShareTransformNet(opts, 12, 3, tag) for tag in (0, 1, 0))
        for offset, net in enumerate(nets):
            randomize_(net, seed + 10 * index + offset)
            modules.append(net.eval())
        names = ("multi_model_res", "multi_model_haze", "multi_model_s2")
        saved = {name: net.state_dict() for name, net in zip(names, nets, strict=True)}
        saved["optimizer"] = {"state": {}, "param_groups": []}

        def run(clip: Tensor, nets: tuple[nn.Module, ...] = nets) -> Tensor:
            return rmfd_step(nets, clip)

        cases.append(
            Case(release, {"model_epoch_100.pth": saved}, run, lambda m, c: m.network.stream(c, None, (2, 2))[0])
        )
    return Official(
        cases=cases,
        commit="flyywh/Recurrent-Multi-Frame-Deraining@c2590e9f (ConvLSTM: phoenix104104/"
        "fast_blind_video_consistency@8154b60d)",
        modules=modules,
    )


# ---------------------------------------------------------------------------------------------- RainTRN
def raintrn(src: Path, seed: int) -> Official:
    """PReNet_STTN(config) run by its forward_sequence on [-1, 1] frames, saved by their save_checkpoint."""
    with authors_source(src):
        sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))  # imported by sttn.py, never used
        sys.modules.setdefault("torchvision.models", types.ModuleType("torchvision.models"))
        model = importlib.import_module("model").PReNet_STTN(argparse.Namespace(num_frames=3))
    randomize_(model, seed)
    model.eval()

    def run(clip: Tensor) -> Tensor:
        rain = clip * 2 - 1
        masks = torch.zeros_like(rain[:, :, :1])
        return (model.forward_sequence(rain, masks) + 1) / 2

    files = {"raintrn_epoch_100.pth": {"model": model.state_dict(), "optimizer": {}, "epoch": 100}}
    return Official(
        cases=[Case("latest.pth", files, run, lambda m, c: m.network(c))],
        commit="debayan91/RainTRN@f3ad970e",
        modules=[model],
    )


BUILDERS: dict[str, Callable[[Path, int], Official]] = {
    "ddsa": ddsa,
    "estinet": estinet,
    "raintrn": raintrn,
    "rmfd": rmfd,
}


# ---------------------------------------------------------------------------------------------- the check
def layout_of(files: dict[str, object]) -> dict[str, dict[str, list[int]]]:
    """Key names and shapes of every file (nested dicts flattened with '/'), the converter tests' fixture."""

    def flat(value: object, prefix: str = "") -> dict[str, list[int]]:
        if isinstance(value, Tensor):
            return {prefix: list(value.shape)}
        if not isinstance(value, dict):  # training state saved beside the weights (an optimizer's lists)
            return {}
        out: dict[str, list[int]] = {}
        for key, item in value.items():
            out.update(flat(item, f"{prefix}/{key}" if prefix else str(key)))
        return out

    return {name: flat(payload) for name, payload in files.items()}


def fixture_text(alias: str, official: Official) -> str:
    """The first (fullest) release's layout as JSON, one key per line: small, and diffs read well."""
    files = layout_of(official.cases[0].files)
    blocks = []
    for name, keys in files.items():
        lines = ",\n".join(f"    {json.dumps(key)}: {json.dumps(shape)}" for key, shape in keys.items())
        blocks.append(f"  {json.dumps(name)}: {{\n{lines}\n  }}")
    head = f'{{"model": {json.dumps(alias)}, "source": {json.dumps(official.commit)}, "files": {{\n'
    return head + ",\n".join(blocks) + "\n}}\n"


def check(alias: str, case: Case, clip: Tensor, modules: list[nn.Module]) -> float:
    """Save the case's files (fp32), convert them, load the converted .pt into the zoo model, then run both
    networks in the clip's precision and compare outputs."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, payload in case.files.items():
            paths.append(Path(folder) / name)
            torch.save(payload, paths[-1])
        converted = convert(alias, paths, Path(folder) / f"{alias}-official-parity.pt")
        model = model_registry()[alias].from_weights(str(converted)).eval().to(clip.dtype)
        variant = json.loads(converted.with_suffix(".json").read_text())["init_args"].get("variant")
    for module in modules:
        module.to(clip.dtype)
    with torch.no_grad():
        theirs, ours = case.run(clip), case.zoo_run(model, clip)
    difference = float((theirs - ours).abs().max())
    centre = clip[:, (clip.shape[1] - theirs.shape[1]) // 2 :][:, : theirs.shape[1]]  # RMFD: frames 2..T-3
    change = float((theirs - centre).abs().max())
    print(
        f"{alias} [{case.name}] variant={variant} clip {list(clip.shape)} {clip.dtype}: largest |authors - zoo| = "
        f"{difference:.3g} (authors' output in [{float(theirs.min()):.3f}, {float(theirs.max()):.3f}], "
        f"up to {change:.3g} from the input)"
    )
    return difference


def parity(alias: str, src: Path, size: int, frames: int, seed: int, fixture: Path | None, dtype: torch.dtype) -> float:
    """Largest |authors - zoo| over every release of the model, on one random clip."""
    official = BUILDERS[alias](src, seed)
    clip = torch.rand(1, frames, 3, size, size, generator=torch.Generator().manual_seed(seed + 100)).to(dtype)
    worst = max(check(alias, case, clip, official.modules) for case in official.cases)
    if fixture is not None:
        fixture.parent.mkdir(parents=True, exist_ok=True)
        fixture.write_text(fixture_text(alias, official))
    count = len(official.cases)
    print(f"{alias}: largest difference over {count} release(s) {worst:.3g}; authors' code {official.commit}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(BUILDERS))
    parser.add_argument("--official-src", required=True, type=Path, help="folder with the authors' source files")
    parser.add_argument("--size", type=int, default=64, help="frame height and width (default 64)")
    parser.add_argument("--frames", type=int, default=5, help="frames in the clip (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-fixture", type=Path, default=None, help="write the authors' key/shape layout here")
    parser.add_argument(
        "--float64", action="store_true", help="run both networks in float64 (rounding apart, the gap is 0)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    dtype = torch.float64 if args.float64 else torch.float32
    parity(args.model, args.official_src, args.size, args.frames, args.seed, args.write_fixture, dtype)


if __name__ == "__main__":
    main()
