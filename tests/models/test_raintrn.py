"""RainTRN: shapes, the recurrence, spectral norm where (and only where) the paper puts it,
patch attention without positional bias, GAN updates with manual optimisation, overfitting."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader

from derain_zoo.data.batch import VideoBatch
from derain_zoo.models.components.discriminator3d import SpectralNormDiscriminator3d
from derain_zoo.models.raintrn import RainTRN, RainTRNNetwork
from derain_zoo.models.raintrn.network import MultiHeadPatchAttention
from tests.models.helpers import assert_gan_step_isolated, video_batch

TINY_NET = {"channels": 16, "base_channels": 8, "num_res_blocks": 1, "num_transformer_blocks": 1, "patch_grids": (2, 4)}
TINY = dict(TINY_NET, disc_channels=4, disc_layers=3)


def rain_clip(seed: int = 0, clips: int = 2, frames: int = 3, size: int = 16) -> VideoBatch:
    """Smooth clean clips plus bright sparse streaks: a learnable y = x + r pair."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(clips * frames, 3, 4, 4, generator=generator)
    clean = F.interpolate(coarse, size=(size, size), mode="bilinear").view(clips, frames, 3, size, size)
    streak = 0.5 * (torch.rand(clips, frames, 1, size, size, generator=generator) < 0.08).float()
    return video_batch(rain=(clean + streak).clamp(0, 1), clean=clean.contiguous())


def fit(model: RainTRN, batches: list[VideoBatch]) -> None:
    """Run the module's own manual-optimisation training_step through a bare Trainer."""
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dataloader worker hints
        trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))


@pytest.mark.parametrize("frames,size", [(1, (16, 16)), (2, (17, 23)), (5, (9, 13)), (3, (3, 5))])
def test_every_frame_is_restored_for_any_clip_length_and_odd_size(frames, size):
    torch.manual_seed(0)
    model = RainTRN(**TINY).eval()
    rain = torch.rand(2, frames, 3, *size)
    with torch.no_grad():
        output = model(rain)
    assert output.shape == rain.shape
    assert torch.isfinite(output).all()


def test_recurrence_starts_from_zeros_and_feeds_back_the_previous_output():
    torch.manual_seed(0)
    net = RainTRNNetwork(**TINY_NET).eval()
    rain = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        output = net(rain)
        first = net.step(rain[:, 0], torch.zeros_like(rain[:, 0]))
        second = net.step(rain[:, 1], output[:, 0])
        second_from_other_past = net.step(rain[:, 1], output[:, 0] + 0.5 * torch.rand_like(output[:, 0]))
        first_from_nonzero = net.step(rain[:, 0], torch.ones_like(rain[:, 0]))
    torch.testing.assert_close(output[:, 0], first)
    torch.testing.assert_close(output[:, 1], second)
    assert (second_from_other_past - output[:, 1]).abs().max() > 1e-4
    assert (first_from_nonzero - output[:, 0]).abs().max() > 1e-4


def test_changing_a_rain_frame_leaves_earlier_outputs_untouched():
    torch.manual_seed(0)
    net = RainTRNNetwork(**TINY_NET).eval()
    rain = torch.rand(1, 4, 3, 16, 16)
    edited = rain.clone()
    edited[:, 2] = torch.rand_like(edited[:, 2])
    with torch.no_grad():
        before, after = net(rain), net(edited)
    torch.testing.assert_close(before[:, :2], after[:, :2])  # causal: the past never sees the future
    assert (before[:, 2] - after[:, 2]).abs().max() > 1e-4


def test_spectral_norm_on_every_discriminator_conv_and_no_generator_layer():
    torch.manual_seed(0)
    model = RainTRN(**TINY)
    convs = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == TINY["disc_layers"]
    assert all(parametrize.is_parametrized(conv, "weight") for conv in convs)
    assert all(type(conv.parametrizations.weight[0]).__name__ == "_SpectralNorm" for conv in convs)

    clip = torch.rand(1, 3, 3, 16, 16)
    model.discriminator.train()
    for _ in range(30):  # each training-mode forward runs one power iteration per conv
        model.discriminator(clip)
    model.discriminator.eval()
    with torch.no_grad():
        sigmas = [torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item() for conv in convs]
    assert all(abs(sigma - 1) < 0.05 for sigma in sigmas), sigmas

    generator_layers = list(model.network.modules())
    assert not any(parametrize.is_parametrized(layer) for layer in generator_layers)
    assert not any(hasattr(layer, "weight_orig") for layer in generator_layers)  # old-style spectral_norm


