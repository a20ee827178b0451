"""``derain-zoo export``: every model with weights leaves Python as ONNX and, run by onnxruntime through the
zoo's chunk and tile plan (``run_onnx``), restores a 12-frame clip as ``restore_sequence`` does (1e-4).

A recurrent model's state is explicit: fed back call after call it equals one pass. TorchScript and
``torch.export`` files hold the same program. The command writes files as ``predict`` does: never over
a file without ``--overwrite``, and ``--overwrite`` replaces only a file that ``export`` wrote.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from derain_zoo.cli import main
from derain_zoo.export import ExportError, export_model, program_for, read_record, run_onnx
from derain_zoo.inference import RECURRENT as RECURRENT_KIND
from derain_zoo.models.components.temporal import window_indices
from derain_zoo.registry import model_registry
from tests.models.helpers import tiny_model

WITH_WEIGHTS = [alias for alias, cls in model_registry().items() if cls.trainable]
SIZE = (32, 48)  # the frames; tiles of 24 with 8 pixels of context cut them into four tiles of other sizes
# the exporter fixes the frame size of RainTRN's patch attention (docs/export.md): one tile of the traced size
FIXED_SIZE = {"raintrn"}


def plan(alias: str) -> dict[str, int | None]:
    """Chunks of 5 frames (a 12-frame clip in three) and, where sizes are free, 24-pixel tiles."""
    return {"chunk_frames": 5, "tile_size": None if alias in FIXED_SIZE else 24, "tile_overlap": 8}


def every_layer_live(model: torch.nn.Module) -> torch.nn.Module:
    """Draw the weights a model starts at zero (J4R-Net's fusion output, RMFD's heads) at random: at zero
    they hide what feeds them, e.g. J4R-Net's memory, so a lost state would go unnoticed."""
    generator = torch.Generator().manual_seed(2)
    for parameter in model.parameters():
        if parameter.ndim > 1 and not parameter.detach().any():
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.05
    return model


RECURRENT = [alias for alias in WITH_WEIGHTS if tiny_model(alias).temporal_protocol().kind == RECURRENT_KIND]


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """(alias, eager tiny model, its ONNX file), exported once per model (``request.param``) for the tests below."""
    alias = request.param
    model = every_layer_live(tiny_model(alias, **plan(alias)).eval())
    path = export_model(model, "onnx", tmp_path_factory.mktemp(alias) / f"{alias}.onnx", size=SIZE)
    return alias, model, path


def clip(frames: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, frames, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.slow
@pytest.mark.parametrize("exported", WITH_WEIGHTS, indirect=True)
def test_onnx_restores_a_clip_as_restore_sequence(exported):
    alias, model, path = exported
    record = read_record(path)
    assert record["model"] == alias and record["dynamic"] == (alias not in FIXED_SIZE)
    rain = clip()
    expected = model.restore_sequence(rain)
    restored = run_onnx(path, rain)
    assert restored.shape == rain.shape
    torch.testing.assert_close(restored, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("exported", RECURRENT, indirect=True)
def test_onnx_stream_state_passed_between_calls_equals_one_pass(exported):
    alias, model, path = exported
    record = read_record(path)
    assert record["program"] == "step"
    program = program_for(model)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rain = clip(7, seed=2)
    windows = window_indices(rain.shape[1], record["window"])  # the rain frames each step reads (reflected)
    state = {f"{spec.name}_in": spec.zeros(1, *SIZE).numpy() for spec in program.states}
    frames = []
    for t in range(rain.shape[1]):  # a caller's loop: one call a frame, the state handed back each time
        step_in = rain[:, windows[t]] if record["window"] > 1 else rain[:, t]
        restored, *after = session.run(None, {"rain": step_in.numpy(), **state})
        state = dict(zip(state, after, strict=True))
        frames.append(restored)
    one_pass = every_layer_live(tiny_model(alias, tile_size=None).eval()).restore_sequence(rain)
    torch.testing.assert_close(torch.from_numpy(np.stack(frames, 1)).clamp(0, 1), one_pass, atol=1e-4, rtol=0)


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_torchscript_and_torch_export_files_hold_the_step(fmt, tmp_path):
    model = tiny_model("j4rnet").eval()
    path = export_model(model, fmt, tmp_path / f"j4rnet.{fmt}", size=SIZE)
    assert read_record(path)["format"] == fmt
    program = program_for(model)
    example = program.example_inputs(1, 24, 40)
    loaded = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        for got, expected in zip(loaded(*example), program(*example), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def export_command(*args: str) -> None:
    main(["export", "--model", "j4rnet", "--weights", "random", "--size", "16x24", *args])


def test_export_command_never_clobbers(tmp_path, capsys):
    target = tmp_path / "j4rnet.onnx"
    export_command("--output", str(target))
    assert read_record(target)["weights"] == "random"
    written = target.read_bytes()
    with pytest.raises(SystemExit, match="already exists; pass --overwrite"):
        export_command("--output", str(target), "--format", "onnx")
    assert target.read_bytes() == written
    export_command("--output", str(target), "--overwrite", "--size", "16x16")
    assert read_record(target)["size"] == [16, 16]
    assert [p.name for p in tmp_path.iterdir()] == ["j4rnet.onnx"], "a hidden partial file was left"


def test_overwrite_replaces_only_a_file_export_wrote(tmp_path):
    mine = tmp_path / "notes.onnx"
    mine.write_text("my own file")
    with pytest.raises(SystemExit, match="not a model that 'derain-zoo export' wrote"):
        export_command("--output", str(mine), "--overwrite")
    assert mine.read_text() == "my own file"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "ddsa", "--weights", "random", "--size", "30x40"], "multiples of 16; try --size 32x48"),
        (["--model", "ddsa", "--weights", "random", "--size", "big"], "HEIGHTxWIDTH"),
        (["--model", "identity", "--weights", "random"], "no weights to export"),
        (["--model", "nosuch", "--weights", "random"], "unknown model"),
    ],
)
def test_export_command_refuses_in_one_line(args, message, tmp_path):
    with pytest.raises(SystemExit, match=message) as error:
        main(["export", *args, "--output", str(tmp_path / "x.onnx")])
    assert "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("exported", ["estinet"], indirect=True)
def test_a_video_shorter_than_a_fixed_clip_is_refused_in_one_line(exported):
    alias, model, path = exported
    with pytest.raises(ExportError, match="restores clips of 5 frames; this video has 3"):
        run_onnx(path, clip(3))
