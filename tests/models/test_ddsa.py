"""DDSA: the behaviours a user relies on (shapes, the top-k sparse attention, linear cost, training)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.models.ddsa import DDSA, ConstantThenCosineLR, DDSANetwork
from derain_zoo.models.ddsa.network import DualSelfAttention, top_k_count, top_k_mask
from tests.models.helpers import video_batch

os.environ.setdefault("WANDB_MODE", "disabled")

ROOT = Path(__file__).resolve().parents[2]
TINY = {"dim": 6, "num_blocks": [1, 1, 1], "heads": [1, 1, 2]}


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from seed 0 (tests/conftest.py already runs torch on one thread)."""
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [(17, 23), (5, 7), (16, 32)])
@pytest.mark.parametrize("frames", [1, 3])
def test_forward_restores_every_frame_at_any_size(size: tuple[int, int], frames: int) -> None:
    model = DDSA(**TINY).eval()
    rain = torch.rand(2, frames, 3, *size)
    with torch.no_grad():
        out = model(rain)
    assert out.shape == rain.shape
    assert torch.isfinite(out).all()


def test_frames_are_restored_independently() -> None:
    """A single-image model: a frame's output must not depend on its neighbours, so restoring the
    frames one pass at a time (the CPU speed default) equals restoring them all in one pass."""
    model = DDSA(**TINY, inference_frames=None).eval()
    rain = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        whole = model(rain)
        alone = model(rain[:, 1:2])
        model.inference_frames = 1
        frame_by_frame = model(rain)
    torch.testing.assert_close(whole[:, 1:2], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(frame_by_frame, whole, rtol=1e-5, atol=1e-5)


def test_inference_frames_must_be_positive() -> None:
    with pytest.raises(ValueError, match="inference_frames"):
        DDSA(**TINY, inference_frames=0)


def test_odd_width_is_refused_with_the_reason() -> None:
    """An odd width used to fail deep inside a layer norm at the first batch, not at construction."""
    with pytest.raises(ValueError, match="dim must be even"):
        DDSANetwork(dim=11)


def test_padding_is_cropped_back_so_output_is_input_plus_residual_at_same_pixels() -> None:
    """A zero output conv leaves exactly the input: the padding must not shift or leak pixels."""
    net = DDSANetwork(**TINY).eval()
    torch.nn.init.zeros_(net.output.weight)
    rain = torch.rand(1, 3, 13, 21)
    with torch.no_grad():
        torch.testing.assert_close(net(rain), rain)


def test_spatial_multiple_is_the_unet_multiple() -> None:
    assert DDSA.spatial_multiple == 16
    assert DDSA(**TINY).spatial_multiple == 4


def test_top_k_mask_keeps_exactly_k_entries_per_row() -> None:
    scores = torch.randn(2, 3, 10, 10)
    scores[..., 4] = scores[..., 7]  # ties inside the rows
    mask = top_k_mask(scores, 7)
    assert (mask.sum(-1) == 7).all()
    kept_min = scores.masked_fill(~mask, float("inf")).amin(-1)
    dropped_max = scores.masked_fill(mask, float("-inf")).amax(-1)
    assert (kept_min >= dropped_max).all()


def test_top_k_mask_breaks_ties_towards_lower_index() -> None:
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    mask = top_k_mask(scores, 2)
    assert mask.tolist() == [[False, True, True, False, False]]
    flat = torch.zeros(1, 6)
    assert top_k_mask(flat, 4).tolist() == [[True, True, True, True, False, False]]


def test_top_k_count_is_ratio_of_row_length() -> None:
    assert top_k_count(10, 0.7) == 7
    assert top_k_count(96, 0.7) == 67
    assert top_k_count(3, 0.1) == 1
    assert top_k_count(48, 1.0) == 48


def test_sparse_attention_masks_out_all_but_top_k() -> None:
    attention = DualSelfAttention(12, 2, topk_ratio=0.5, mode="sparse")
    scores = torch.randn(1, 2, 6, 6)
    weights = attention.attention_map(scores)
    assert ((weights > 0).sum(-1) == 3).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, 6))


def test_full_row_sparse_branch_equals_dense_branch() -> None:
    dense = DualSelfAttention(12, 2, mode="dense")
    sparse = DualSelfAttention(12, 2, topk_ratio=1.0, mode="sparse")
    dual = DualSelfAttention(12, 2, topk_ratio=1.0, mode="dual")
    sparse.load_state_dict(dense.state_dict())
    dual.load_state_dict(dense.state_dict(), strict=False)
    x = torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), dense(x))
        # equal weights 0.5 + 0.5: the dual map is the dense map itself
        torch.testing.assert_close(dual(x), dense(x))


