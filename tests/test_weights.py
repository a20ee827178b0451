"""Shipped weights: export, verified loading through ``--model.weights``, refusals in one line, the listing.

Shipped-name lookups are pointed at a temporary folder with ``DERAIN_ZOO_WEIGHTS_DIR``; the weights
that really ship (if any) are checked by ``test_every_shipped_file_matches_its_manifest``.
"""

from __future__ import annotations

import inspect
import json
import subprocess
from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml

from derain_zoo import weights as shipped_weights
from derain_zoo.cli import main, run
from derain_zoo.models import J4RNet
from derain_zoo.registry import model_registry
from derain_zoo.weights import WEIGHTS_DIR_ENV, WeightsError, export_weights

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TINY = yaml.safe_load((CONF / "j4rnet.yaml").read_text())
TINY_ARGS = TINY["model"]["init_args"]  # channels 8, one block each, phase 2
SCORES = {
    "a1": {"psnr_y": 30.123, "ssim_y": 0.9012},
    "ra1": {"niqe": 4.56, "brisque": 31.2},
    "synthetic": {"psnr_y": 28.7},
}


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty shipped-weights folder, used instead of the package's."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def tiny_model() -> J4RNet:
    torch.manual_seed(0)
    return J4RNet(**TINY_ARGS)


def _export(model: J4RNet, folder: Path, name: str = "synthetic-cpu") -> Path:
    return export_weights(
        model,
        name,
        folder,
        recipe="tests/conf/j4rnet.yaml",
        data_version="test",
        steps=2,
        wall_minutes=0.01,
        scores=SCORES,
    )


def _data_only_config(tmp_path: Path) -> Path:
    """The tiny synthetic data of tests/conf/j4rnet.yaml without its model section."""
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump({"data": TINY["data"]}))
    return config


