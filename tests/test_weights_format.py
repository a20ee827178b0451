"""Weights as safetensors with model cards: every claim a card or manifest makes is recomputed from the files.

As torchvision tests its weights' ``meta`` (parameter count, file size, hash), each shipped file's
sha256, size and parameter count are computed here and compared with its manifest, its card's
front matter and its own safetensors metadata. Files of the older format (``.pt``) still load and
convert to safetensors bit for bit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import safetensors
import torch
import yaml

from derain_zoo import weights as shipped_weights
from derain_zoo.models import J4RNet
from derain_zoo.registry import model_registry
from derain_zoo.weights import WEIGHTS_DIR_ENV, WeightsError, cards, read_state_dict, safetensors_format

SHIPPED = shipped_weights.shipped(Path(shipped_weights.__file__).parent)
CONF = Path(__file__).resolve().parent / "conf"
TINY_ARGS = yaml.safe_load((CONF / "j4rnet.yaml").read_text())["model"]["init_args"]
WHEEL_LIMIT_BYTES = 100 * 2**20


def _id(entry: shipped_weights.Shipped) -> str:
    return f"{entry.model}-{entry.name}"


def test_weights_ship_as_safetensors_only():
    folder = Path(shipped_weights.__file__).parent
    assert SHIPPED and all(entry.path.suffix == ".safetensors" for entry in SHIPPED)
    assert not list(folder.glob("*.pt")) and not list(folder.glob("*.pth"))


@pytest.mark.parametrize("entry", SHIPPED, ids=_id)
def test_every_claim_of_a_card_and_manifest_is_what_the_file_holds(entry):
    data = entry.path.read_bytes()
    card = cards.read_front_matter(cards.card_path(entry))["derain_zoo"]
    model = model_registry()[entry.model](**entry.init_args)
    parameters = sum(p.numel() for p in model.parameters())
    for claims in (entry.manifest, card):
        assert claims["sha256"] == hashlib.sha256(data).hexdigest()
        assert claims["size_bytes"] == len(data) == entry.path.stat().st_size
        assert claims["parameters"] == parameters
        assert claims["file"] == entry.path.name
    assert card["architecture"] == entry.init_args and (card["model"], card["name"]) == (entry.model, entry.name)
    with safetensors.safe_open(entry.path, "pt") as stored:
        metadata = stored.metadata()
        held = {name for name, _ in model.named_parameters()} & set(stored.keys())
        assert sum(torch.Size(stored.get_slice(name).get_shape()).numel() for name in held) == parameters
    assert (metadata["model"], metadata["name"]) == (entry.model, entry.name)
    assert json.loads(metadata["architecture"]) == entry.init_args


@pytest.mark.parametrize("entry", SHIPPED, ids=_id)
def test_every_card_is_generated_from_its_manifest_with_the_protocol_of_each_score(entry):
    path = cards.card_path(entry)
    assert path.read_text() == cards.card_text(entry, entry.manifest["parameters"], cards._model_facts(entry)[1]), (
        f"{path.name} is out of date: run 'derain-zoo weights cards'"
    )
    front = cards.read_front_matter(path)
    assert front["license"] == "mit" and front["datasets"] == [entry.manifest["data_version"]]
    (index,) = front["model-index"]
    a1 = next(result for result in index["results"] if result["dataset"]["split"] == "frames 1-48")
    psnr = next(metric for metric in a1["metrics"] if metric["name"] == "PSNR-Y")
    assert psnr["value"] == pytest.approx(entry.manifest["scores"]["a1"]["psnr_y"], abs=1e-4)
    assert psnr["args"]["channel"].startswith("Y (BT.601") and psnr["args"]["convention"] == "BasicSR"
    assert psnr["args"]["frames"] == "frames 1-48"
    assert {metric["type"] for result in index["results"] for metric in result["metrics"]} == set(front["metrics"])


def test_shipped_weights_fit_in_a_wheel():
    folder = Path(shipped_weights.__file__).parent
    assert sum(path.stat().st_size for path in folder.iterdir() if path.is_file()) < WHEEL_LIMIT_BYTES


# ---------------------------------------------------------------------------------------------- older files
def _legacy_pt(model: J4RNet, folder: Path, name: str = "old-cpu") -> Path:
    """What ``export_weights`` wrote before safetensors: a torch.save payload and a manifest naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    pt = folder / f"j4rnet-{name}.pt"
    torch.save({"state_dict": shipped_weights.fp16_state_dict(model), "model": "j4rnet"}, pt)
    manifest = {
        "model": "j4rnet",
        "name": name,
        "file": pt.name,
        "sha256": hashlib.sha256(pt.read_bytes()).hexdigest(),
        "size_bytes": pt.stat().st_size,
        "init_args": {key: TINY_ARGS[key] for key in J4RNet.architecture_args},
        "recipe": "tests/conf/j4rnet.yaml",
        "data_version": "test",
        "scores": {"a1": {"psnr_y": 30.0, "ssim_y": 0.9, "frames": 48}},
    }
    pt.with_suffix(".json").write_text(json.dumps(manifest))
    return pt


