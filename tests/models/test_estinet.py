"""ESTINet: shapes, the STIM interaction and backward pass, ESTM's temporal reduction and windows,
per-frame SICM cost, the two-stage schedule, every Table 3 config, and that it learns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from derain_zoo.models.estinet import ESTM, STIM, ESTINet, ESTINetNetwork
from derain_zoo.models.estinet.network import window_table
from tests.models.helpers import stage2_warnings, video_batch

os.environ.setdefault("WANDB_MODE", "disabled")
REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("estinet*.yaml"))

TINY = {
    "encoder_channels": (8, 8, 16, 16, 16),
    "blocks_per_stage": 1,
    "decoder_channels": 4,
    "fusion_channels": 4,
    "cell_channels": 4,
    "output_gate_channels": 8,
    "hidden_channels": 4,
    "direction_fusion_channels": 4,
    "conv_channels": 8,
    "estm_channels": 8,
    "estm_blocks": 1,
    "estm_growth": 4,
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from seed 0 (tests/conftest.py already runs torch on one thread)."""
    torch.manual_seed(0)


@pytest.mark.parametrize(("frames", "height", "width"), [(5, 32, 32), (7, 37, 45), (1, 20, 20), (3, 33, 17)])
def test_every_frame_is_restored_at_its_own_size(frames: int, height: int, width: int) -> None:
    net = ESTINetNetwork(**TINY).eval()
    rain = torch.rand(2, frames, 3, height, width)
    with torch.no_grad():
        out = net(rain)
    assert out.shape == rain.shape
    assert torch.isfinite(out).all()


def _stim_isolating_interaction() -> STIM:
    """A STIM whose h(t-1) and C(t-1) carry nothing: frame t-1 can reach h(t) only via the gates' f_x(t-1)."""
    stim = STIM(feature_channels=6, cell_channels=4, output_gate_channels=5, hidden_channels=3)
    for cell in (stim.forward_cell, stim.backward_cell):
        with torch.no_grad():
            cell.gates.weight[:, 12:] = 0  # columns of h(t-1)
            cell.gates.bias[:4] = -1e4  # forget gate closed: C(t-1) forgotten
    return stim


def test_changing_previous_frame_changes_stim_output_through_the_interaction() -> None:
    stim = _stim_isolating_interaction()
    features = torch.randn(1, 4, 6, 8, 8)
    changed = features.clone()
    changed[:, 1] += 1.0
    h, h_changed = stim.forward_cell(features), stim.forward_cell(changed)
    assert not torch.allclose(h[:, 2], h_changed[:, 2]), "f_x(t-1) does not reach the gates at t"
    assert torch.allclose(h[:, 3], h_changed[:, 3]), "frame t-2 leaked past the isolated recurrence"
    with torch.no_grad():
        stim.forward_cell.gates.weight[:, 6:12] = 0  # now also cut f_x(t-1)
    assert torch.allclose(stim.forward_cell(features)[:, 2], stim.forward_cell(changed)[:, 2])


def test_reversing_the_clip_runs_the_backward_pass() -> None:
    stim = STIM(feature_channels=6, cell_channels=4, output_gate_channels=5, hidden_channels=3).eval()
    features = torch.randn(1, 5, 6, 8, 8)
    with torch.no_grad():
        out = stim(features)
        changed = features.clone()
        changed[:, -1] += 1.0
        assert not torch.allclose(stim(changed)[:, 0], out[:, 0]), "the first frame does not see the future"
        # swapping the two cells and reversing time must give the same clip, reversed
        swapped = STIM(
            feature_channels=6,
            cell_channels=4,
            output_gate_channels=5,
            hidden_channels=3,
        ).eval()
        swapped.load_state_dict(stim.state_dict())
        swapped.forward_cell, swapped.backward_cell = (
            swapped.backward_cell,
            swapped.forward_cell,
        )
        swapped.fusion[0].weight.copy_(torch.cat(stim.fusion[0].weight.split(3, dim=1)[::-1], dim=1))
        assert torch.allclose(swapped(features.flip(1)).flip(1), out, atol=1e-5)


