"""Paper-exact scores for deraining: paired PSNR/SSIM, no-reference NIQE/BRISQUE, and the Evaluator.

* ``paired``: PSNR and SSIM on RGB and Y of one frame as papers compute them (BasicSR's convention).
* ``noreference``: NIQE and BRISQUE as their authors' MATLAB releases compute them.
* ``video``: both as torchmetrics ``Metric``s, per frame -> per sequence -> equal-weight mean, synced
  across DDP ranks; usable in any LightningModule.
* ``evaluator``: the Callback every zoo model is scored by in ``validate`` / ``test``.
"""

from derain_zoo.metrics.evaluator import Evaluator
from derain_zoo.metrics.noreference import brisque, frame_quality, niqe
from derain_zoo.metrics.paired import calculate_psnr, calculate_ssim, frame_scores, gaussian_1d, rgb_to_y
from derain_zoo.metrics.video import NoReferenceScores, PairedScores, SequenceScores, average

__all__ = [
    "Evaluator",
    "NoReferenceScores",
    "PairedScores",
    "SequenceScores",
    "average",
    "brisque",
    "calculate_psnr",
    "calculate_ssim",
    "frame_quality",
    "frame_scores",
    "gaussian_1d",
    "niqe",
    "rgb_to_y",
]
