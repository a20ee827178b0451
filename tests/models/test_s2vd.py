"""S2VD: the released file, the authors' computation and their test protocol, and the supervised fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from derain_zoo.cli import main
from derain_zoo.data import video_io
from derain_zoo.models.s2vd import S2VD
from derain_zoo.models.s2vd.convert import RELEASE_SHA256, convert, read_release
from derain_zoo.models.s2vd.module import total_variation_3d
from derain_zoo.weights import find_shipped, read_state_dict

REPO = Path(__file__).resolve().parents[2]
RELEASE = REPO / "data" / "weights" / "s2vd" / "derainer_rho05.pt"
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


# ------------------------------------------------------------------ the authors' computation, written out
def authors_conv(video: Tensor, state: dict[str, Tensor], key: str) -> Tensor:
    """Their 3D conv: time padded by replication, space by zeros, kernel 3."""
    padded = F.pad(video, (0, 0, 0, 0, 1, 1), mode="replicate")
    return F.conv3d(padded, state[f"{key}.conv.weight"], state.get(f"{key}.conv.bias"), padding=(0, 1, 1))


def authors_bn(video: Tensor, state: dict[str, Tensor], key: str) -> Tensor:
    return F.batch_norm(
        video, state[f"{key}.running_mean"], state[f"{key}.running_var"], state[f"{key}.weight"], state[f"{key}.bias"]
    )


def authors_forward(images: Tensor, state: dict[str, Tensor]) -> Tensor:
    """The released DerainNet on a B,C,T,H,W volume, from the raw state dict (8 blocks, fold 2)."""
    b, c, t, h, w = images.shape
    x = images.reshape(b, c, t, h // 2, 2, w // 2, 2).permute(0, 1, 4, 6, 2, 3, 5).reshape(b, 4 * c, t, h // 2, -1)
    x = authors_conv(F.relu(authors_conv(x, state, "head.0")), state, "head.2")
    for k in range(8):
        inner = authors_conv(F.relu(authors_bn(x, state, f"body.{k}.res.0")), state, f"body.{k}.res.2")
        x = x + authors_conv(F.relu(authors_bn(inner, state, f"body.{k}.res.3")), state, f"body.{k}.res.5")
    x = authors_conv(F.relu(authors_bn(x, state, "body.8")), state, "body.10")
    x = x.reshape(b, c, 2, 2, t, h // 2, w // 2).permute(0, 1, 4, 5, 2, 6, 3).reshape(b, c, t, h, w)
    out = F.relu(authors_conv(images - x, state, "tail.0"))
    return authors_conv(F.relu(authors_conv(out, state, "tail.2")), state, "tail.4")


def authors_test(rain: Tensor, state: dict[str, Tensor], truncate: int = 24) -> Tensor:
    """``test_NTURain_synthetic.py``'s loop: chunks of 24 read with 2 frames on each side, clamped."""
    frames = rain.shape[2]
    starts = list(range(0, frames, truncate))
    ends = [*starts[1:], frames]
    out = torch.zeros_like(rain)
    for start, end in zip(starts, ends, strict=True):
        read = (max(0, start - 2), min(frames, end + 2))
        restored = authors_forward(rain[:, :, read[0] : read[1]], state)
        out[:, :, start:end] = restored[:, :, start - read[0] : start - read[0] + end - start].clamp(0, 1)
    return out


@pytest.fixture(scope="module")
def release() -> dict[str, Tensor]:
    return read_release(RELEASE)[0]


# ------------------------------------------------------------------ the file
def test_the_shipped_file_is_the_release_tensor_for_tensor_and_loads_strictly(release, tmp_path):
    state, sha256 = read_release(RELEASE)
    assert sha256 == RELEASE_SHA256
    shipped, entry, _ = read_state_dict("s2vd", "official")
    assert entry.manifest["source"]["sha256"] == RELEASE_SHA256 and entry.manifest["source"]["licence"] == "MIT"
    assert set(shipped) == {f"network.{key}" for key in release}
    for key, tensor in release.items():
        assert shipped[f"network.{key}"].dtype == tensor.dtype and torch.equal(shipped[f"network.{key}"], tensor), key
    model = S2VD(weights="official")  # strict: any missing or unexpected key fails here
    assert torch.equal(model.network.body[10].conv.weight, release["body.10.conv.weight"])
    # converting again gives the same bytes' tensors: the recipe of the shipped file reruns
    again, _, _ = read_state_dict("s2vd", str(convert(RELEASE, tmp_path)))
    assert all(torch.equal(again[key], shipped[key]) for key in shipped)


