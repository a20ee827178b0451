"""``--ckpt_path`` never swallows what the user typed (issue 15 item 6).

Lightning restores a checkpoint's saved hyper-parameters over the parsed config. Evaluation and memory
options (crop_border, tile_size, tile_overlap, chunk_frames, chunk_overlap) do not change the weights:
the user's choice must win. An architecture option that contradicts the checkpoint is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from derain_zoo.cli import main, run

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
SAVED = {"channels": 4, "crop_border": 2, "tile_size": 64, "tile_overlap": 8, "chunk_frames": 4, "chunk_overlap": 1}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A one-step tiny J4R-Net trained with non-default architecture, evaluation and memory options."""
    root = tmp_path_factory.mktemp("ckpt")
    saved = [f"--model.{key}={value}" for key, value in SAVED.items()]
    run(
        [
            "fit",
            "--config",
            str(CONF / "j4rnet.yaml"),
            *saved,
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0",
            f"--trainer.default_root_dir={root}",
            *QUIET,
        ]
    )
    path = root / "checkpoints" / "last.ckpt"
    assert torch.load(path, weights_only=True)["hyper_parameters"]["crop_border"] == 2
    return path


def _test(root: Path, checkpoint: Path, *extra: str) -> dict:
    main(
        [
            "test",
            "--model=j4rnet",
            "--config",
            str(CONF / "j4rnet.yaml"),
            "--model.channels=4",
            f"--ckpt_path={checkpoint}",
            f"--trainer.default_root_dir={root}",
            *QUIET,
            *extra,
        ]
    )
    return json.loads((root / "metrics.json").read_text())


def test_typed_crop_border_wins_over_the_checkpoint(tmp_path, checkpoint):
    assert _test(tmp_path / "saved", checkpoint)["crop_border"] == 2  # not typed: the checkpoint's
    typed = _test(tmp_path / "typed", checkpoint, "--model.init_args.crop_border=0")
    assert typed["crop_border"] == 0  # typed, even as the class default
    assert _test(tmp_path / "eight", checkpoint, "--model.crop_border=8")["crop_border"] == 8


def test_typed_tile_and_chunk_options_win_over_the_checkpoint(tmp_path, checkpoint):
    common = [
        "predict",
        "--model=j4rnet",
        "--config",
        str(CONF / "j4rnet.yaml"),
        "--model.channels=4",
        f"--ckpt_path={checkpoint}",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    saved = run(common)
    assert {key: getattr(saved.model, key) for key in SAVED if key != "channels"} == {
        key: value for key, value in SAVED.items() if key != "channels"
    }
    typed = {"tile_size": 16, "tile_overlap": 0, "chunk_frames": 1, "chunk_overlap": 0}
    cli = run([*common, *(f"--model.{key}={value}" for key, value in typed.items())])
    assert {key: getattr(cli.model, key) for key in typed} == typed
    # 16-pixel tiles without overlap, one frame at a time: not the checkpoint's 64-pixel, 4-frame pass
    assert not torch.equal(saved.predictions[0], cli.predictions[0])


@pytest.mark.parametrize("how", ["typed", "config file"])
def test_architecture_option_that_contradicts_the_checkpoint_is_refused(tmp_path, checkpoint, how):
    # tests/conf/j4rnet.yaml sets channels 8; the checkpoint was trained with 4
    extra = ["--model.channels=8"] if how == "typed" else []
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "test",
                "--config",
                str(CONF / "j4rnet.yaml"),
                *extra,
                f"--ckpt_path={checkpoint}",
                f"--trainer.default_root_dir={tmp_path}",
                *QUIET,
            ]
        )
    message = str(exit_info.value.code)
    assert message.startswith("derain-zoo: error:") and "\n" not in message, message
    assert "--model.channels=8" in message and "channels=4" in message and str(checkpoint) in message
    assert not (tmp_path / "metrics.json").exists()
