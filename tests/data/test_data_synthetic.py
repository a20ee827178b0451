"""The built-in synthetic module: the tiny settings other tests use, determinism, fresh epochs."""

from __future__ import annotations

import pytest
import torch

from derain_zoo.data import DerainDataModule, SyntheticRainDataModule
from derain_zoo.data.rain import compose
from derain_zoo.data.synthetic import PHOTOS, SyntheticRainClips, photo_path
from tests.test_cli import EXPECTED_DATA

TINY = {
    "num_frames": 5,
    "crop_size": 32,
    "frame_size": 48,
    "batch_size": 2,
    "num_workers": 0,
    "train_clips": 4,
    "val_clips": 2,
    "test_sequences": 1,
    "test_frames": 6,
}
LAYERS = {"streak": 3, "occlusion": 1, "transmission": 1, "atmosphere": 3, "haze": 3}


def batches(loader: torch.utils.data.DataLoader) -> list[dict]:
    """Every batch of a loader."""
    return list(loader)


def test_tiny_module_sets_up_and_iterates_with_the_batch_contract() -> None:
    """The batch contract; how fast it loads is benchmarks' business (benchmarks/data_throughput), not a test's."""
    dm = SyntheticRainDataModule(**TINY)
    dm.setup("fit")
    train, val = batches(dm.train_dataloader()), batches(dm.val_dataloader())
    dm.setup("test")
    test = batches(dm.test_dataloader())
    assert len(train) == 2 and len(val) == 1 and len(test) == 1
    for batch, shape in ((train[0], (2, 5)), (val[0], (2, 5))):
        assert batch["rain"].shape == (*shape, 3, 32, 32) and batch["clean"].dtype == torch.float32
        assert {k: batch[k].shape[2] for k in LAYERS} == LAYERS
        assert batch["index"].dtype == torch.int64 and len(batch["name"]) == 2
        assert 0 <= batch["rain"].min() and batch["rain"].max() <= 1
        rebuilt = compose(
            batch["clean"], batch["streak"], batch["occlusion"], batch["transmission"], batch["atmosphere"]
        )
        assert (rebuilt - batch["rain"]).abs().max() < 1e-5
    assert test[0]["rain"].shape == (1, 6, 3, 48, 48) and test[0]["index"].tolist() == [list(range(6))]


def test_every_alias_is_a_registered_subclass() -> None:
    from derain_zoo import data

    aliases = {
        cls.alias
        for cls in vars(data).values()
        if isinstance(cls, type) and issubclass(cls, DerainDataModule) and cls.alias
    }
    assert aliases == EXPECTED_DATA


def test_validation_and_test_clips_are_the_same_for_the_same_seed() -> None:
    a, b, c = SyntheticRainDataModule(**TINY), SyntheticRainDataModule(**TINY), SyntheticRainDataModule(**TINY, seed=1)
    for split in ("val", "test"):
        x, y, z = a.dataset(split)[0], b.dataset(split)[0], c.dataset(split)[0]
        assert torch.equal(x["rain"], y["rain"]) and torch.equal(x["clean"], y["clean"])
        assert not torch.equal(x["clean"], z["clean"])


def test_train_rain_skew_lightens_training_rain_and_leaves_what_is_scored_alone() -> None:
    """A recipe's skew towards light rain changes its training clips, never its validation or test split."""
    default, lighter = SyntheticRainDataModule(**TINY), SyntheticRainDataModule(**TINY, train_rain_skew=8.0)
    for split in ("val", "test"):
        assert torch.equal(default.dataset(split)[0]["rain"], lighter.dataset(split)[0]["rain"])

    def streak_energy(dm: SyntheticRainDataModule) -> float:
        train = dm.dataset("train")
        return sum(float(train[i]["streak"].abs().mean()) for i in range(len(train)))

    assert streak_energy(lighter) < 0.7 * streak_energy(default)


def test_training_clips_are_fresh_each_epoch_and_replayable() -> None:
    dm = SyntheticRainDataModule(**TINY)
    epoch0 = torch.cat([b["clean"] for b in batches(dm.train_dataloader())])
    dm.set_epoch(1)
    epoch1 = torch.cat([b["clean"] for b in batches(dm.train_dataloader())])
    resumed = SyntheticRainDataModule(**TINY)
    resumed.set_epoch(1)
    again = torch.cat([b["clean"] for b in batches(resumed.train_dataloader())])
    assert not torch.equal(epoch0, epoch1) and torch.equal(epoch1, again)


def test_lightning_epoch_reaches_the_sampler() -> None:
    dm = SyntheticRainDataModule(**TINY)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(3)  # what Lightning's fit loop does at every epoch start
    assert {epoch for epoch, _ in loader.sampler} == {3}


def test_every_photograph_is_bundled_with_scikit_image() -> None:
    for name in sum(PHOTOS.values(), ()):
        assert photo_path(name).is_file(), name


def test_train_val_and_test_use_different_photographs() -> None:
    assert not set(PHOTOS["train"]) & set(PHOTOS["test"]) and not set(PHOTOS["val"]) & set(PHOTOS["test"])
    assert not set(PHOTOS["train"]) & set(PHOTOS["val"])


def test_clean_video_moves_and_rain_kinds_mix_per_clip() -> None:
    clips = SyntheticRainClips("train", 12, 4, 48, 32, "mixed", seed=0)
    kinds = {clips[i]["name"].rsplit("-", 1)[1] for i in range(12)}
    assert len(kinds) >= 3
    clean = clips[0]["clean"]
    assert all((clean[t + 1] - clean[t]).abs().mean() > 1e-3 for t in range(3))


def test_bad_synthetic_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="crop_size=64 is larger than frame_size=48"):
        SyntheticRainDataModule(**{**TINY, "crop_size": 64})
    with pytest.raises(ValueError, match="unknown rain 'snow'"):
        SyntheticRainDataModule(**TINY, rain="snow")
    with pytest.raises(ValueError, match="rain_skew must be positive, got 0"):
        SyntheticRainDataModule(**TINY, train_rain_skew=0)
    with pytest.raises(ValueError, match="num_frames must be a positive integer"):
        SyntheticRainDataModule(**{**TINY, "num_frames": 0})