@pytest.fixture
def tiny_model() -> J4RNet:
    torch.manual_seed(0)
    return J4RNet(**TINY_ARGS)


def _same_state(state: dict, model: J4RNet) -> bool:
    return all(torch.equal(state[key], value) for key, value in shipped_weights.fp16_state_dict(model).items())


def test_old_pt_files_still_load_by_name_and_by_path(tmp_path, monkeypatch, tiny_model):
    pt = _legacy_pt(tiny_model, tmp_path / "old")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(pt.parent))
    by_name, entry, _ = read_state_dict("j4rnet", "old-cpu")
    assert entry is not None and entry.path == pt and _same_state(by_name, tiny_model)
    loaded = J4RNet.from_weights(str(pt)).state_dict()  # the manifest beside the path brings the architecture
    for key, tensor in tiny_model.state_dict().items():
        assert torch.equal(loaded[key], tensor.half().to(tensor.dtype) if tensor.is_floating_point() else tensor)


def test_a_lightning_checkpoint_still_loads_as_weights(tmp_path, tiny_model):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": tiny_model.state_dict(), "derain_zoo_model": "j4rnet", "global_step": 3}, ckpt)
    state, entry, _ = read_state_dict("j4rnet", str(ckpt))
    assert entry is None and all(torch.equal(state[k], v) for k, v in tiny_model.state_dict().items())


def test_convert_rewrites_a_pt_as_safetensors_bit_for_bit(tmp_path, capsys, tiny_model):
    pt = _legacy_pt(tiny_model, tmp_path)
    before = torch.load(pt, weights_only=True)["state_dict"]
    old_sha = json.loads(pt.with_suffix(".json").read_text())["sha256"]
    shipped_weights.main(["upgrade", "--dir", str(tmp_path)])
    target = pt.with_suffix(".safetensors")
    assert str(target) in capsys.readouterr().out and not pt.exists()
    entry = shipped_weights.read_manifest(pt.with_suffix(".json"))
    assert entry.path == target and entry.manifest["converted_from"] == {"file": pt.name, "sha256": old_sha}
    after, _, _ = read_state_dict("j4rnet", str(target))  # through the manifest beside it: sha256 checked
    assert after.keys() == before.keys()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert cards.read_front_matter(cards.card_path(entry))["derain_zoo"]["sha256"] == entry.manifest["sha256"]


def test_a_damaged_safetensors_file_is_refused_in_one_line(tmp_path, tiny_model):
    path = shipped_weights.export_weights(tiny_model, "mine", tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WeightsError, match=r"j4rnet-mine.safetensors is \d+ bytes, its manifest says"):
        read_state_dict("j4rnet", str(path))
    path.with_suffix(".json").unlink()  # without a manifest the file itself must be refused
    with pytest.raises(WeightsError, match=r"j4rnet-mine.safetensors is not a readable safetensors file"):
        read_state_dict("j4rnet", str(path))


def test_safetensors_metadata_names_the_model_so_other_models_refuse_it(tmp_path, tiny_model):
    path = shipped_weights.export_weights(tiny_model, "mine", tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="holds model 'j4rnet', not 'raintrn'; pass --model=j4rnet"):
        read_state_dict("raintrn", str(path))
    assert safetensors_format.metadata_of(path.read_bytes(), str(path))["model"] == "j4rnet"
