"""``derain-zoo weights convert``: the authors' checkpoint layouts convert, load strictly, and nothing else does.

The authors' key names and shapes are facts kept in ``tests/fixtures/official/<model>.json``
(written by ``benchmarks/official_parity.py --write-fixture`` from their own source); these tests
make random files of exactly that layout, so they need neither the authors' code nor their weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from derain_zoo.cli import main
from derain_zoo.convert import convert
from derain_zoo.registry import model_registry
from derain_zoo.weights import WeightsError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official"
MODELS = sorted(path.stem for path in FIXTURES.glob("*.json"))

# one tensor per model whose place in the zoo network is known: (zoo key, authors' file, authors' key)
SPOT_CHECKS = {
    "estinet": ("sicm.stem.weight", "C_checkpoints_best.pth.tar", "module.E.conv1.weight"),
    "ddsa": ("embed.weight", "net_g_latest.pth", "params/patch_embed.proj.weight"),
    "rmfd": ("refine_net.heads.0.out2.weight", "model_epoch_100.pth", "multi_model_s2/output2.conv2d.weight"),
    "raintrn": ("head.0.weight", "raintrn_epoch_100.pth", "model/conv0.0.weight"),
}


def fixture(alias: str) -> dict:
    return json.loads((FIXTURES / f"{alias}.json").read_text())


def nest(flat: dict[str, Tensor]) -> dict:
    """'a/b' keys back into the nested dicts the authors' scripts save."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def random_tensor(key: str, shape: list[int], generator: torch.Generator) -> Tensor:
    """A tensor as a trained file holds it: counters are integers, BatchNorm variances positive."""
    if key.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.long)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=generator)
    return torch.randn(shape, generator=generator) * 0.05


def random_files(alias: str, folder: Path, edit=None) -> list[Path]:
    """The authors' files of ``alias`` with random tensors of the recorded shapes; ``edit`` may alter one."""
    generator = torch.Generator().manual_seed(0)
    paths = []
    for name, layout in fixture(alias)["files"].items():
        flat = {key: random_tensor(key, shape, generator) for key, shape in layout.items()}
        if edit is not None:
            edit(name, flat)
        paths.append(folder / name)
        torch.save(nest(flat), paths[-1])
    return paths


@pytest.mark.parametrize("alias", MODELS)
def test_the_authors_layout_converts_loads_strictly_and_records_its_source(alias: str, tmp_path: Path) -> None:
    paths = random_files(alias, tmp_path)
    written = convert(alias, paths, tmp_path / f"{alias}-official.pt")
    model = model_registry()[alias].from_weights(str(written))  # hash, keys and shapes checked, strict load
    manifest = json.loads(written.with_suffix(".json").read_text())
    assert manifest["init_args"]["variant"] == "code"
    assert manifest["source"]["files"] == [
        {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()} for path in paths
    ]
    zoo_key, file, authors_key = SPOT_CHECKS[alias]
    *parents, leaf = authors_key.split("/")
    saved = torch.load(tmp_path / file, weights_only=True)
    for parent in parents:
        saved = saved[parent]
    assert torch.equal(model.network.state_dict()[zoo_key], saved[leaf])


@pytest.mark.parametrize("alias", MODELS)
def test_a_missing_or_renamed_key_is_refused_naming_it(alias: str, tmp_path: Path) -> None:
    first_file = next(iter(fixture(alias)["files"]))
    victim = next(key for key in fixture(alias)["files"][first_file] if key.endswith("weight"))
    leaf = victim.split("/")[-1]

    def drop(name: str, flat: dict[str, Tensor]) -> None:
        if name == first_file:
            del flat[victim]

    def rename(name: str, flat: dict[str, Tensor]) -> None:
        if name == first_file:
            flat[victim.replace("weight", "weights")] = flat.pop(victim)

    missing_dir, renamed_dir = tmp_path / "missing", tmp_path / "renamed"
    missing_dir.mkdir()
    renamed_dir.mkdir()
    with pytest.raises(WeightsError, match=rf"missing .*{leaf.removeprefix('module.')}") as missing:
        convert(alias, random_files(alias, missing_dir, drop), tmp_path / "missing.pt")
    assert "\n" not in str(missing.value)
    with pytest.raises(WeightsError, match=r"unexpected .*weights") as renamed:
        convert(alias, random_files(alias, renamed_dir, rename), tmp_path / "renamed.pt")
    assert "missing" in str(renamed.value)
    assert not (tmp_path / "missing.pt").exists() and not (tmp_path / "renamed.pt").exists()


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    other = next(alias for alias in MODELS if alias != "estinet")
    with pytest.raises(WeightsError, match="is not ESTINet's"):
        convert("estinet", random_files(other, tmp_path), tmp_path / "out.pt")


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = random_files("estinet", tmp_path)
    target = tmp_path / "estinet-ntu.pt"
    target.write_bytes(b"mine")
    argv = ["weights", "convert", "--model=estinet", *(f"--from={path}" for path in paths), f"--output={target}"]
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        main(argv)
    assert target.read_bytes() == b"mine" and not target.with_suffix(".json").exists()
    main([*argv, "--overwrite"])
    assert capsys.readouterr().out.strip() == str(target)
    assert model_registry()["estinet"].from_weights(str(target)).hparams["variant"] == "code"


def test_output_must_be_a_pt_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"must end in \.pt"):
        convert("estinet", random_files("estinet", tmp_path), tmp_path / "out.pth")
