"""Reliability: exact resume, non-finite losses, reproducibility, bf16, clear errors through the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from derain_zoo.cli import run
from derain_zoo.models.base import NonFiniteLossError
from derain_zoo.registry import model_registry

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def _fit(alias: str, root: Path, *extra: str):
    return run(["fit", "--config", str(CONF / f"{alias}.yaml"), f"--trainer.default_root_dir={root}", *QUIET, *extra])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _console(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["derain-zoo", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("derain-zoo: error:"), result.stderr[-2000:]
    return last


# ---------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("alias", ["j4rnet", "raintrn"])  # one automatic-optimisation model, one GAN
def test_resume_continues_exactly_like_an_unbroken_run(alias, tmp_path):
    no_val = ["--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0"]
    _fit(alias, tmp_path / "straight", "--trainer.max_epochs=2", *no_val)
    _fit(alias, tmp_path / "split", "--trainer.max_epochs=1", *no_val)
    first_half = tmp_path / "split" / "checkpoints" / "last.ckpt"
    after_half = _weights(first_half)
    _fit(alias, tmp_path / "split", "--trainer.max_epochs=2", f"--ckpt_path={first_half}", *no_val)
    straight = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = _weights(tmp_path / "split" / "checkpoints" / "last.ckpt")
    assert straight.keys() == resumed.keys()
    changed = any(not torch.equal(after_half[k], resumed[k]) for k in resumed if resumed[k].is_floating_point())
    assert changed, "the resumed run did not train"
    for key in straight:
        assert torch.allclose(straight[key].float(), resumed[key].float(), atol=1e-6), key
    counters = [
        torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True) for run in ("straight", "split")
    ]
    assert [c["global_step"] for c in counters] == [counters[0]["global_step"]] * 2 and counters[0]["global_step"] > 0
    assert counters[0]["epoch"] == counters[1]["epoch"]


def test_resume_from_a_mid_epoch_checkpoint_continues_the_data_stream_exactly(tmp_path):
    every_3_steps = [
        "--checkpoint.every_n_train_steps=3",
        "--checkpoint.save_top_k=-1",
        "--checkpoint.monitor=null",
        "--checkpoint.filename=s{step}",
    ]
    common = ["--trainer.max_steps=6", "--trainer.limit_val_batches=0", "--data.train_clips=8"]  # 4 batches/epoch
    _fit("j4rnet", tmp_path / "straight", *common, *every_3_steps)
    mid_epoch = tmp_path / "straight" / "checkpoints" / "s3.ckpt"
    assert torch.load(mid_epoch, weights_only=True)["SyntheticRainDataModule"] == {"train_batches_done": 3}
    _fit("j4rnet", tmp_path / "resumed", *common, f"--ckpt_path={mid_epoch}")
    straight = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_fit_resumes_from_last(tmp_path):
    _fit("j4rnet", tmp_path, "--trainer.max_epochs=1", "--trainer.limit_val_batches=0")
    cli = _fit("j4rnet", tmp_path, "--trainer.max_epochs=2", "--ckpt_path=last", "--trainer.limit_val_batches=0")
    assert cli.trainer.current_epoch == 2 and cli.trainer.global_step == 4


# ---------------------------------------------------------------------------------------- numerics
def _poison(cli_args: list[str]) -> None:
    """Fit with every weight NaN, so the very first loss is non-finite."""
    import derain_zoo.models.base as base

    original = base.DerainModule.on_fit_start

    def nan_weights(self):
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(float("nan"))
        return original(self)

    base.DerainModule.on_fit_start = nan_weights
    try:
        run(cli_args)
    finally:
        base.DerainModule.on_fit_start = original


def test_non_finite_loss_stops_training_naming_model_step_and_term(tmp_path):
    args = [
        "fit",
        "--config",
        str(CONF / "j4rnet.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
        "--trainer.max_steps=3",
    ]
    with pytest.raises(NonFiniteLossError, match=r"model 'j4rnet' at global step 0: term '\w+'"):
        _poison(args)
    assert not list(tmp_path.rglob("*.ckpt")), "a checkpoint was written after a non-finite loss"


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    args = [
        "fit",
        "--config",
        str(CONF / "j4rnet.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
        "--trainer.max_steps=2",
        "--model.init_args.nonfinite=skip",
    ]
    with pytest.raises(NonFiniteLossError, match="checkpoint not written"):
        _poison(args)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_same_seed_and_config_give_the_same_validation_metrics(tmp_path):
    steps = ["--trainer.max_steps=2", "--trainer.limit_val_batches=1", "--trainer.val_check_interval=2"]
    first = _fit("j4rnet", tmp_path / "a", *steps).trainer.callback_metrics
    second = _fit("j4rnet", tmp_path / "b", *steps).trainer.callback_metrics
    assert "val/psnr_y" in first
    for key in ("val/psnr", "val/ssim", "val/psnr_y", "val/ssim_y"):
        assert first[key].item() == second[key].item()


def test_run_folder_keeps_config_version_and_commit(tmp_path):
    run(
        [
            "fit",
            "--config",
            str(CONF / "j4rnet.yaml"),
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0",
            "--trainer.enable_progress_bar=false",
        ]
    )
    info_file = next(tmp_path.rglob("run_info.json"))
    info = json.loads(info_file.read_text())
    assert info["derain_zoo"] and info["torch"]
    assert "git_commit" in info
    assert (info_file.parent / "config.yaml").is_file()


@pytest.mark.parametrize("alias", [a for a, cls in model_registry().items() if cls.trainable])
def test_bf16_mixed_precision_trains_every_model(alias, tmp_path):
    cli = _fit(alias, tmp_path, "--trainer.precision=bf16-mixed", "--trainer.fast_dev_run=1")
    assert cli.trainer.state.finished
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


# ------------------------------------------------------------------------------ bad input, real CLI
TINY_TEST = [
    "--data.num_workers=0",
    "--data.test_sequences=1",
    "--data.test_frames=3",
    "--data.frame_size=32",
    "--data.crop_size=16",
    "--trainer.enable_progress_bar=false",
]


def test_missing_checkpoint_is_one_clear_line(tmp_path):
    line = _one_line_error(_console("test", "--model=j4rnet", *TINY_TEST, f"--ckpt_path={tmp_path}/none.ckpt"))
    assert "checkpoint not found" in line and "none.ckpt" in line


@pytest.fixture(scope="module")
def j4rnet_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("j4r")
    _fit("j4rnet", root, "--trainer.max_steps=1", "--trainer.limit_val_batches=0")
    return root / "checkpoints" / "last.ckpt"


def test_checkpoint_of_another_model_is_refused(j4rnet_checkpoint):
    line = _one_line_error(_console("test", "--model=ddsa", *TINY_TEST, f"--ckpt_path={j4rnet_checkpoint}"))
    assert "saved by model 'j4rnet'" in line and "--model=j4rnet" in line


def test_checkpoint_is_loaded_without_pickled_code(j4rnet_checkpoint, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    evil = tmp_path / "evil.ckpt"
    checkpoint = torch.load(j4rnet_checkpoint, weights_only=True)
    checkpoint["payload"] = Payload()
    torch.save(checkpoint, evil)
    result = _console("test", "--model=j4rnet", *TINY_TEST, f"--ckpt_path={evil}")
    assert "pickled code ran" not in result.stdout
    _one_line_error(result)


def test_misspelt_config_key_is_one_clear_line(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text((CONF / "j4rnet.yaml").read_text().replace("channels: 8", "chanels: 8"))
    line = _one_line_error(_console("fit", "--config", str(config), "--trainer.fast_dev_run=1"))
    assert "chanels" in line


def test_data_root_of_the_wrong_layout_is_one_clear_line(tmp_path):
    (tmp_path / "some_folder").mkdir()
    line = _one_line_error(_console("test", "--model=identity", "--data=nturain", f"--data.root={tmp_path}"))
    assert str(tmp_path) in line


def test_a_file_that_is_not_a_video_is_one_clear_line(tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"this is not a video")
    line = _one_line_error(
        _console("predict", "--model=identity", f"--data.input={fake}", f"--output={tmp_path}/o.mp4")
    )
    assert "holiday.mp4" in line


def test_existing_output_is_not_overwritten(tmp_path, nturain_sample):
    output = tmp_path / "derained.mp4"
    output.write_bytes(b"user's precious file")
    frames = nturain_sample / "Dataset_Testing_RealRain" / "ra1_Rain"
    line = _one_line_error(_console("predict", "--model=identity", f"--data.input={frames}", f"--output={output}"))
    assert "derained.mp4" in line and "--overwrite" in line
    assert output.read_bytes() == b"user's precious file"
