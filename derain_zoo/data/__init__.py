"""Data side of the zoo: the data modules (one alias per layout), rain models, video I/O."""

from derain_zoo.data.datamodule import DerainDataModule
from derain_zoo.data.layouts import DatasetNotFoundError
from derain_zoo.data.modules import (
    FolderDataModule,
    ImageDataModule,
    NTURainDataModule,
    RainSynAll100DataModule,
    RainSynComplex25DataModule,
    RainSynLight25DataModule,
    SequenceDataModule,
    SyntheticRainDataModule,
    VideoDataModule,
)

__all__ = [
    "DatasetNotFoundError",
    "FolderDataModule",
    "ImageDataModule",
    "NTURainDataModule",
    "RainSynAll100DataModule",
    "RainSynComplex25DataModule",
    "RainSynLight25DataModule",
    "SequenceDataModule",
    "SyntheticRainDataModule",
    "VideoDataModule",
    "DerainDataModule",
]