def test_estm_feature_map_after_the_second_3d_layer_has_one_frame() -> None:
    estm = ESTM(window=5, channels=8, num_blocks=1, growth=4)
    coarse, rain = torch.rand(2, 5, 3, 16, 16), torch.rand(2, 5, 3, 16, 16)
    assert estm.conv3d_1(torch.cat([coarse, rain], 2).transpose(1, 2)).shape[2] == 3
    assert estm.temporal_features(coarse, rain).shape == (2, 8, 1, 16, 16)
    assert estm(coarse, rain).shape == coarse.shape


def test_estm_windows_tile_the_clip_with_reflected_borders() -> None:
    table, lead = window_table(7, 5, 5)
    assert lead == 0 and table.tolist() == [[0, 1, 2, 3, 4], [5, 6, 5, 4, 3]]
    table, lead = window_table(3, 5, 1)  # one window per frame, centred, keep the middle
    assert lead == 2 and table.tolist() == [
        [2, 1, 0, 1, 2],
        [1, 0, 1, 2, 1],
        [0, 1, 2, 1, 0],
    ]
    with pytest.raises(ValueError, match="stride"):
        ESTINetNetwork(**TINY, estm_stride=6)


def test_refined_frame_depends_only_on_its_own_window() -> None:
    net = ESTINetNetwork(**TINY).eval()
    coarse, rain = torch.rand(1, 10, 3, 16, 16), torch.rand(1, 10, 3, 16, 16)
    changed = rain.clone()
    changed[:, 7] += 0.5
    with torch.no_grad():
        before, after = net.refine(coarse, rain), net.refine(coarse, changed)
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6)  # window 0..4 untouched
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_whole_sequence_runs_sicm_once_per_frame() -> None:
    net = ESTINetNetwork(**TINY).eval()
    seen: list[int] = []
    net.sicm.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    estm_windows: list[int] = []
    assert net.estm is not None
    net.estm.register_forward_hook(lambda module, args, out: estm_windows.append(args[0].shape[0]))
    with torch.no_grad():
        net(torch.rand(1, 12, 3, 16, 16))
    assert sum(seen) == 12, "SICM must see each frame exactly once"
    assert max(seen) <= 1, "without gradients SICM runs inference_frames (1) frames per pass"
    assert estm_windows == [3], "12 frames = 3 ESTM windows of 5 (the last one reflected)"


def test_2dcnn_ablation_restores_each_frame_alone() -> None:
    net = ESTINetNetwork(**TINY, temporal="conv", stage=1).eval()
    rain = torch.rand(1, 4, 3, 16, 16)
    changed = rain.clone()
    changed[:, 2] += 0.5
    with torch.no_grad():
        before, after = net(rain), net(changed)
    assert torch.allclose(before[:, [0, 1, 3]], after[:, [0, 1, 3]], atol=1e-6)
    assert net.estm is None