def _error_line(args: list[str]) -> str:
    """The one-line message ``main`` (the console script's entry point) exits with."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    message = str(exit_info.value)
    assert message.startswith("derain-zoo: error:") and "\n" not in message, message
    assert "Union" not in message, message  # not jsonargparse's wrapper around the constructor's error
    return message


# ---------------------------------------------------------------------------------------------- export + load
def test_export_writes_fp16_weights_and_a_manifest_with_their_hash(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path)
    manifest = json.loads(pt.with_suffix(".json").read_text())
    assert pt.name == "j4rnet-synthetic-cpu.safetensors" and manifest["file"] == pt.name
    assert (
        manifest["sha256"] == shipped_weights._sha256(pt.read_bytes()) and manifest["size_bytes"] == pt.stat().st_size
    )
    assert manifest["init_args"] == {key: TINY_ARGS[key] for key in J4RNet.architecture_args}
    assert manifest["scores"] == SCORES and manifest["steps"] == 2 and manifest["torch"] == torch.__version__
    state = safetensors.torch.load_file(pt)
    assert state.keys() == tiny_model.state_dict().keys()
    assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())
    with pytest.raises(WeightsError, match="exists"):
        _export(tiny_model, tmp_path)


def test_exported_path_loads_through_the_cli_with_the_same_output(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path / "export")
    cli = run(
        [
            "predict",
            "--config",
            str(CONF / "j4rnet.yaml"),
            f"--model.weights={pt}",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    loaded = cli.model.state_dict()
    for key, tensor in tiny_model.state_dict().items():  # exactly the fp16-rounded weights
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(loaded[key], expected), key
    rain = next(iter(cli.datamodule.predict_dataloader()))["rain"]
    (restored,) = cli.predictions
    torch.testing.assert_close(restored, tiny_model.eval().restore_sequence(rain), atol=2e-3, rtol=0)


def test_shipped_name_brings_its_architecture_arguments(tmp_path, weights_dir, tiny_model):
    _export(tiny_model, weights_dir)
    cli = run(
        [
            "predict",
            "--model=j4rnet",
            "--model.weights=synthetic-cpu",
            "--config",
            str(_data_only_config(tmp_path)),
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    assert {key: cli.model.hparams[key] for key in TINY_ARGS} == TINY_ARGS
    assert "weights" not in cli.model.hparams  # a checkpoint of this model must not re-read them


def test_typed_architecture_argument_that_contradicts_the_weights_is_refused(tmp_path, weights_dir, tiny_model):
    _export(tiny_model, weights_dir)
    line = _error_line(
        [
            "predict",
            "--model=j4rnet",
            "--model.weights=synthetic-cpu",
            "--model.channels=16",
            "--config",
            str(_data_only_config(tmp_path)),
            *QUIET,
        ]
    )
    assert "--model.channels=16" in line and "channels=8" in line and "j4rnet-synthetic-cpu.safetensors" in line


def test_unknown_shipped_name_is_one_line_listing_what_ships(weights_dir, tiny_model):
    _export(tiny_model, weights_dir)
    line = _error_line(["predict", "--model=j4rnet", "--model.weights=synthetic-gpu", *QUIET])
    assert "synthetic-gpu" in line and "synthetic-cpu" in line


def test_from_weights_builds_the_model_the_manifest_describes(weights_dir, tiny_model):
    _export(tiny_model, weights_dir)
    model = J4RNet.from_weights("synthetic-cpu")
    assert model.hparams["channels"] == 8
    with pytest.raises(WeightsError, match="channels=16 contradicts"):
        J4RNet.from_weights("synthetic-cpu", channels=16)


# ---------------------------------------------------------------------------------------------- refusals
def test_corrupted_shipped_file_is_refused_in_one_line_naming_it(tmp_path, weights_dir, tiny_model):
    pt = _export(tiny_model, weights_dir)
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    pt.write_bytes(bytes(data))
    args = [
        "test",
        "--model=j4rnet",
        "--model.weights=synthetic-cpu",
        "--config",
        str(_data_only_config(tmp_path)),
        *QUIET,
    ]
    line = _error_line(args)
    assert str(pt) in line and "sha256" in line
    pt.write_bytes(bytes(data[: len(data) // 3]))
    line = _error_line(args)
    assert str(pt) in line and "truncated" in line


def test_corrupted_file_is_one_line_through_the_console_script(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path)
    pt.with_suffix(".json").unlink()  # no manifest: torch.load itself meets the damage
    pt.write_bytes(pt.read_bytes()[:1000])
    result = subprocess.run(
        ["derain-zoo", "predict", "--config", str(CONF / "j4rnet.yaml"), f"--model.weights={pt}", *QUIET],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("derain-zoo: error:") and str(pt) in last, result.stderr[-2000:]


def test_weights_of_other_shapes_are_refused_in_one_line(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path)
    pt.with_suffix(".json").unlink()  # without a manifest nothing sets the widths: the shape check must
    line = _error_line(
        ["test", "--config", str(CONF / "j4rnet.yaml"), f"--model.weights={pt}", "--model.channels=4", *QUIET]
    )
    assert str(pt) in line and "does not fit model 'j4rnet'" in line and "[8, 3, 3, 3]" in line


def test_weights_of_another_model_are_refused(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path)
    pt.with_suffix(".json").unlink()
    line = _error_line(["test", "--config", str(CONF / "ddsa.yaml"), f"--model.weights={pt}", *QUIET])
    assert "holds model 'j4rnet'" in line and "--model=j4rnet" in line


@pytest.mark.parametrize("command", ["test", "predict", "validate"])
def test_trainable_model_without_weights_is_refused_in_one_line(command, tmp_path):
    line = _error_line(
        [command, "--config", str(CONF / "j4rnet.yaml"), f"--trainer.default_root_dir={tmp_path}", *QUIET]
    )
    assert "random weights" in line and "--model.weights=" in line and "--ckpt_path=" in line
    assert "--model.weights=random" in line


def test_the_refusal_names_a_weights_file_that_ships_for_that_model(monkeypatch, tmp_path):
    """S2VD ships 'official', not 'synthetic-cpu': the hint must be a name that works for the model asked."""
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    line = _error_line(["test", "--config", str(CONF / "s2vd.yaml"), f"--trainer.default_root_dir={tmp_path}", *QUIET])
    assert "--model.weights=official " in line


def test_random_weights_are_an_explicit_opt_in(tmp_path):
    cli = run(
        [
            "validate",
            "--config",
            str(CONF / "j4rnet.yaml"),
            "--model.init_args.weights=random",
            "--trainer.limit_val_batches=1",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    assert cli.model.initial_weights == "random"


# ---------------------------------------------------------------------------------------------- fit + export tool
def test_fit_starts_from_weights_and_its_checkpoint_does_not_need_them(tmp_path, tiny_model):
    pt = _export(tiny_model, tmp_path / "export")
    run(
        [
            "fit",
            "--config",
            str(CONF / "j4rnet.yaml"),
            f"--model.weights={pt}",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            *QUIET,
        ]
    )
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    assert "weights" not in saved["hyper_parameters"]
    start = safetensors.torch.load_file(pt)
    drift = max((saved["state_dict"][k].float() - t.float()).abs().max().item() for k, t in start.items())
    assert drift < 0.01  # one Adam step at 1e-4 from the weights, not a fresh initialisation
    pt.unlink()
    run(
        [
            "test",
            "--config",
            str(CONF / "j4rnet.yaml"),
            f"--ckpt_path={ckpt}",
            f"--trainer.default_root_dir={tmp_path / 'test'}",
            *QUIET,
        ]
    )
    line = _error_line(["test", "--config", str(CONF / "j4rnet.yaml"), f"--ckpt_path={ckpt}", "--model.weights=x.pt"])
    assert "not both" in line

    shipped_weights.main(
        [
            "export",
            "--ckpt",
            str(ckpt),
            "--name",
            "synthetic-cpu",
            "--out-dir",
            str(tmp_path / "out"),
            "--recipe",
            "tests/conf/j4rnet.yaml",
            "--wall-minutes",
            "0.5",
            "--scores",
            json.dumps(SCORES),
        ]
    )
    manifest = json.loads((tmp_path / "out" / "j4rnet-synthetic-cpu.json").read_text())
    assert manifest["steps"] == saved["global_step"] == 1 and manifest["scores"] == SCORES
    assert manifest["init_args"]["channels"] == 8 and manifest["wall_minutes"] == 0.5


# ---------------------------------------------------------------------------------------------- listing
def test_weights_command_lists_model_name_size_and_scores(weights_dir, tiny_model, capsys):
    main(["weights"])
    assert "no shipped weights" in capsys.readouterr().out
    _export(tiny_model, weights_dir)
    main(["weights"])
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:3] == ["model", "name", "size"] and "a1 PSNR-Y" in header and "ra1 NIQE" in header
    assert row.split()[:2] == ["j4rnet", "synthetic-cpu"]
    assert all(value in row for value in ("30.12", "0.9012", "4.56", "31.20", "28.70"))
    assert "made by" in header and row.rstrip().endswith("tests/conf/j4rnet.yaml")  # the recipe that made it


def test_weights_command_names_the_source_and_licence_of_an_authors_release(monkeypatch, capsys):
    """S2VD's converted release says where it comes from and under which licence, in the listing itself."""
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    main(["weights"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("s2vd ")]
    assert len(rows) == 1 and rows[0].split()[1] == "official"
    assert rows[0].rstrip().endswith("github.com/zsyOAOA/S2VD (MIT)")


# ---------------------------------------------------------------------------------------------- every model
@pytest.mark.parametrize("alias", list(model_registry()))
def test_architecture_args_are_constructor_arguments(alias):
    cls = model_registry()[alias]
    parameters = inspect.signature(cls.__init__).parameters
    assert all(name in parameters for name in cls.architecture_args), cls.architecture_args
    assert "weights" in inspect.signature(cls.__init__).parameters or "kwargs" in parameters


@pytest.mark.parametrize(
    "entry", shipped_weights.shipped(Path(shipped_weights.__file__).parent), ids=lambda e: f"{e.model}-{e.name}"
)
def test_every_shipped_file_matches_its_manifest(entry):
    assert entry.path.stat().st_size <= shipped_weights.SIZE_LIMIT_BYTES
    model = model_registry()[entry.model].from_weights(str(entry.path))  # checks sha256 and every shape
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


@pytest.mark.parametrize("alias", [alias for alias, cls in model_registry().items() if cls.trainable])
def test_every_model_round_trips_through_exported_weights(alias, tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    cls = model_registry()[alias]
    torch.manual_seed(0)
    model = cls(**yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"]["init_args"])
    _export(model, tmp_path)
    loaded = cls.from_weights("synthetic-cpu")  # the manifest's init_args alone rebuild the tiny model
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, tensor in model.state_dict().items():
        expected = tensor.half().to(tensor.dtype) if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.state_dict()[key], expected), key
