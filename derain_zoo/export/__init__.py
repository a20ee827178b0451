"""Take a zoo model out of Python: ONNX, TorchScript or ``torch.export`` files, and an onnxruntime runner.

``derain-zoo export`` (``command``) writes the file; ``program`` says what the graph computes (one
recurrent step with its state as tensors, or one clip); ``writer`` exports, checks the result against
eager PyTorch and writes it safely; ``runner.run_onnx`` restores a video from the file through the
zoo's chunk and tile plan. onnx / onnxruntime / onnxscript come with the ``[export]`` extra.
"""

from derain_zoo.export.program import ClipProgram, ExportProgram, StateSpec, StepProgram, program_for
from derain_zoo.export.runner import OnnxModel, run_onnx
from derain_zoo.export.writer import FORMATS, ExportError, export_model, read_record

__all__ = [
    "FORMATS",
    "ClipProgram",
    "ExportError",
    "ExportProgram",
    "OnnxModel",
    "StateSpec",
    "StepProgram",
    "export_model",
    "program_for",
    "read_record",
    "run_onnx",
]
