"""The teacher's training pairs: real rain from the repository, exact targets for the composites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from derain_zoo.data import distill, video_io


def test_the_recipes_real_rain_is_in_the_repository():
    frames = video_io.list_frames(distill.REAL_RAIN)
    assert len(frames) == 60 and video_io.read_image(frames[0]).shape == (360, 640, 3)
    assert (distill.REAL_RAIN.parent / "README.md").read_text().count("CVPR 2018") == 1


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """The set built from 8 rb2 frames cut to 96x128, 3 composites (1 dry), 1 built-in clip, 1 for validation."""
    real = tmp_path_factory.mktemp("rb2")
    crops = [video_io.read_image(p)[100:196, 200:328] for p in video_io.list_frames(distill.REAL_RAIN)[:8]]
    video_io.write_frames(real, [np.ascontiguousarray(c) for c in crops])
    out = tmp_path_factory.mktemp("set") / "distill"
    return distill.build(out, composites=3, frames=4, size=64, dry=1, validation=1, synthetic=1, real_rain=real)


def test_rb2_is_paired_with_the_teachers_output(small_set):
    rain = distill.read_video(small_set / "train" / "rain" / "rb2")
    target = distill.read_video(small_set / "train" / "gt" / "rb2")
    assert rain.shape == target.shape == (1, 8, 3, 96, 128)
    expected = distill.teacher_output(rain)
    assert (target - expected).abs().max() <= 0.5 / 255 + 1e-6  # the teacher's output, rounded to uint8
    assert (rain - target).abs().mean() > 1 / 255  # the teacher changed something: rain was taken away


def test_composites_add_real_rain_to_exact_clean_targets(small_set):
    names = sorted(p.name for p in (small_set / "train" / "gt").iterdir())
    assert names == ["composite-00", "composite-01", "composite-02", "rb2", "synthetic-00"]
    assert [p.name for p in (small_set / "val" / "gt").iterdir()] == ["composite-03"]
    dry_rain, dry_clean = (distill.read_video(small_set / "train" / k / "composite-00") for k in ("rain", "gt"))
    assert torch.equal(dry_rain, dry_clean)
    wet_rain, wet_clean = (distill.read_video(small_set / "train" / k / "composite-01") for k in ("rain", "gt"))
    added = wet_rain - wet_clean
    assert added.min() >= 0 and added.mean() > 0.05 / 255  # rain only adds light, and some was added
    rainy, clean = (distill.read_video(small_set / "train" / k / "synthetic-00") for k in ("rain", "gt"))
    assert rainy.shape == clean.shape == (1, 4, 3, 64, 64) and not torch.equal(rainy, clean)


def test_an_existing_output_is_never_overwritten(small_set):
    with pytest.raises(FileExistsError, match="exists"):
        distill.build(small_set)


def test_the_command_line_scales_the_real_rain_layers_by_the_strength_range(monkeypatch, tmp_path):
    built = {}
    monkeypatch.setattr(distill, "build", lambda out, *args, **kwargs: built.update(kwargs) or out)
    distill.main(["--out", str(tmp_path / "heavy"), "--strength", "2", "6"])
    assert built["strengths"] == (2.0, 6.0)
    distill.main(["--out", str(tmp_path / "default")])
    assert built["strengths"] == (0.25, 1.5)  # the set the shipped distilled recipes were trained on


def test_a_strength_range_that_is_backwards_or_negative_is_refused(capsys, tmp_path):
    for low, high in (("3", "1"), ("-1", "2")):
        with pytest.raises(SystemExit):
            distill.main(["--out", str(tmp_path / "x"), "--strength", low, high])
        assert "--strength" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
