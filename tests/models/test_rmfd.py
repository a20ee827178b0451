"""RMFD: shapes, exact physics inversion, stage-2 initialisation and freezing, recurrence, overfitting."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from derain_zoo.cli import DerainCLI
from derain_zoo.data import (
    DerainDataModule,
    RainSynAll100DataModule,
    SyntheticRainDataModule,
)
from derain_zoo.data.batch import VideoBatch
from derain_zoo.data.rain import sample_rain
from derain_zoo.models import DerainModule
from derain_zoo.models.rmfd import RMFD, RMFDNetwork, invert_rain_model
from derain_zoo.models.rmfd.module import dark_channel, ssim_loss
from derain_zoo.models.rmfd.network import RMFDOutput, TemporalConv
from tests.models.helpers import assert_gan_step_isolated, stage2_warnings, video_batch

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = {"nf": 4, "blocks": 1, "discriminator_widths": (4, 8)}


def accumulation_batch(seed: int = 0, clips: int = 2, frames: int = 3, size: int = 16) -> VideoBatch:
    """Clips under Yang et al.'s comprehensive rain, with every physical layer as ground truth."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(clips):
        base = torch.rand(1, 3, 4, 4, generator=generator)
        clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear").expand(frames, 3, size, size)
        rain, layers = sample_rain("accumulation", size, size, generator).render(clean.contiguous())
        samples.append(
            {
                "rain": rain,
                "clean": clean.contiguous(),
                **{k: v.contiguous() for k, v in layers.items()},
            }
        )
    return video_batch(**{key: torch.stack([s[key] for s in samples]) for key in samples[0]})


def fit_steps(model: RMFD, batch: VideoBatch, steps: int, root: Path) -> L.Trainer:
    """Run the real Lightning loop (needed for manual optimisation) for a few steps on one clip."""
    loader = DataLoader([batch], batch_size=None)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=root,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, loader)
    return trainer


@pytest.mark.parametrize("frames,size", [(1, (16, 16)), (2, (17, 23)), (4, (13, 20))])
def test_every_frame_and_layer_is_returned_for_any_clip_length_and_size(frames, size):
    torch.manual_seed(0)
    net = RMFDNetwork(nf=4, blocks=1)
    rain = torch.rand(2, frames, 3, *size)
    out = net.forward_all(rain)
    assert out.background.shape == rain.shape
    assert out.inversion.shape == out.haze.shape == out.atmosphere.shape == rain.shape
    assert out.transmission.shape == (2, frames, 1, *size)
    assert RMFD(**TINY)(rain).shape == rain.shape


@pytest.mark.parametrize("stride", [1, 2])
def test_space_time_conv_is_a_2x3x3_conv3d_over_each_pair_of_neighbouring_frames(stride):
    """The grouped 2D form in channels_last equals Conv3d(kernel (2, 3, 3), no temporal padding), same weights."""
    torch.manual_seed(0)
    layer = TemporalConv(4, 6, stride).to(memory_format=torch.channels_last)
    frames = torch.rand(2, 5, 4, 12, 10)  # B, T, C, H, W
    weight = layer.conv.weight.unflatten(1, (2, 4)).transpose(1, 2)  # Cout, C, 2 (frames t, t+1), 3, 3
    expected = F.conv3d(frames.transpose(1, 2), weight, layer.conv.bias, stride=(1, stride, stride), padding=(0, 1, 1))
    out = layer(frames.flatten(1, 2).contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.unflatten(1, (4, 6)), expected.transpose(1, 2), atol=1e-5, rtol=0)


def test_inversion_recovers_the_background_exactly_from_the_rain_models_layers():
    batch = accumulation_batch(seed=3, size=32)
    assert 0.05 < batch.transmission.min() < 1  # real haze, above the floor
    recovered = invert_rain_model(batch.haze, batch.transmission, batch.atmosphere)
    torch.testing.assert_close(recovered, batch.clean, atol=1e-5, rtol=0)


