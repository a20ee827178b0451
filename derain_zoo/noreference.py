"""Old import path of NIQE and BRISQUE (now ``derain_zoo.metrics``), kept for scripts such as benchmarks/transfer.py."""

from derain_zoo.metrics.noreference import brisque, frame_quality, niqe

__all__ = ["brisque", "frame_quality", "niqe"]
