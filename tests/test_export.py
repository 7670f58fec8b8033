"""``medseg export --format onnx`` and ``medseg infer --runtime onnxruntime``: the masks of ONNX Runtime against
PyTorch's on the shared radiographs and CT (Dice by scikit-learn's F1 score), the bundles' ``inference_onnx.json``,
SegCaps' export, and the refusals (a network torch.export cannot trace, stale and foreign exports, bad flags)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import run as bundle_run
from sklearn.metrics import f1_score
from support import REPO_ROOT
from support.tiny_models import train_tiny_model

import medseg.export.onnx as onnx_export
from medseg.bundle import WORKFLOWS
from medseg.cli import main
from medseg.export import export_onnx
from medseg.inference import OnnxNetwork
from medseg.pipeline import ModelSettings, build_network

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install -e '.[onnx]') is not installed")

#: Radiographs of each shared hospital the backends are compared on.
RADIOGRAPHS = 6


def medseg(*argv: str) -> int:
    try:
        return main([str(arg) for arg in argv])
    except SystemExit as exit:
        return exit.code


def _radiographs(folder: Path, cases: slice) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a shared chest X-ray source: OpenIST's ``NAME.jpg`` and ``NAME@.png``, or
    Shenzhen's ``images/NAME.jpg`` and ``masks/NAME.jpg``."""
    if (folder / "images").is_dir():
        return [(image, folder / "masks" / image.name) for image in sorted(folder.glob("images/*.jpg"))[cases]]
    return [(image, image.with_name(f"{image.stem}@.png")) for image in sorted(folder.glob("*.jpg"))[cases]]


def _test_radiographs(real_data, n: int) -> list[Path]:
    """``n`` radiographs of each shared hospital that the fixture's model was not trained on."""
    sources = ("cxr_openist", "cxr_shenzhen")
    return [image for name in sources for image, _ in _radiographs(real_data(name), slice(-n, None))]


@pytest.fixture(scope="module")
def exported(real_data, tmp_path_factory):
    """``{"cxr": bundle, "ct": bundle}``: tiny U-Nets trained for seconds on shared data, exported by the CLI."""
    ct = real_data("ct_cip")
    radiographs = [pair for name in ("cxr_openist", "cxr_shenzhen") for pair in _radiographs(real_data(name), slice(8))]
    bundles = {"cxr": tmp_path_factory.mktemp("cxr-model"), "ct": tmp_path_factory.mktemp("ct-model")}
    train_tiny_model(bundles["cxr"], "cxr", radiographs)
    train_tiny_model(bundles["ct"], "ct", [(ct / "ct-64.nrrd", ct / "wholeLung-64.nrrd")])
    for bundle in bundles.values():
        assert medseg("export", "--model-dir", bundle, "--format", "onnx") == 0
        assert (bundle / "models" / "model.onnx").is_file()
    return bundles


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {path.name: np.asarray(nib.load(path).dataobj) for path in sorted(folder.glob("*_seg.nii.gz"))}


def _both_backends(bundle: Path, inputs: list[Path], out: Path) -> tuple[dict, dict]:
    for backend in ("pytorch", "onnxruntime"):
        code = medseg("infer", "--model-dir", bundle, "--input", *inputs, "--output", out / backend,
                      "--runtime", backend, "--probabilities")  # fmt: skip
        assert code == 0
    return _masks(out / "pytorch"), _masks(out / "onnxruntime")


def _assert_same_masks(reference: dict, exported: dict, cases: int) -> None:
    assert len(reference) == len(exported) == cases
    for name, mask in reference.items():
        assert 0.05 < mask.mean() < 0.6, f"{name}: a trained model's mask, not noise ({mask.mean():.3f})"
        dice = f1_score(mask.ravel() > 0, exported[name].ravel() > 0)
        assert dice >= 0.999, f"{name}: Dice {dice:.5f} between ONNX Runtime and PyTorch"


@pytest.mark.slow
def test_onnx_runtime_masks_match_pytorch_on_shared_radiographs(exported, real_data, tmp_path):
    reference, onnx = _both_backends(exported["cxr"], _test_radiographs(real_data, RADIOGRAPHS), tmp_path)
    _assert_same_masks(reference, onnx, 2 * RADIOGRAPHS)
    for name in reference:
        prob = name.replace("_seg", "_prob")
        torch_prob, onnx_prob = (
            nib.load(tmp_path / backend / prob).get_fdata() for backend in ("pytorch", "onnxruntime")
        )
        assert np.abs(torch_prob - onnx_prob).max() < 1e-4
    assert '"runtime": "onnxruntime"' in (tmp_path / "onnxruntime" / "summary.json").read_text()


@pytest.mark.slow
def test_onnx_runtime_masks_match_pytorch_on_the_shared_ct(exported, real_data, tmp_path):
    ct = real_data("ct_cip")
    reference, onnx = _both_backends(exported["ct"], [ct / "ct-64.nrrd", ct / "ct-64Dicom"], tmp_path)
    _assert_same_masks(reference, onnx, 2)
    assert reference["ct-64_seg.nii.gz"].shape == (64, 64, 79)  # the volume's own grid, slice by slice