def test_discriminator_scores_every_frame_of_a_clip():
    disc = SpectralNormDiscriminator3d(base_channels=4, num_layers=3)
    scores = disc(torch.rand(2, 5, 3, 24, 20))
    assert scores.shape[:2] == (2, 5)
    assert scores.shape[-2:] == (3, 3)


def _shuffle_blocks(x: torch.Tensor, order: list[int], blocks: int = 2) -> torch.Tensor:
    """Move the blocks x blocks equal tiles of a B,C,H,W map to new positions."""
    b, c, h, w = x.shape
    th, tw = h // blocks, w // blocks
    tiles = x.reshape(b, c, blocks, th, blocks, tw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, blocks * blocks, th, tw)
    tiles = tiles[:, :, order]
    return tiles.reshape(b, c, blocks, blocks, th, tw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


def test_patch_attention_has_no_positional_bias_permuting_patches_permutes_the_output():
    torch.manual_seed(0)
    attention = MultiHeadPatchAttention(8, patch_grids=(2, 4)).eval()
    x = torch.rand(1, 8, 16, 16)
    order = [3, 0, 2, 1]  # whole 8x8 tiles move, so the 4x4 patches of the finer head move with them
    with torch.no_grad():
        shuffled_then_attended = attention.attend(_shuffle_blocks(x, order))
        attended_then_shuffled = _shuffle_blocks(attention.attend(x), order)
    torch.testing.assert_close(shuffled_then_attended, attended_then_shuffled, rtol=1e-4, atol=1e-5)
    assert (shuffled_then_attended - attention.attend(x)).abs().max() > 1e-3  # the shuffle did something


def test_each_head_is_a_channel_group_with_its_own_patch_size():
    """STTN's heads: channel group i attends over a patch_grids[i] x patch_grids[i] grid. With query
    and key at zero the attention is uniform, so a head's output at a pixel is the mean of the value
    at the same offset in every patch: poking one pixel changes group i exactly at the pixels of the
    same offset modulo its patch size, 16 / grid (8, 4 and 2 here)."""
    torch.manual_seed(0)
    attention = MultiHeadPatchAttention(12, patch_grids=(2, 4, 8)).eval()
    with torch.no_grad():
        attention.query.weight.zero_()
        attention.query.bias.zero_()
        attention.key.weight.zero_()
        x = torch.rand(1, 12, 16, 16)
        poked = x.clone()
        poked[..., 3, 5] += 1.0
        change = (attention.attend(poked) - attention.attend(x)).abs().amax(dim=0)
    rows, cols = torch.arange(16)[:, None], torch.arange(16)[None, :]
    for head, grid in enumerate((2, 4, 8)):
        size = 16 // grid
        expected = (rows % size == 3 % size) & (cols % size == 5 % size)
        changed = change[4 * head : 4 * head + 4].amax(dim=0) > 1e-6
        assert torch.equal(changed, expected), f"head {head} does not use {size}x{size} patches"


def test_patch_attention_mixes_information_across_the_whole_map():
    torch.manual_seed(0)
    attention = MultiHeadPatchAttention(8, patch_grids=(2, 4)).eval()
    x = torch.rand(1, 8, 16, 16)
    poked = x.clone()
    poked[..., :4, :4] += 1.0  # one corner patch
    with torch.no_grad():
        change = (attention.attend(poked) - attention.attend(x)).abs()
    assert change[..., 12:, 12:].max() > 1e-5  # the opposite corner hears about it


def test_one_training_step_updates_generator_and_discriminator():
    torch.manual_seed(0)
    model = RainTRN(**TINY)
    before = copy.deepcopy(model)
    fit(model, [rain_clip()])
    for name, network in (("network", model.network), ("discriminator", model.discriminator)):
        old = dict(getattr(before, name).named_parameters())
        # every weight moves; the critic's output bias may legitimately not (hinge gradients on it
        # cancel while all real and fake scores sit inside the margin, as they do at initialisation)
        weights = [key for key, value in network.named_parameters() if value.ndim > 1]
        assert len(weights) > 1
        unchanged = [key for key in weights if torch.equal(dict(network.named_parameters())[key], old[key])]
        assert not unchanged, f"{name} parameters not updated: {unchanged}"


def test_generator_and_critic_gradients_are_isolated_both_ways():
    """The generator step applies exactly d(reconstruction + temporal + adversarial)/d(generator), the
    adversarial part included, and leaves the critic where it was; the critic step applies exactly
    d(critic loss on clean vs detached restored)/d(critic) and leaves the generator where it was.
    Both references are computed by hand on a copy of the initial model (spectral norm's power
    iteration advanced by the same critic calls in the same order)."""
    torch.manual_seed(0)
    model = RainTRN(**TINY, adversarial_weight=1.0, gradient_clip_val=None)
    reference = copy.deepcopy(model).train()
    batch = rain_clip()
    generator = list(reference.network.parameters())
    critic = list(reference.discriminator.parameters())
    restored, clean = reference(batch.rain), batch.clean
    # L1 + 0.1 temporal L1 + 1.0 hinge generator term (-mean critic score of the restored clip)
    no_adversarial = F.l1_loss(restored, clean) + 0.1 * F.l1_loss(restored.diff(dim=1), clean.diff(dim=1))
    g_loss = no_adversarial - reference.discriminator(restored).mean()
    g_grads = torch.autograd.grad(g_loss, generator, retain_graph=True, allow_unused=True)
    plain_grads = torch.autograd.grad(no_adversarial, generator, allow_unused=True)
    real_scores, fake_scores = reference.discriminator(clean), reference.discriminator(restored.detach())
    d_loss = F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()  # hinge
    d_grads = torch.autograd.grad(d_loss, critic)
    grads = {"generator": g_grads, "plain": plain_grads, "critic": d_grads}
    assert_gan_step_isolated(model, reference, DataLoader([batch], batch_size=None), grads)


def test_nonfinite_skip_skips_the_critic_step_with_the_generator_step():
    """nonfinite=skip: a step whose generator loss is NaN updates neither network."""
    torch.manual_seed(0)
    model = RainTRN(**TINY, nonfinite="skip", temporal_weight=float("nan"))
    before = copy.deepcopy(model)
    fit(model, [rain_clip()])
    for key, value in model.named_parameters():
        torch.testing.assert_close(value, dict(before.named_parameters())[key], msg=key)


def test_warm_up_trains_only_the_generator_on_reconstruction():
    torch.manual_seed(0)
    model = RainTRN(**TINY, warmup_epochs=1)
    before = copy.deepcopy(model)
    fit(model, [rain_clip()])
    for key, value in model.discriminator.named_parameters():
        torch.testing.assert_close(value, dict(before.discriminator.named_parameters())[key])
    pairs = zip(model.network.parameters(), before.network.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)


def test_optimizer_drives_the_generator_and_d_optimizer_the_critic():
    """The GAN models' one naming; the name before it, g_optimizer, still reaches the generator."""
    for name in ("optimizer", "g_optimizer"):
        model = RainTRN(**TINY, **{name: lambda params: torch.optim.SGD(params, lr=0.1)})
        g_opt, d_opt = model.configure_optimizers()
        assert isinstance(g_opt, torch.optim.SGD) and isinstance(d_opt, torch.optim.Adam)
        assert {id(p) for group in g_opt.param_groups for p in group["params"]} == {
            id(p) for p in model.network.parameters()
        }


@pytest.mark.parametrize("reconstruction", ["l1", pytest.param("ssim_mse", marks=pytest.mark.slow)])
def test_overfitting_one_clip_halves_the_reconstruction_loss(reconstruction):
    torch.manual_seed(0)
    model = RainTRN(
        **TINY,
        reconstruction=reconstruction,
        optimizer=lambda params: torch.optim.Adam(params, lr=3e-3, betas=(0.0, 0.99)),
    )
    clip = rain_clip(clips=1, frames=2)

    def reconstruction_loss() -> float:
        with torch.no_grad():
            return model.reconstruction_loss(model(clip.rain), clip.clean).item()

    start = reconstruction_loss()
    fit(model, [clip] * 40)
    assert reconstruction_loss() < 0.5 * start


def test_paper_config_builds_the_paper_size_generator_and_critic():
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "raintrn.yaml").read_text())
    init_args = {k: v for k, v in config["model"]["init_args"].items() if not k.endswith("optimizer")}
    model = RainTRN(**init_args)
    convs = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [conv.out_channels for conv in convs] == [64, 128, 256, 256, 256, 256]
    assert len(model.network.sttn) == 8
    assert all(block.attention.query.out_channels == 256 for block in model.network.sttn)


def test_scheduler_steps_both_optimisers_once_per_epoch():
    torch.manual_seed(0)
    model = RainTRN(**TINY, lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5))
    fit(model, [rain_clip(clips=1, frames=2)] * 2)
    assert [opt.param_groups[0]["lr"] for opt in model.trainer.optimizers] == [5e-5, 5e-5]