def test_paper_initialisation_is_normal_with_std_001() -> None:
    """Sec. 4.2: every conv weight, the 2D ones and ESTM's two 3D ones alike, ~ N(0, 0.01); biases zero."""
    net = ESTINetNetwork(**TINY)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    conv3d = [m for m in convs if isinstance(m, torch.nn.Conv3d)]
    assert len(conv3d) == 2, "ESTM's two 3D convs"
    for group in (convs, conv3d):
        weights = torch.cat([m.weight.flatten() for m in group])
        assert abs(weights.std().item() - 0.01) < 1e-3 and abs(weights.mean().item()) < 1e-3
    biases = [m.bias for m in convs if m.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_stage_losses_follow_the_two_stage_schedule() -> None:
    """Eqs. (14)-(16) rebuilt from the parts: coarse = rain + STIM output, refined = coarse + ESTM's
    residual, L_STI = mean squared error of coarse, L_EST = that of refined, L = L_STI + alpha L_EST."""
    batch = video_batch(rain=torch.rand(1, 5, 3, 16, 16), clean=torch.rand(1, 5, 3, 16, 16))
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda module, args, out: seen.__setitem__(name, out)

    def squared_error(x: torch.Tensor) -> torch.Tensor:
        return ((x - batch.clean) ** 2).mean()

    stage1 = ESTINet(**TINY, stage=1, init_std=None)
    stage1.network.temporal.register_forward_hook(keep("stim"))
    terms = stage1.losses(batch)
    assert set(terms) == {"sti", "loss"} and torch.equal(terms["loss"], terms["sti"])
    torch.testing.assert_close(terms["sti"], squared_error(batch.rain + seen["stim"]))

    stage2 = ESTINet(**TINY, alpha=0.5, init_std=None)
    stage2.network.temporal.register_forward_hook(keep("stim"))
    stage2.network.estm.head.register_forward_hook(keep("residual"))
    terms = stage2.losses(batch)
    coarse = batch.rain + seen["stim"]
    refined = coarse + seen["residual"].reshape(coarse.shape)  # one 5-frame window
    assert (refined - coarse).abs().max() > 1e-3
    torch.testing.assert_close(terms["sti"], squared_error(coarse))
    torch.testing.assert_close(terms["est"], squared_error(refined))
    torch.testing.assert_close(terms["loss"], squared_error(coarse) + 0.5 * squared_error(refined))


def test_stage2_starts_from_a_stage1_checkpoint(tmp_path: Path) -> None:
    stage1 = ESTINet(**TINY, stage=1)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": stage1.state_dict()}, path)
    stage2 = ESTINet(**TINY, stage=2, init_checkpoint=str(path))
    for key, value in stage1.network.state_dict().items():
        assert torch.equal(stage2.network.state_dict()[key], value), key
    assert stage2.network.estm is not None
    assert "init_checkpoint" not in stage2.hparams  # a stage-2 checkpoint reloads without the file
    with pytest.raises(RuntimeError):  # other widths: refuse instead of silently skipping weights
        ESTINet(**{**TINY, "decoder_channels": 6}, init_checkpoint=str(path))


@pytest.mark.slow
def test_overfitting_one_clip_removes_half_the_rain() -> None:
    """Two hundred steps on one clip must get below half the rainy input's own error.

    Stage 1 (SICM + STIM), PyTorch's default initialisation: from the paper's N(0, 0.01) the
    same tiny network stays at the identity far longer (see the README).
    """
    from derain_zoo.data import SyntheticRainDataModule

    data = SyntheticRainDataModule(
        rain="heavy",
        content="photos",  # the clip this bound was set on: no JPEG coding error to floor the loss
        degrade=False,
        num_frames=5,
        crop_size=32,
        frame_size=48,
        batch_size=1,
        num_workers=0,
        train_clips=1,
        val_clips=1,
        test_sequences=1,
        test_frames=5,
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    rain_error = torch.nn.functional.mse_loss(batch.rain, batch.clean).item()
    model = ESTINet(**TINY, stage=1, init_std=None)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(200):
        loss = model.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-5:]) <= 0.5 * rain_error, (rain_error, losses[::10])