def test_dual_mode_with_k_below_d_mixes_dense_with_a_truly_sparse_map() -> None:
    """Eq. (6) with k = 3 of d = 6: the dual map is w_d softmax(P) + w_s softmax(M(P, k)), the sparse
    softmax built here by hand over the 3 largest scores of each row; and the whole module's output is
    the same mix of the dense-only and sparse-only modules' outputs (the projection is linear)."""
    attention = DualSelfAttention(12, 2, topk_ratio=0.5, mode="dual")
    assert attention.topk == 3
    scores = torch.randn(2, 2, 6, 6)
    threshold = scores.sort(dim=-1, descending=True).values[..., 2:3]
    exp = scores.exp()
    sparse = torch.where(scores >= threshold, exp, torch.zeros_like(exp))
    sparse = sparse / sparse.sum(-1, keepdim=True)
    dense = exp / exp.sum(-1, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(attention.attention_map(scores), 0.5 * dense + 0.5 * sparse)

    dense_module = DualSelfAttention(12, 2, mode="dense")
    sparse_module = DualSelfAttention(12, 2, topk_ratio=0.5, mode="sparse")
    attention.load_state_dict(dense_module.state_dict(), strict=False)
    sparse_module.load_state_dict(dense_module.state_dict())
    x = torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        dual_out, dense_out, sparse_out = attention(x), dense_module(x), sparse_module(x)
    torch.testing.assert_close(dual_out, 0.5 * dense_out + 0.5 * sparse_out)
    assert (dual_out - dense_out).abs().max() > 1e-3, "the sparse branch of the dual map is dense"


def test_dual_mix_is_convex_whatever_the_learnt_weights() -> None:
    """Eq. (6)'s weighted summation as a convex mix: shares softmax(dense_weight, sparse_weight), so
    with the raw weights at -3 and 2 the map is e^-3/(e^-3+e^2) dense + e^2/(e^-3+e^2) sparse, every
    entry >= 0 and every row sums to 1 (raw weights would give rows summing to -1)."""
    attention = DualSelfAttention(12, 2, topk_ratio=0.5)
    scores = torch.randn(2, 2, 6, 6)
    with torch.no_grad():
        attention.dense_weight.fill_(-3.0)
        attention.sparse_weight.fill_(2.0)
        mixed = attention.attention_map(scores)
    dense_share = math.exp(-3) / (math.exp(-3) + math.exp(2))
    attention.mode = "dense"
    dense = attention.attention_map(scores)
    attention.mode = "sparse"
    sparse = attention.attention_map(scores)
    torch.testing.assert_close(mixed, dense_share * dense + (1 - dense_share) * sparse)
    assert (mixed >= 0).all()
    torch.testing.assert_close(mixed.sum(-1), torch.ones(2, 2, 6))


def test_weight_decay_applies_to_convolution_kernels_only() -> None:
    """AdamW (the default, or a config's class_path with weight_decay) decays the conv kernels; the
    mixing weights, temperatures and LayerNorm parameters are left alone: one step on zero gradients
    shrinks every kernel by (1 - lr * wd) and moves nothing else."""
    for factory in (None, lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5)):
        model = DDSA(**TINY) if factory is None else DDSA(**TINY, optimizer=factory)
        optimizer = model.configure_optimizers()
        grouped = [p for group in optimizer.param_groups for p in group["params"]]
        assert len(grouped) == len(list(model.parameters())) == len({id(p) for p in grouped})
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
        lr, decay = (1e-4, 1e-4) if factory is None else (1e-2, 0.5)
        names = {"kernel": 0, "other": 0}
        for name, p in model.named_parameters():
            if p.ndim == 4:
                names["kernel"] += 1
                torch.testing.assert_close(p.detach(), before[name] * (1 - lr * decay), msg=name)
            else:
                names["other"] += 1
                assert torch.equal(p.detach(), before[name]), f"{name} was decayed"
        assert names["kernel"] and names["other"]
        assert any("dense_weight" in n for n, p in model.named_parameters() if p.ndim != 4)


def test_dual_weights_learn() -> None:
    attention = DualSelfAttention(12, 2)
    attention(torch.randn(1, 12, 8, 8)).square().mean().backward()
    assert attention.dense_weight.grad is not None and attention.sparse_weight.grad is not None


def _flops(net: torch.nn.Module, height: int, width: int) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.rand(1, 3, height, width))
    return counter.get_total_flops()


