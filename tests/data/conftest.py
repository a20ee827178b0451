"""Tiny dataset trees in the published naming of each layout, built per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derain_zoo.data import video_io
from tests.data.tree import HEIGHT, RAIN_OFFSET, WIDTH, clean_frame, save, write_pair


@pytest.fixture
def nturain_root(tmp_path: Path) -> Path:
    """NTURain naming: two rain versions of t1 share t1_GT; a1 test pair; real rain without GT."""
    root = tmp_path / "NTURain"
    train = root / "Dataset_Training_Synthetic"
    write_pair(train / "t1_Rain_01", train / "t1_GT", 1, 7)
    write_pair(train / "t1_Rain_02", None, 1, 7)
    write_pair(train / "t2_Rain_01", train / "t2_GT", 2, 7)
    write_pair(train / "t3_Rain_01", train / "t3_GT", 3, 7)
    write_pair(root / "Dataset_Testing_Synthetic" / "a1_Rain", root / "Dataset_Testing_Synthetic" / "a1_GT", 4, 6)
    write_pair(root / "Dataset_Testing_RealRain" / "ra1_Rain", None, 5, 4)
    return root


@pytest.fixture
def rainsyn25_root(tmp_path: Path) -> Path:
    """RainSyn25 naming: {train,test}/{input,processed}/<N>/<k>.png with unpadded k (1..12)."""
    root = tmp_path / "RainSynComplex25"
    names = [f"{k}.png" for k in range(1, 13)]
    for split, sequences in (("train", (1, 2, 3)), ("test", (4,))):
        for n in sequences:
            write_pair(root / split / "input" / str(n), root / split / "processed" / str(n), n, 12, names)
    return root


@pytest.fixture
def rainsynall100_root(tmp_path: Path) -> Path:
    """RainSynAll100 naming: {train,test}/{Rain_Haze,GT,Haze,Trans,Alpha}/<NNNN>/<t>.png."""
    root = tmp_path / "RainSynAll100"
    for split, sequences in (("train", (1, 2)), ("test", (3,))):
        for n in sequences:
            seq = f"{n:04d}"
            write_pair(root / split / "Rain_Haze" / seq, root / split / "GT" / seq, n, 6)
            for layer, value in (("Haze", 100), ("Trans", 128), ("Alpha", 230)):
                video_io.write_frames(root / split / layer / seq, [np.full((HEIGHT, WIDTH, 3), value, np.uint8)] * 6)
    return root


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """Generic layout: rain/<seq>/ and gt/<seq>/ for three sequences."""
    root = tmp_path / "folder"
    for n, name in enumerate(("alpha", "beta", "gamma"), 1):
        write_pair(root / "rain" / name, root / "gt" / name, n, 6)
    return root


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """Single-image layout: train/{input,target}/*.png and test/{input,target}/*.png."""
    root = tmp_path / "images"
    for split, count in (("train", 5), ("test", 2)):
        for k in range(count):
            clean = clean_frame(k, k)
            save(root / split / "target" / f"img{k}.png", clean)
            save(root / split / "input" / f"img{k}.png", clean + RAIN_OFFSET)
    return root
