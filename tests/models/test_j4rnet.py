"""J4R-Net: shapes, the slides' GRU equations, occlusion detection, loss skipping, the two stages."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from derain_zoo.data.batch import VideoBatch
from derain_zoo.data.rain import compose
from derain_zoo.models.j4rnet import DetectionGuidedGRUCell, J4RNet, J4RNetwork
from derain_zoo.models.j4rnet.module import high_pass
from tests.models.helpers import video_batch

TINY = {
    "channels": 8,
    "extractor_blocks": 1,
    "removal_blocks": 1,
    "detect_layers": 2,
    "reconstruction_blocks": 1,
    "fusion_blocks": 1,
}


def hybrid_batch(generator: torch.Generator, clips: int = 2, frames: int = 3, size: int = 24) -> VideoBatch:
    """Clips under the hybrid model O = (1-alpha)(B+S) + alpha A: textured B, opaque bright blobs, thin streaks."""
    shape = (clips * frames, 1, size, size)
    background = F.interpolate(
        torch.rand(clips, 3, 6, 6, generator=generator),
        size=(size, size),
        mode="bilinear",
    )
    background = (0.7 * background + 0.3 * torch.rand(clips, 3, size, size, generator=generator)).clamp(0, 1)
    background = background[:, None].expand(clips, frames, 3, size, size)
    blobs = F.interpolate(
        torch.rand(clips * frames, 1, 5, 5, generator=generator),
        size=(size, size),
        mode="bilinear",
    )
    occlusion = (blobs > 0.7).float().view(clips, frames, 1, size, size)
    streak = 0.3 * (torch.rand(shape, generator=generator) < 0.05).float().view(clips, frames, 1, size, size)
    streak = ((background + streak).clamp(0, 1) - background).contiguous()
    atmosphere = (0.8 + 0.2 * torch.rand(clips, 1, 3, 1, 1, generator=generator)).expand(clips, frames, 3, size, size)
    rain = compose(background, streak, occlusion, torch.ones_like(occlusion), atmosphere).clamp(0, 1)
    return video_batch(rain=rain, clean=background.contiguous(), streak=streak, occlusion=occlusion)


def train(model: J4RNet, batches: list[VideoBatch], steps: int, lr: float) -> list[float]:
    """Plain Adam loop over the module's own training_step (no Trainer: fast and deterministic)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        for step in range(steps):
            loss = model.training_step(batches[step % len(batches)], step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("frames,size", [(1, (16, 16)), (2, (17, 23)), (5, (19, 16))])
def test_every_frame_is_restored_for_any_clip_length_and_odd_size(recurrent, frames, size):
    torch.manual_seed(0)
    network = J4RNetwork(**TINY, recurrent=recurrent)
    rain = torch.rand(2, frames, 3, *size)
    output = network.forward_all(rain)
    assert output.background.shape == rain.shape
    assert output.streak.shape == rain.shape
    assert torch.isfinite(output.background).all()
    if recurrent:
        assert output.alpha_logits.shape == (2, frames, 2, *size)
    else:
        assert output.alpha_logits is None


def test_recurrent_output_is_causal_and_reads_the_memory():
    """Frame t is restored from frames <= t only, so streaming and chunked inference agree on the past;
    and B_t depends on H_{t-1}: once JRC-Net's detail is active (it starts at zero, where frame 3
    changes by exactly 0 when frame 0 changes), an earlier frame reaches B_3 through the memory, via
    D-Net's alpha and via C-Net, and via C-Net alone when D-Net is cut off from the memory."""
    torch.manual_seed(0)
    network = J4RNetwork(**TINY)
    with torch.no_grad():
        torch.nn.init.normal_(network.fusion.out.weight, std=0.1)  # recurrent paths active
    rain = torch.rand(1, 4, 3, 16, 16)
    future, past = rain.clone(), rain.clone()
    future[:, 3] = torch.rand(3, 16, 16)
    past[:, 0] = torch.rand(3, 16, 16)
    with torch.no_grad():
        a, b, c = network(rain), network(future), network(past)
        torch.testing.assert_close(a[:, :3], b[:, :3])
        assert (a[:, 3] - b[:, 3]).abs().max() > 1e-2
        assert (a[:, 3] - c[:, 3]).abs().max() > 1e-3, "frame 0 does not reach B_3 through H_2"
        network.detection.from_memory.weight.zero_()  # alpha no longer sees H_{t-1}: only C-Net does
        a, c = network(rain), network(past)
        assert (a[:, 3] - c[:, 3]).abs().max() > 1e-3, "C-Net does not read H_{t-1}"


def test_high_pass_is_input_minus_its_gaussian_blur():
    """E(x) = x - G_1 * x with a normalised 7x7 Gaussian (sigma 1, radius 3): on a unit impulse away
    from the border it is 1 - g(0)^2 at the impulse and -g(i) g(j) around it; flat images have none."""
    g = torch.exp(-(torch.arange(-3.0, 4.0) ** 2) / 2)
    g = g / g.sum()
    impulse = torch.zeros(1, 1, 3, 15, 15)
    impulse[..., 7, 7] = 1.0
    expected = impulse.clone()
    expected[..., 4:11, 4:11] -= g[:, None] * g[None, :]
    model = J4RNet(**TINY)
    torch.testing.assert_close(high_pass(impulse, model.highpass_kernel), expected)
    flat = torch.full((1, 2, 3, 9, 9), 0.4)
    torch.testing.assert_close(high_pass(flat, model.highpass_kernel), torch.zeros_like(flat))


def _cell_with_gate_bias(update_bias: float, read_bias: float) -> DetectionGuidedGRUCell:
    """A cell whose gates are constants, so the GRU update can be checked against the equations."""
    cell = DetectionGuidedGRUCell(4, 4, 4)
    with torch.no_grad():
        cell.input_weights.weight[:8].zero_()  # W_z, W_r; W_h (channels 8..12) stays random
        cell.memory_weights.weight.zero_()
        cell.guide_weights.weight.zero_()
        cell.input_weights.bias[:4] = update_bias
        cell.input_weights.bias[4:8] = read_bias
    return cell


def test_update_gate_zero_keeps_previous_memory():
    torch.manual_seed(0)
    cell = _cell_with_gate_bias(update_bias=-200.0, read_bias=1.0)
    frame, memory, guide = torch.randn(3, 2, 4, 9, 11).unbind(0)
    assert torch.allclose(cell(frame, memory, guide), memory, atol=1e-6)


def test_open_update_and_closed_read_gate_gives_tanh_of_current_features():
    torch.manual_seed(0)
    cell = _cell_with_gate_bias(update_bias=200.0, read_bias=-1.0)
    frame, memory, guide = torch.randn(3, 2, 4, 9, 11).unbind(0)
    w_h, b_h = (
        cell.input_weights.weight[8:],
        cell.input_weights.bias[8:],
    )  # U_h only ever sees r * H = 0
    expected = torch.tanh(F.conv2d(frame, w_h, b_h, padding=1))
    assert torch.allclose(cell(frame, memory, guide), expected, atol=1e-6)


def test_gru_matches_the_slide_equations_for_random_weights():
    torch.manual_seed(0)
    cell = DetectionGuidedGRUCell(4, 4, 4)
    frame, memory, guide = torch.randn(3, 2, 4, 9, 11).unbind(0)
    w, b = cell.input_weights.weight, cell.input_weights.bias
    u, v, u_h = (
        cell.memory_weights.weight,
        cell.guide_weights.weight,
        cell.candidate_weights.weight,
    )

    def conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv2d(x, kernel, bias, padding=1)

    z = torch.sigmoid(conv(frame, w[:4], b[:4]) + conv(memory, u[:4]) + conv(guide, v[:4]))
    r = torch.relu(conv(frame, w[4:8], b[4:8]) + conv(memory, u[4:]) + conv(guide, v[4:]))
    candidate = torch.tanh(conv(frame, w[8:], b[8:]) + conv(r * memory, u_h))
    assert torch.allclose(cell(frame, memory, guide), (1 - z) * memory + z * candidate, atol=1e-5)


def test_read_gate_is_relu_and_update_gate_sees_detection_features():
    torch.manual_seed(0)
    cell = DetectionGuidedGRUCell(4, 4, 4)
    frame, memory, guide = torch.randn(3, 2, 4, 9, 11).unbind(0)
    projected = cell.project(frame)
    update, read = cell.gate_values(projected, memory, guide)
    assert read.min() == 0 and (read == 0).any()  # ReLU, not a sigmoid: exact zeros
    with torch.no_grad():
        cell.input_weights.bias[4:8] = 5.0
        for conv in (cell.input_weights, cell.memory_weights, cell.guide_weights):
            conv.weight[4:8].zero_()
    assert torch.allclose(
        cell.gate_values(cell.project(frame), memory, guide)[1],
        torch.full_like(read, 5.0),
    )  # unbounded
    assert not torch.allclose(cell.gate_values(projected, memory, torch.zeros_like(guide))[0], update)


def test_detection_beats_chance_on_held_out_hybrid_rain_after_short_training():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = J4RNet(**TINY, detect_weight=1.0)
    batches = [hybrid_batch(generator) for _ in range(4)]
    train(model, batches, steps=80, lr=3e-3)  # ~60 steps escape the all-clear plateau
    held_out = hybrid_batch(generator, clips=4)
    with torch.no_grad():
        logits = model.network.forward_all(held_out.rain).alpha_logits
    predicted = logits.argmax(2) == 1
    occluded = held_out.occlusion[:, :, 0] > 0.5
    balanced_accuracy = 0.5 * (predicted[occluded].float().mean() + (~predicted[~occluded]).float().mean())
    assert balanced_accuracy > 0.75, f"balanced accuracy {balanced_accuracy:.3f} (chance is 0.5)"


def test_loss_skips_layers_the_batch_does_not_carry():
    torch.manual_seed(0)
    model = J4RNet(**TINY)
    full = hybrid_batch(torch.Generator().manual_seed(0))
    output = model.network.forward_all(full.rain)
    assert set(model.compute_losses(output, full)) == {
        "joint",
        "rect",
        "removal",
        "detect",
        "loss",
    }
    real = video_batch(rain=full.rain, clean=full.clean)
    with pytest.warns(UserWarning, match="no 'occlusion' layer"):
        losses = model.compute_losses(output, real)
    assert set(losses) == {"joint", "rect", "loss"}
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    expected = losses["joint"] + 1e-4 * losses["rect"]
    assert torch.allclose(losses["loss"], expected)


def test_loss_is_the_slides_four_term_total_with_b_equals_o_minus_s_only_where_alpha_is_0():
    """l_all = l_joint + 0.001 l_detect + 0.0001 l_rect + 0.0001 l_removal (the slides' lambdas), every
    term rebuilt by hand: squared errors of B and of E(B), the two-class log-loss against alpha, and the
    streak error over visible (alpha = 0) pixels only. Stage 1, whose output is O - S, compares it
    with B only where alpha = 0 as well."""
    torch.manual_seed(0)
    batch = hybrid_batch(torch.Generator().manual_seed(0))
    clean, streak, occlusion = batch.clean, batch.streak, batch.occlusion
    visible = (occlusion == 0).float().expand_as(clean)
    assert 0.05 < 1 - visible.mean() < 0.5, "the batch must have occluded and visible pixels"
    assert (streak * (1 - visible)).abs().sum() > 0, "streak targets under the drops, to be ignored"

    def squared(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones_like(x) if mask is None else mask
        return ((x - y) ** 2 * mask).sum() / mask.sum()

    model = J4RNet(**TINY)
    kernel = model.highpass_kernel
    with torch.no_grad():
        output = model.network.forward_all(batch.rain)
        terms = model.compute_losses(output, batch)
    logits, target = output.alpha_logits, occlusion.long()  # B,T,2,H,W and B,T,1,H,W
    expected = {
        "joint": squared(output.background, clean),
        "rect": squared(high_pass(output.background, kernel), high_pass(clean, kernel)),
        "detect": (logits.logsumexp(2, keepdim=True) - logits.gather(2, target)).mean(),
        "removal": squared(output.streak, streak, visible),
    }
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, msg=name)
    total = expected["joint"] + 1e-3 * expected["detect"] + 1e-4 * expected["rect"] + 1e-4 * expected["removal"]
    torch.testing.assert_close(terms["loss"], total, rtol=1e-6, atol=0)

    stage1 = J4RNet(**TINY, stage=1)
    with torch.no_grad():
        output = stage1.network.forward_all(batch.rain)
        terms = stage1.compute_losses(output, batch)
    assert set(terms) == {"joint", "rect", "removal", "loss"}
    joint = squared(output.removal, clean, visible)
    rect = squared(high_pass(output.removal, kernel), high_pass(clean, kernel), visible)
    removal = squared(output.streak, streak, visible)
    torch.testing.assert_close(terms["joint"], joint)
    torch.testing.assert_close(terms["rect"], rect)
    torch.testing.assert_close(terms["loss"], joint + 1e-4 * rect + 1e-4 * removal, rtol=1e-6, atol=0)


def test_stage2_without_a_stage1_checkpoint_warns_when_fitting(tmp_path: Path):
    """configs/j4rnet.yaml leaves init_checkpoint null: stage 2 from random weights must not be silent."""
    import lightning as L

    batch = hybrid_batch(torch.Generator().manual_seed(0), clips=1)
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    for model, warns in (
        (J4RNet(**TINY), True),
        (J4RNet(**TINY, stage=1), False),
        (J4RNet(**TINY, weights="random"), False),
    ):
        trainer = L.Trainer(
            fast_dev_run=1,
            logger=False,
            enable_progress_bar=False,
            default_root_dir=tmp_path,
            enable_model_summary=False,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, loader)
        said = [str(w.message) for w in caught if "stage 2 starts from random weights" in str(w.message)]
        assert bool(said) == warns, (model.stage, said)


def test_stage1_trains_only_the_single_frame_removal_path():
    model = J4RNet(**TINY, stage=1)
    names = {name.split(".")[1] for name, _ in model.named_parameters()}
    assert names == {"head", "extractor", "removal", "streak_head"}


def test_phase_the_name_before_stage_still_builds_the_same_model():
    """Checkpoints saved before the rename carry phase=1 / phase=2 in their hyper-parameters."""
    model = J4RNet(**TINY, phase=1)
    assert model.stage == 1 and not model.network.recurrent and model.hparams.stage == 1


def test_stage2_starts_from_a_stage1_checkpoint_and_reproduces_its_output(
    tmp_path: Path,
):
    torch.manual_seed(0)
    stage1 = J4RNet(**TINY, stage=1)
    train(
        stage1,
        [hybrid_batch(torch.Generator().manual_seed(0), frames=1)],
        steps=3,
        lr=1e-3,
    )
    checkpoint = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": stage1.state_dict()}, checkpoint)
    stage2 = J4RNet(**TINY, stage=2, init_checkpoint=str(checkpoint))
    for name, value in stage1.network.state_dict().items():
        assert torch.equal(stage2.network.state_dict()[name], value), name
    rain = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():  # JRC-Net's detail starts at zero: stage 2 begins where stage 1 ended
        assert torch.allclose(stage2(rain), stage1(rain), atol=1e-6)
    with pytest.raises(RuntimeError, match="size mismatch"):
        J4RNet(**{**TINY, "channels": 12}, init_checkpoint=str(checkpoint))


def test_overfitting_one_clip_halves_the_loss():
    torch.manual_seed(0)
    model = J4RNet(**TINY)
    batch = hybrid_batch(torch.Generator().manual_seed(3), clips=1, frames=3, size=16)
    losses = train(model, [batch], steps=30, lr=2e-3)
    assert min(losses[-5:]) <= 0.5 * losses[0], f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"


def _fit(config: str, root: Path, *extra: str) -> None:
    """Run ``derain-zoo fit`` on a paper config, shrunk to a tiny width and one step."""
    from derain_zoo.cli import main

    shrink = [
        "--model.init_args.channels=8",
        "--model.init_args.extractor_blocks=1",
        "--model.init_args.removal_blocks=1",
    ]
    data = [
        "--data.init_args.frame_size=32",
        "--data.init_args.train_clips=2",
        "--data.init_args.val_clips=1",
    ]
    data += ["--data.init_args.batch_size=2", "--data.init_args.num_workers=0"]
    trainer = [
        "--trainer.max_steps=1",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=false",
    ]
    trainer += [
        f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    main(
        [
            "fit",
            "--config",
            str(Path(__file__).parents[2] / "configs" / config),
            *shrink,
            *data,
            *trainer,
            *extra,
        ]
    )


def test_paper_configs_train_stage1_then_stage2_from_its_checkpoint(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fit("j4rnet_phase1.yaml", tmp_path / "stage1")
        checkpoint = tmp_path / "stage1" / "checkpoints" / "last.ckpt"
        assert checkpoint.is_file()
        _fit(
            "j4rnet.yaml",
            tmp_path / "stage2",
            f"--model.init_args.init_checkpoint={checkpoint}",
            "--model.init_args.reconstruction_blocks=1",
        )
    stage2 = torch.load(tmp_path / "stage2" / "checkpoints" / "last.ckpt", weights_only=True)
    assert stage2["hyper_parameters"]["stage"] == 2
    assert any(key.startswith("network.memory.") for key in stage2["state_dict"])


@pytest.mark.parametrize("step", [1, 3])
def test_a_test_chunk_runs_a_few_frames_at_a_time_and_equals_one_pass(step):
    """``inference_frames`` cuts a chunk into passes of a few frames (the per-frame paths' memory is the
    pass's, not the chunk's) and carries the memory between them, so the backgrounds and the memory a
    chunk ends with equal one pass over the whole chunk."""
    network = J4RNetwork(**TINY, inference_frames=None).eval()
    rain = torch.rand(1, 7, 3, 12, 12)
    with torch.no_grad():
        whole, whole_memory = network.stream(rain, None, (1, 1))
        network.inference_frames = step
        passes = []
        hook = network.head.register_forward_hook(lambda module, args, output: passes.append(args[0].shape[0]))
        sliced, sliced_memory = network.stream(rain, None, (1, 1))
        hook.remove()
    assert passes == [min(step, 5 - first) for first in range(0, 5, step)]
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sliced_memory, whole_memory, rtol=1e-5, atol=1e-6)


def test_inference_frames_must_be_positive():
    with pytest.raises(ValueError, match="inference_frames"):
        J4RNet(**TINY, inference_frames=0)