def test_flops_double_when_pixels_double() -> None:
    """Channel ("transposed") attention: cost is linear in the pixel count, not quadratic."""
    net = DDSANetwork(dim=8, num_blocks=[1, 1, 2], heads=[1, 2, 4]).eval()
    small, double, quadruple = _flops(net, 32, 32), _flops(net, 32, 64), _flops(net, 64, 64)
    assert double / small == pytest.approx(2.0, rel=0.05)
    assert quadruple / double == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    ("attention", "ffn", "spatial_attention"),
    [("dense", "sefn", True), ("sparse", "sefn", True), ("dual", "sefn", False), ("dual", "gdfn", True)],
)
def test_ablation_variants_build_and_train(attention: str, ffn: str, spatial_attention: bool) -> None:
    model = DDSA(**TINY, attention=attention, ffn=ffn, spatial_attention=spatial_attention)
    batch = video_batch(rain=torch.rand(1, 2, 3, 12, 12), clean=torch.rand(1, 2, 3, 12, 12))
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)


def test_overfitting_one_image_halves_the_l1_loss() -> None:
    model = DDSA(dim=8, num_blocks=[1, 1], heads=[1, 1])
    clean = torch.rand(1, 1, 3, 24, 24)
    streaks = (torch.rand(1, 1, 1, 24, 24) > 0.85).float() * 0.6
    batch = video_batch(rain=(clean + streaks).clamp(0, 1), clean=clean)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(80):
        optimizer.zero_grad()
        loss = model.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    with torch.no_grad():
        final = torch.nn.functional.l1_loss(model(batch.rain), clean).item()
    assert final < 0.5 * first


def test_schedule_is_constant_then_cosine_to_eta_min() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = ConstantThenCosineLR(optimizer, constant_steps=4, total_steps=12, eta_min=1e-6)
    rates = []
    for _ in range(14):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == [1e-4] * 5
    assert rates[8] == pytest.approx(1e-6 + (1e-4 - 1e-6) / 2)
    assert rates[12] == pytest.approx(1e-6) and rates[13] == pytest.approx(1e-6)
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_scheduler_steps_every_iteration() -> None:
    model = DDSA(**TINY, lr_scheduler=lambda opt: ConstantThenCosineLR(opt, 2, 10))
    config = model.configure_optimizers()
    assert config["lr_scheduler"]["interval"] == "step"


def test_default_optimizer_is_the_papers_adamw() -> None:
    optimizer = DDSA(**TINY).configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == 1e-4


# Table 3: which attention branches and feed-forward each variant uses
TABLE3 = {
    "ddsa.yaml": ("dual", "sefn", True),
    "ddsa_ablation_a_dsa.yaml": ("dense", "sefn", True),
    "ddsa_ablation_b_ssa.yaml": ("sparse", "sefn", True),
    "ddsa_ablation_d_no_sa.yaml": ("dual", "sefn", False),
    "ddsa_ablation_e_gdfn.yaml": ("dual", "gdfn", True),
}


def _write_image_pairs(folder: Path, count: int, size: tuple[int, int]) -> None:
    """A Rain13K-style {input,target}/ folder of tiny PNG pairs."""
    import cv2

    for sub in ("input", "target"):
        (folder / sub).mkdir(parents=True)
    rng = torch.Generator().manual_seed(1)
    for i in range(count):
        clean = (torch.rand(*size, 3, generator=rng) * 200).to(torch.uint8).numpy()
        cv2.imwrite(str(folder / "target" / f"{i}.png"), clean)
        cv2.imwrite(str(folder / "input" / f"{i}.png"), clean + 40)


@pytest.mark.parametrize("name", sorted(TABLE3))
def test_paper_and_ablation_configs_match_table3(name: str) -> None:
    config = yaml.safe_load((ROOT / "configs" / name).read_text())
    args = config["model"]["init_args"]
    assert config["model"]["class_path"] == "derain_zoo.models.ddsa.DDSA"
    assert (args["attention"], args["ffn"], args["spatial_attention"]) == TABLE3[name]
    assert args["num_blocks"] == [2, 4, 6, 6, 8] and args["heads"] == [1, 1, 2, 4, 8]
    assert config["data"]["init_args"]["batch_size"] == 16 and config["data"]["init_args"]["crop_size"] == 128


@pytest.mark.parametrize("name", sorted(TABLE3))
def test_paper_and_ablation_configs_run_fast_dev_run_on_image_pairs(name: str, tmp_path: Path) -> None:
    """The real configs (image data module, AdamW + schedule) through the CLI, at tiny width."""
    from derain_zoo.cli import main

    _write_image_pairs(tmp_path / "rain13k" / "train", 4, (36, 40))
    _write_image_pairs(tmp_path / "rain13k" / "test", 1, (21, 27))
    main([
        "fit", "--config", str(ROOT / "configs" / name),
        f"--data.init_args.root={tmp_path / 'rain13k'}", "--data.init_args.crop_size=32",
        "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
        "--model.init_args.dim=6", "--model.init_args.num_blocks=[1, 1, 1]", "--model.init_args.heads=[1, 1, 2]",
        "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ])  # fmt: skip