# Table 3: the row each config trains -> (input frames, temporal module, stage: 2 adds ESTM); the paper's model and
# its stage 1 train 5-frame clips like row #5
TABLE3 = {
    "estinet_ablation_2dcnn": (1, "conv", 1),  # SICM + 2DCNN
    "estinet_ablation_stim2": (2, "stim", 1),  # SICM + STIM (#2)
    "estinet_ablation_stim3": (3, "stim", 1),
    "estinet_ablation_stim4": (4, "stim", 1),
    "estinet_ablation_stim5": (5, "stim", 1),
    "estinet_ablation_full": (5, "stim", 2),  # SICM + STIM (#5) + ESTM
    "estinet_stage1": (5, "stim", 1),
    "estinet": (5, "stim", 2),
}
# what a row may change against configs/estinet.yaml; every other setting must be the paper model's
ROW_KEYS = {"temporal", "stage", "clip_frames", "conv_channels", "init_checkpoint"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_estinet_config_trains_its_table3_row(config: Path) -> None:
    """Frames, temporal module and ESTM per Table 3 row, tested on clips as long as the training clips,
    and nothing else changed from the paper model's config; the full row is the paper model itself."""
    import yaml

    def load(path: Path) -> tuple[dict, dict]:
        loaded = yaml.safe_load(path.read_text())
        return loaded["model"]["init_args"], loaded["data"]["init_args"]

    model, data = load(config)
    frames, temporal, stage = TABLE3[config.stem]
    assert (data["num_frames"], model["temporal"], model["stage"]) == (frames, temporal, stage)
    paper_model, paper_data = load(REPO / "configs" / "estinet.yaml")
    assert model.get("clip_frames", paper_model["clip_frames"]) == frames
    if config.stem == "estinet_ablation_full":  # the same model, tested the same way: identical outputs
        assert model == paper_model
    assert {k: v for k, v in model.items() if k not in ROW_KEYS} == {
        k: v for k, v in paper_model.items() if k not in ROW_KEYS
    }
    assert {k: v for k, v in data.items() if k != "num_frames"} == {
        k: v for k, v in paper_data.items() if k != "num_frames"
    }


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_estinet_config_builds_and_runs_fast_dev_run(config: Path, tmp_path: Path) -> None:
    from derain_zoo.cli import main

    tiny = [f"--model.init_args.{key}={list(v) if isinstance(v, tuple) else v}" for key, v in TINY.items()]
    main(
        [
            "fit",
            "--config",
            str(config),
            *tiny,
            "--data.init_args.crop_size=32",
            "--data.init_args.frame_size=48",
            "--data.init_args.batch_size=1",
            "--data.init_args.num_workers=0",
            "--data.init_args.train_clips=1",
            "--data.init_args.val_clips=1",
            "--trainer.fast_dev_run=1",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_stage2_without_a_stage1_checkpoint_warns_when_fitting(tmp_path: Path) -> None:
    """configs/estinet.yaml (stage 2) leaves init_checkpoint null: stage 2 from random weights must not be silent."""
    batch = video_batch(rain=torch.rand(1, 5, 3, 16, 16), clean=torch.rand(1, 5, 3, 16, 16))
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": ESTINet(**TINY, stage=1).state_dict()}, path)
    assert stage2_warnings(ESTINet(**TINY), batch, tmp_path)
    assert not stage2_warnings(ESTINet(**TINY, stage=1), batch, tmp_path)
    assert not stage2_warnings(ESTINet(**TINY, init_checkpoint=str(path)), batch, tmp_path)
    assert not stage2_warnings(ESTINet(**TINY, weights="random"), batch, tmp_path)


def test_use_estm_the_name_before_stage_still_builds_the_same_model():
    """Checkpoints saved before the rename carry use_estm=False / True in their hyper-parameters."""
    assert ESTINet(**TINY, use_estm=False).network.estm is None
    model = ESTINet(**TINY, use_estm=True)
    assert model.network.estm is not None and model.hparams.stage == 2


def test_a_checkpoint_saved_with_use_estm_reloads_as_that_stage(tmp_path: Path) -> None:
    """LightningCLI reloads fill stage=2 by default; the saved use_estm=False must still win (stage 1)."""
    model = ESTINet(**TINY, stage=1)
    hparams = {key: value for key, value in model.hparams.items() if key != "stage"}
    hparams.update(_class_path="derain_zoo.models.estinet.ESTINet", use_estm=False)
    hparams["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
    path = tmp_path / "before_rename.ckpt"
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": hparams, "hparams_name": "kwargs"}
    torch.save({**checkpoint, "pytorch-lightning_version": "2.5.0"}, path)
    reloaded = ESTINet.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert reloaded.network.estm is None and reloaded.hparams.stage == 1


def test_sicm_runs_a_frame_at_a_time_without_gradients_and_gives_the_same_frames():
    """At 480x640 SICM's fusion holds the 512-channel 1/16 features upsampled to full size for every frame
    it runs on: without gradients it takes one frame per pass (the same output); training batches all."""
    network = ESTINetNetwork(**TINY).eval()
    rain = torch.rand(1, 5, 3, 32, 32)
    batches = []
    network.sicm.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
    with torch.no_grad():
        frame_by_frame = network(rain)
        network.inference_frames = None
        together = network(rain)
    network(rain)
    assert batches == [1] * 5 + [5, 5]
    torch.testing.assert_close(frame_by_frame, together, rtol=1e-5, atol=1e-6)


def test_inference_frames_must_be_positive():
    with pytest.raises(ValueError, match="inference_frames"):
        ESTINet(**TINY, inference_frames=0)