@pytest.mark.slow
def test_bundle_inference_onnx_json_gives_inference_jsons_masks(exported, real_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT / "bundles" / "cxr_lung_unet")
    inputs = _test_radiographs(real_data, 2)
    for workflow in ("inference", "inference_onnx"):
        for image in inputs:
            bundle_run(config_file=list(WORKFLOWS[workflow]), bundle_root=str(exported["cxr"]), input_dir=str(image),
                       output_dir=str(tmp_path / workflow))  # fmt: skip
    _assert_same_masks(_masks(tmp_path / "inference"), _masks(tmp_path / "inference_onnx"), 4)


@pytest.mark.slow
def test_segcaps_exports_with_dynamic_axes(tmp_path):
    torch.manual_seed(0)
    settings = ModelSettings(task="luna16", network_name="segcaps_r3", spatial_size=(32, 32))
    network = build_network(settings).eval()
    (tmp_path / "models").mkdir()
    torch.save(network.state_dict(), tmp_path / "models" / "model.pt")
    settings.save(tmp_path / "models")
    export = export_onnx(tmp_path)
    assert export.dynamic_spatial
    image = torch.randn(3, 1, 48, 64)  # another batch and size than the traced example's
    with torch.no_grad():
        expected = network(image)
    np.testing.assert_allclose(OnnxNetwork(export.path, settings)(image), expected, atol=1e-4)


class TwoSlopes(torch.nn.Module):
    """A convolution, a PReLU with one slope, then one with a slope per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.shared = torch.nn.PReLU(init=0.37)
        self.per_channel = torch.nn.PReLU(num_parameters=2, init=0.1)
        with torch.no_grad():
            self.per_channel.weight.copy_(torch.tensor([0.2, 0.6]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.per_channel(self.shared(self.conv(x))).sum(1, keepdim=True)


def test_a_prelu_of_one_slope_is_exported_as_leaky_relu_of_that_slope(tmp_path, monkeypatch):
    import onnx

    torch.manual_seed(0)
    network = TwoSlopes().eval()
    settings = ModelSettings(task="cxr", network_name="unet2d", spatial_size=(16, 16))
    (tmp_path / "models").mkdir()
    torch.save(network.state_dict(), tmp_path / "models" / "model.pt")
    settings.save(tmp_path / "models")
    monkeypatch.setattr(onnx_export, "build_network", lambda settings: TwoSlopes())
    export = export_onnx(tmp_path)
    nodes = onnx.load(export.path).graph.node
    leaky = [node for node in nodes if node.op_type == "LeakyRelu"]
    assert len(leaky) == 1 and [node.op_type for node in nodes].count("PRelu") == 1  # per channel: kept
    assert onnx.helper.get_attribute_value(leaky[0].attribute[0]) == pytest.approx(0.37)
    image = torch.randn(2, 1, 16, 16)
    convolved = network.conv(image).detach().numpy()
    shared = np.maximum(convolved, 0) + 0.37 * np.minimum(convolved, 0)  # PReLU's definition, by hand
    slopes = np.array([0.2, 0.6]).reshape(1, 2, 1, 1)
    expected = (np.maximum(shared, 0) + slopes * np.minimum(shared, 0)).sum(1, keepdims=True)
    np.testing.assert_allclose(OnnxNetwork(export.path, settings)(image).numpy(), expected, atol=1e-5)


class DataDependent(torch.nn.Module):
    """A network whose control flow depends on its input's values: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.mean() > 0 else -self.conv(x)


def test_a_network_that_cannot_be_traced_is_refused_and_nothing_written(tmp_path, monkeypatch, capsys):
    settings = ModelSettings(task="cxr", network_name="unet2d", spatial_size=(16, 16))
    (tmp_path / "models").mkdir()
    torch.save(DataDependent().state_dict(), tmp_path / "models" / "model.pt")
    settings.save(tmp_path / "models")
    monkeypatch.setattr(onnx_export, "build_network", lambda settings: DataDependent())
    monkeypatch.setattr(onnx_export, "load_weights", lambda network, path, device, settings: None)
    assert medseg("export", "--model-dir", tmp_path) == 1
    error = capsys.readouterr().err
    assert str(tmp_path / "models" / "model.pt") in error and "cannot be traced by torch.export" in error
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == ["model.pt", "settings.json"]


@pytest.mark.slow
def test_stale_foreign_and_missing_exports_are_refused(exported, real_data, tmp_path, capsys):
    image = next(real_data("cxr_openist").glob("*.jpg"))

    def refused(bundle: Path, *flags: str) -> str:
        capsys.readouterr()
        code = medseg("infer", "--model-dir", bundle, "--input", image, "--output", tmp_path / "out", *flags)
        assert code == 2
        return capsys.readouterr().err

    bundle = tmp_path / "bundle"
    shutil.copytree(exported["cxr"], bundle)
    assert "mixed precision is PyTorch's" in refused(bundle, "--runtime", "onnxruntime", "--amp")
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    torch.save({key: value + 0.01 for key, value in state.items()}, bundle / "models" / "model.pt")  # retrained
    assert "exported from other weights" in refused(bundle, "--runtime", "onnxruntime")
    shutil.copy(exported["ct"] / "models" / "model.onnx", bundle / "models" / "model.onnx")  # another model's
    assert "trained as another model" in refused(bundle, "--runtime", "onnxruntime")
    (bundle / "models" / "model.onnx").write_bytes(b"not a model")
    assert "model.onnx: not an ONNX model" in refused(bundle, "--runtime", "onnxruntime")
    (bundle / "models" / "model.onnx").unlink()
    assert "medseg export --model-dir" in refused(bundle, "--runtime", "onnxruntime")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*_seg.nii.gz"))
