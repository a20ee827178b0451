"""Write an exported model to disk: ONNX, TorchScript or a ``torch.export`` program, checked against eager.

Every file carries the same JSON record (``derain_zoo``: the model, its weights, the program's
inputs, outputs and state, the protocol and tile plan, the size it was traced at and whether other
sizes work), so ``run_onnx`` needs nothing but the file. A file is written under a hidden name and
moved into place as ``predict`` does (``derain_zoo.outputs``): nothing is clobbered, and
``--overwrite`` replaces only a file that ``export`` itself wrote.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from derain_zoo import outputs
from derain_zoo.export.program import ExportProgram, program_for
from derain_zoo.models.base import DerainModule

FORMATS = {"onnx": ".onnx", "torchscript": ".ts", "exported": ".pt2"}
RECORD = "derain_zoo"  # ONNX metadata key; the archive member is derain_zoo.json
TOLERANCE = 1e-4  # an export that differs more from eager PyTorch on its own example is refused


class ExportError(ValueError):
    """A model that cannot be exported as asked; one line naming the model or file."""


def check_size(program: ExportProgram, size: tuple[int, int]) -> None:
    """Sizes a program runs on are multiples of the network's; say the nearest ones instead of failing inside."""
    multiple = program.multiple
    if size[0] < 1 or size[1] < 1 or size[0] % multiple or size[1] % multiple:
        near = "x".join(str(max(multiple, -(-side // multiple) * multiple)) for side in size)
        raise ExportError(f"--size {size[0]}x{size[1]}: this model runs on multiples of {multiple}; try --size {near}")


def export_model(
    model: DerainModule,
    fmt: str,
    target: str | Path,
    size: tuple[int, int] = (480, 640),
    overwrite: bool = False,
    record: dict[str, Any] | None = None,
) -> Path:
    """Export ``model`` as ``fmt`` traced at ``size`` (H, W) to ``target``; returns the path written.

    Height and width stay free where the exporter keeps them symbolic (checked on a second size; the
    record says ``dynamic``); ``record`` adds fields (e.g. the weights' name) to the file's record.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    program = program_for(model)
    check_size(program, size)
    path = check_target(target, overwrite)
    example = program.example_inputs(1, *size)
    artifact, dynamic, run = _EXPORTERS[fmt](program, example)
    info = {
        **(record or {}),
        "model": model.alias,
        "format": fmt,
        "size": list(size),
        "dynamic": dynamic,
        "chunk_frames": model.chunk_frames,
        "tile_size": model.tile_plan().size,
        "tile_overlap": model.tile_plan().overlap,
        "torch": torch.__version__,
        **program.metadata(),
    }
    partial = outputs.partial_path(path)
    outputs.remove_stale_partials(path)
    try:
        _SAVERS[fmt](artifact, partial, json.dumps(info))
        _check_parity(program, run, example, f"{fmt} export of '{model.alias}'")
        if overwrite and path.exists():
            os.replace(partial, path)
        else:
            try:
                outputs.rename_no_replace(partial, path)
            except FileExistsError:
                raise outputs.appeared(path) from None
    finally:
        outputs.remove(partial)
    return path


def check_target(target: str | Path, overwrite: bool) -> Path:
    """The output path: refused when it exists (without ``overwrite``) or is not a file ``export`` wrote."""
    path = outputs.output_path(target)
    outputs.check_name_length(path)
    if path.is_symlink():
        raise outputs.UnsafeOutputError(f"output {path} is a symbolic link; pass the path it points to")
    if path.is_dir():
        raise outputs.UnsafeOutputError(f"output {path} is a folder; --output names the model file to write")
    if not path.parent.is_dir():
        raise outputs.UnsafeOutputError(f"output {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise outputs.UnsafeOutputError(f"output {path}: {path.parent} is not writable; choose another --output")
    if not path.exists():
        return path
    if not overwrite:
        raise outputs.OutputExistsError(f"output {path} already exists; pass --overwrite to replace it")
    if read_record(path) is None:
        raise outputs.UnsafeOutputError(
            f"output {path} is not a model that 'derain-zoo export' wrote; --overwrite replaces only those"
        )
    return path


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The record of an exported file, None for any other file (not a model, or not ours)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith(f"/{RECORD}.json")), None)
                return None if name is None else json.loads(archive.read(name))
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - anything unreadable is not a file export wrote
        return None
    found = {prop.key: prop.value for prop in model.metadata_props}.get(RECORD)
    return None if found is None else json.loads(found)


# ---------------------------------------------------------------------------------------------- exporters
Runner = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]


def _dynamic_shapes(program: ExportProgram, example: tuple[Tensor, ...]) -> Any:
    """Height and width of every map input free (torch.export's AUTO: kept symbolic where the graph allows)."""
    auto = torch.export.Dim.AUTO

    def spec(tensor: Tensor) -> dict[int, Any] | None:
        return None if tensor.ndim == 0 else {tensor.ndim - 2: auto, tensor.ndim - 1: auto}

    specs = [spec(tensor) for tensor in example]
    if program.kind == "clip" and program.metadata()["frames"] is None:  # frame, window and chunk models: any T
        specs[0] = {**specs[0], 1: auto}
    named = [name for name in program.forward.__code__.co_varnames[1 : program.forward.__code__.co_argcount]]
    if len(named) == len(example):
        return dict(zip(named, specs, strict=True))
    return (*specs[: len(named)], tuple(specs[len(named) :]))  # a step taking *state


def _torch_export(program: ExportProgram, example: tuple[Tensor, ...]) -> torch.export.ExportedProgram:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(program, example, dynamic_shapes=_dynamic_shapes(program, example))


def _as_tuple(result: Any) -> tuple[Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _second_size(program: ExportProgram, example: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The example at another size (a multiple more on each side): does the export hold beyond its own size?"""
    height, width = example[0].shape[-2:]
    return program.example_inputs(example[0].shape[0], height + program.multiple, width + 2 * program.multiple)


def _holds(program: ExportProgram, run: Runner, example: tuple[Tensor, ...]) -> bool:
    """Whether ``run`` equals eager on ``example`` (False where it fails or differs: the size was fixed)."""
    try:
        _check_parity(program, run, example, "")
    except Exception:  # noqa: BLE001 - a shape error inside the runtime means the same: fixed size
        return False
    return True


def _check_parity(program: ExportProgram, run: Runner, example: tuple[Tensor, ...], what: str) -> None:
    with torch.no_grad():
        expected = _as_tuple(program(*example))
    got = run(example)
    worst = max(float((a.float() - b.float()).abs().max()) for a, b in zip(expected, got, strict=True))
    if not worst <= TOLERANCE:
        raise ExportError(f"{what} differs from eager PyTorch by {worst:.2e} (> {TOLERANCE}); not written")


def _export_onnx(program: ExportProgram, example: tuple[Tensor, ...]) -> tuple[Any, bool, Runner]:
    exported = _torch_export(program, example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(
            exported, input_names=program.input_names, output_names=program.output_names, dynamo=True, verbose=False
        )
    session = onnx_program.model_proto.SerializeToString()

    def run(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return _onnx_session_run(session, program.input_names, inputs)

    return onnx_program, _holds(program, run, _second_size(program, example)), run


def _onnx_session_run(model: bytes, names: list[str], inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # the second-size check expects a fixed-size graph to fail: no log of it
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    results = session.run(None, {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)})
    return tuple(torch.from_numpy(result) for result in results)


def _export_program(program: ExportProgram, example: tuple[Tensor, ...]) -> tuple[Any, bool, Runner]:
    exported = _torch_export(program, example)

    def run(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        with torch.no_grad():
            return _as_tuple(exported.module()(*inputs))

    return exported, _holds(program, run, _second_size(program, example)), run


def _export_torchscript(program: ExportProgram, example: tuple[Tensor, ...]) -> tuple[Any, bool, Runner]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings: the second-size check below is the real test
        traced = torch.jit.trace(program, example, check_trace=False)

    def run(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        with torch.no_grad():
            return _as_tuple(traced(*inputs))

    return traced, _holds(program, run, _second_size(program, example)), run


def _save_onnx(onnx_program: Any, path: Path, record: str) -> None:
    onnx_program.model.metadata_props[RECORD] = record
    onnx_program.save(str(path))


def _save_program(exported: Any, path: Path, record: str) -> None:
    torch.export.save(exported, str(path), extra_files={f"{RECORD}.json": record})


def _save_torchscript(traced: Any, path: Path, record: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, str(path), _extra_files={f"{RECORD}.json": record})


_EXPORTERS = {"onnx": _export_onnx, "torchscript": _export_torchscript, "exported": _export_program}
_SAVERS = {"onnx": _save_onnx, "torchscript": _save_torchscript, "exported": _save_program}