def test_the_licence_ships_beside_the_weights():
    licence = REPO / find_shipped("s2vd", "official").manifest["source"]["licence_file"]
    assert "MIT License" in licence.read_text() and "Zongsheng Yue" in licence.read_text()


def test_a_file_that_is_not_the_release_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "other.pt"
    torch.save({"head.0.conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match=r"does not fit S2VD.*head.0.conv.weight is \[1\]"):
        convert(bad, tmp_path / "out")


def test_the_network_computes_what_the_authors_network_computes(release):
    model = S2VD(weights="official").eval()
    rain = torch.rand(1, 3, 6, 24, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(rain.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(ours, authors_forward(rain, release), atol=1e-5, rtol=0)


def test_the_protocol_is_the_authors_chunks_with_context(release):
    """50 frames: [0,24) from [0,26), [24,48) from [22,50), [48,50) from [46,50), as their loop cuts them;
    a user's chunk_frames changes nothing."""
    rain = torch.rand(1, 50, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    expected = authors_test(rain.transpose(1, 2), release).transpose(1, 2)
    for chunk in (5, 24, 64):
        model = S2VD(weights="official", chunk_frames=chunk).eval()
        torch.testing.assert_close(model.restore_sequence(rain), expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ through the command line, on real frames
@pytest.fixture(scope="module")
def a1_window(tmp_path_factory, nturain_sample) -> Path:
    """a1 frames 1-6, a 96 x 128 window, as a folder dataset of lossless PNGs."""
    root = tmp_path_factory.mktemp("a1_window")
    for kind, folder in (("rain", "a1_Rain"), ("gt", "a1_GT")):
        paths = video_io.list_frames(nturain_sample / "Dataset_Testing_Synthetic" / folder)[:6]
        crops = [np.ascontiguousarray(video_io.read_image(path)[200:296, 256:384]) for path in paths]
        video_io.write_frames(root / "test" / kind / "a1", crops)
    return root


def test_official_weights_through_derain_zoo_test_score_what_the_authors_code_scores(a1_window, release, tmp_path):
    from derain_zoo.metrics import calculate_psnr

    main(["test", "--model=s2vd", "--model.weights=official", "--data=folder", f"--data.root={a1_window}",
          "--data.num_workers=0", f"--trainer.default_root_dir={tmp_path}", *QUIET])  # fmt: skip
    (metrics,) = tmp_path.glob("**/metrics.json")
    rain = torch.stack(
        [torch.from_numpy(video_io.read_image(p)) for p in video_io.list_frames(a1_window / "test/rain/a1")]
    )
    clean = torch.stack(
        [torch.from_numpy(video_io.read_image(p)) for p in video_io.list_frames(a1_window / "test/gt/a1")]
    )
    volume = rain.permute(3, 0, 1, 2)[None].float() / 255
    with torch.no_grad():
        theirs = authors_test(volume, release)[0].permute(1, 0, 2, 3)
    expected = float(calculate_psnr(theirs, clean.permute(0, 3, 1, 2).float() / 255, test_y_channel=True).mean())
    scored = json.loads(metrics.read_text())["mean"]["psnr_y"]
    assert scored == pytest.approx(expected, abs=0.02) and scored > 30


# ------------------------------------------------------------------ training
def test_the_supervised_loss_falls_on_a_fixed_batch():
    """The labelled half of the authors' M-step (scaled MSE + TV) trains the derainer."""
    torch.manual_seed(0)
    model = S2VD(n_features=8, n_resblocks=1)
    clean = torch.rand(2, 4, 3, 16, 16)
    rain = (clean + 0.3 * (torch.rand_like(clean) > 0.9)).clamp(0, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = model.supervised_loss(model(rain), clean)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_total_variation_weights_time_twice_and_is_zero_on_a_flat_clip():
    flat = torch.full((1, 3, 3, 4, 4), 0.5)
    assert float(total_variation_3d(flat, (1.0, 1.0, 2.0))) == 0
    flicker = flat.clone()
    flicker[:, 1] = 0.0
    # 2 frame steps x 3 channels x 16 pixels x 0.5 x weight 2, over B*C*T = 9
    assert float(total_variation_3d(flicker, (1.0, 1.0, 2.0))) == pytest.approx(2 * 3 * 16 * 0.5 * 2 / 9)