def test_inversion_floors_the_transmission_instead_of_dividing_by_zero():
    haze, atmosphere = torch.full((1, 3, 2, 2), 0.9), torch.ones(1, 3, 2, 2)
    recovered = invert_rain_model(haze, torch.zeros(1, 1, 2, 2), atmosphere, floor=0.05)
    torch.testing.assert_close(recovered, (haze - 0.95) / 0.05)


def test_identity_start_returns_the_rainy_clip_and_still_trains_every_layer():
    """The CPU recipe's start: output = input exactly at step 0, and no layer is left without gradient."""
    torch.manual_seed(0)
    net = RMFDNetwork(nf=4, blocks=1, identity_start=True)
    rain = torch.rand(1, 6, 3, 16, 20)
    out = net.forward_all(rain)
    assert torch.equal(out.background, rain)
    assert torch.equal(out.haze, rain)
    (out.background.mean() + out.haze.mean()).backward()
    silent = [
        name for name, p in net.named_parameters() if name.startswith(("haze_net", "refine_net")) and p.grad is None
    ]
    assert not silent
    assert not torch.allclose(RMFDNetwork(nf=4, blocks=1)(rain), rain, atol=1e-2)  # the authors' start is far from it


def test_refinement_uses_the_previous_outputs():
    torch.manual_seed(0)
    net = RMFDNetwork(nf=4, blocks=1)
    window, inversion = torch.rand(1, 5, 3, 16, 16), torch.rand(1, 3, 16, 16)
    previous = (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    base, _ = net.refine(previous, inversion, window, [None])
    for changed in ((previous[0] + 0.5, previous[1]), (previous[0], previous[1] + 0.5)):
        out, _ = net.refine(changed, inversion, window, [None])
        assert (out - base).abs().max() > 1e-4


def test_recurrent_state_carries_information_to_later_frames():
    torch.manual_seed(0)
    net = RMFDNetwork(nf=4, blocks=1)
    rain = torch.rand(1, 6, 3, 16, 16)
    changed = rain.clone()
    changed[:, 0] = 1 - changed[:, 0]  # frame 0 is outside the 5-frame window of frame 5
    with torch.no_grad():
        assert (net(changed)[:, 5] - net(rain)[:, 5]).abs().max() > 1e-5


def test_stage_two_starts_from_stage_one_freezes_the_haze_net_and_trains_the_rest(
    tmp_path,
):
    torch.manual_seed(0)
    batch = accumulation_batch()
    stage1 = RMFD(**TINY)
    trainer = fit_steps(stage1, batch, steps=1, root=tmp_path)
    checkpoint = tmp_path / "stage1.ckpt"
    trainer.save_checkpoint(checkpoint)

    stage2 = RMFD(**TINY, stage=2, init_checkpoint=str(checkpoint))
    for name, value in stage1.network.state_dict().items():
        torch.testing.assert_close(stage2.network.state_dict()[name], value, msg=f"{name} not loaded")
    before = {name: value.clone() for name, value in stage2.state_dict().items()}
    trainer = fit_steps(stage2, batch, steps=1, root=tmp_path)
    after = stage2.state_dict()
    trainer.save_checkpoint(tmp_path / "stage2.ckpt")
    checkpoint.unlink()  # a stage-2 checkpoint is self-contained
    reloaded = RMFD.load_from_checkpoint(tmp_path / "stage2.ckpt", weights_only=False)
    assert reloaded.stage == 2
    torch.testing.assert_close(reloaded.state_dict(), after)

    def changed(prefix: str) -> bool:
        return any(
            not torch.equal(before[k], after[k])
            for k in before
            if k.startswith(prefix) and after[k].is_floating_point()
        )

    terms = (
        "adversarial",
        "dark_temporal",
        "dark_sparsity",
        "flat",
        "discriminator",
        "transmission",
        "atmosphere",
    )
    assert {f"train/{term}" for term in terms} <= set(trainer.callback_metrics)
    assert "train/haze" not in trainer.callback_metrics  # frozen: no loss on H
    assert not changed("network.haze_net.")
    assert changed("network.refine_net.") and changed("network.physics_net.") and changed("discriminator.")


def test_stage_two_generator_and_critic_gradients_are_isolated_both_ways(tmp_path):
    """The generator step applies exactly d(stage-1 terms + dark-channel terms + LSGAN term)/d(T/A and
    refinement nets), the adversarial part included, and leaves the critic where it was; the critic
    step applies exactly d(LSGAN critic loss on clean vs detached output)/d(critic) and leaves the
    generator where it was. References computed by hand on a copy of the initial model."""
    torch.manual_seed(0)
    batch = accumulation_batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stage 2 without a stage-1 checkpoint
        model = RMFD(**TINY, stage=2, adversarial_weight=1.0, flat_weight=0.0, label_noise=False)
    reference = copy.deepcopy(model).train()
    generator = [p for p in reference.network.parameters() if p.requires_grad]
    critic = list(reference.discriminator.parameters())
    out = reference.network.forward_all(batch.rain)
    clean = batch.clean
    fake, real = out.background[:, 1:].flatten(0, 1), clean[:, 1:].flatten(0, 1)
    dark = out.background.amin(dim=2)
    no_adversarial = (
        ssim_loss(out.transmission, batch.transmission)
        + ssim_loss(out.atmosphere, batch.atmosphere)
        + ssim_loss(out.inversion, clean)
        + ssim_loss(out.background, clean)
        + 0.1 * (dark[:, 1:] - dark[:, :-1].detach()).abs().mean()
        + 0.01 * dark[:, 1:].abs().mean()
    )
    g_loss = no_adversarial + ((reference.discriminator(fake) - 1) ** 2).mean()
    g_grads = torch.autograd.grad(g_loss, generator, retain_graph=True, allow_unused=True)
    plain_grads = torch.autograd.grad(no_adversarial, generator, allow_unused=True)
    d_loss = ((reference.discriminator(real) - 1) ** 2).mean() + (reference.discriminator(fake.detach()) ** 2).mean()
    d_grads = torch.autograd.grad(d_loss, critic)
    loader = DataLoader([batch], batch_size=None)
    grads = {"generator": g_grads, "plain": plain_grads, "critic": d_grads}
    assert_gan_step_isolated(model, reference, loader, grads, tmp_path)


def test_dark_channel_terms_on_a_hand_computed_clip():
    """Dark channel = per-pixel minimum over colour; dark_temporal = 0.1 * L1(D_t, detached D_{t-1}),
    dark_sparsity = 0.01 * mean |D_t| over frames t >= 1."""
    frames = torch.tensor([[0.2, 0.5, 0.9], [0.6, 0.3, 0.4], [0.7, 0.8, 0.5]])  # T=3 one-pixel RGB frames
    background = frames.view(1, 3, 3, 1, 1).clone().requires_grad_(True)
    assert dark_channel(background).flatten().tolist() == pytest.approx([0.2, 0.3, 0.5])
    priors = RMFD(**TINY).refinement_priors(background)
    # |0.3 - 0.2| and |0.5 - 0.3|, mean 0.15; |D_1|, |D_2| mean 0.4
    assert priors["dark_temporal"].item() == pytest.approx(0.1 * 0.15)
    assert priors["dark_sparsity"].item() == pytest.approx(0.01 * 0.4)
    (grad,) = torch.autograd.grad(priors["dark_temporal"], background)
    # the previous frame is the fixed target: only D_1 and D_2 (channels 1 and 2) get gradient, 0.1 / 2 each
    expected = torch.zeros(3, 3)
    expected[1, 1] = expected[2, 2] = 0.05
    torch.testing.assert_close(grad.view(3, 3), expected)


def test_ssim_loss_is_one_minus_ssim_on_hand_computed_images():
    """1 - SSIM: 0 for equal clips, and for flat images a, b the luminance term alone,
    1 - (2ab + C1) / (a^2 + b^2 + C1) with C1 = 0.01^2, averaged over every frame of the clip."""
    x = torch.rand(1, 2, 3, 16, 16)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    a = torch.full((1, 2, 3, 16, 16), 0.2)
    b = torch.full((1, 2, 3, 16, 16), 0.6)
    b[:, 1] = 0.2  # second frame equal: its SSIM is 1
    c1 = 0.01**2
    first = 1 - (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim_loss(a, b).item() == pytest.approx(first / 2, rel=1e-4)


def test_batches_without_physical_layers_train_on_the_background_terms_and_say_so():
    full = accumulation_batch()
    batch = video_batch(rain=full.rain, clean=full.clean)
    model = RMFD(**TINY)
    with pytest.warns(UserWarning, match="no haze, transmission, atmosphere"):
        losses = model.reconstruction_losses(model.network.forward_all(batch.rain), batch)
    assert set(losses) == {"inversion", "background"}


def test_pixel_weight_adds_an_l1_term_that_sees_a_darkened_background():
    """A background 3 grey levels too dark: SSIM barely sees it, ``pixel_weight`` x L1 charges the whole offset;
    with the paper's 0 there is no such term."""
    full = accumulation_batch()
    batch = video_batch(rain=full.rain, clean=full.clean)
    darker = (batch.clean - 3 / 255).clamp_min(0)
    layers = {key: torch.zeros_like(batch.clean) for key in ("inversion", "haze", "transmission", "atmosphere")}
    out = RMFDOutput(background=darker, **layers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paper = RMFD(**TINY).reconstruction_losses(out, batch)
        weighted = RMFD(**TINY, pixel_weight=2.0).reconstruction_losses(out, batch)
    assert "pixel" not in paper
    offset = (batch.clean - darker).mean().item()
    assert weighted["pixel"].item() == pytest.approx(2.0 * offset, rel=1e-5)
    assert weighted["background"].item() < 0.1 * weighted["pixel"].item() / 2.0  # both at weight 1: SSIM sees < 1/10


def test_overfitting_one_clip_halves_the_loss():
    torch.manual_seed(0)
    batch = accumulation_batch(clips=1, frames=3, size=16)
    model = RMFD(nf=8, blocks=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        loss = sum(model.reconstruction_losses(model.network.forward_all(batch.rain), batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.5 * losses[0], losses[::5]


@pytest.mark.parametrize(
    "name,stage,data",
    [
        ("rmfd_stage1", 1, SyntheticRainDataModule),
        ("rmfd", 2, SyntheticRainDataModule),
        ("rmfd_rainsynall100", 1, RainSynAll100DataModule),
    ],
)
def test_paper_configs_build_the_paper_model_and_schedule(name, stage, data):
    cli = DerainCLI(
        DerainModule,
        DerainDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        auto_configure_optimizers=False,
        args=["--config", str(CONFIGS / f"{name}.yaml"), "--trainer.logger=false"],
    )
    model = cli.model
    assert isinstance(model, RMFD) and model.stage == stage and isinstance(cli.datamodule, data)
    assert cli.datamodule.num_frames == 7 and cli.datamodule.crop_size == 128
    assert sum(p.numel() for p in model.network.parameters()) > 20e6  # nf 32, 5 blocks: three full nets
    optimizers = model.configure_optimizers()
    if stage == 1:
        optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]
    else:
        (optimizer, d_optimizer), (scheduler,) = optimizers
        assert model.loss_weights["adversarial"] == 0.001 and d_optimizer.param_groups[0]["lr"] == 1e-4
        assert not any(p.requires_grad for p in model.network.haze_net.parameters())
    assert optimizer.param_groups[0]["lr"] == 1e-4
    for _ in range(20):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)  # halved after 20 epochs


def test_stage2_without_a_stage1_checkpoint_warns_when_fitting(tmp_path):
    """configs/rmfd.yaml (stage 2) leaves init_checkpoint null: refining random weights must not be silent."""
    batch = accumulation_batch(clips=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage2, stage1, opted_in = RMFD(**TINY, stage=2), RMFD(**TINY), RMFD(**TINY, stage=2, weights="random")
    assert stage2_warnings(stage2, batch, tmp_path)
    assert not stage2_warnings(stage1, batch, tmp_path)
    assert not stage2_warnings(opted_in, batch, tmp_path)
