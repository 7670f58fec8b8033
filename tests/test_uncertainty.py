"""``medseg infer --uncertainty`` and ``--review-threshold``: the entropy against SciPy's, the border band against
SciPy's taxicab distance transform, the volume interval counted by hand, the summary recomputed from the written
files, and the exit status of a batch that needs review."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from support.tiny_models import TINY_UNET

from medseg.cli import main
from medseg.inference import binary_entropy, border_band, uncertainty_summary
from medseg.pipeline import ModelSettings, build_network


def medseg(*argv) -> int:
    try:
        return main([str(arg) for arg in argv])
    except SystemExit as exit:
        return exit.code


def test_entropy_is_scipys_in_bits():
    p = np.concatenate([[0.0, 1.0, 0.5], np.random.default_rng(0).random(100)])
    expected = [stats.entropy([value, 1 - value], base=2) for value in p]
    np.testing.assert_allclose(binary_entropy(p), expected, atol=1e-6)
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(1.0)


def _reference_band(mask: np.ndarray, band: int) -> np.ndarray:
    """Pixels at taxicab distance at most ``band`` from the other side of the boundary (SciPy's chamfer transform)."""
    inside = mask & (ndimage.distance_transform_cdt(mask, metric="taxicab") <= band)
    outside = ~mask & (ndimage.distance_transform_cdt(~mask, metric="taxicab") <= band)
    return inside | outside


@pytest.mark.parametrize("band", [1, 3])
def test_border_band_is_the_taxicab_neighbourhood_of_the_boundary_slice_by_slice(band):
    x, y = np.mgrid[:40, :36]
    mask = ((x - 14) ** 2 + (y - 12) ** 2 < 64) | ((x > 24) & (x < 37) & (y > 20) & (y < 34))  # a disk, a rectangle
    np.testing.assert_array_equal(border_band(mask, band), _reference_band(mask, band))
    volume = np.stack([mask, np.zeros_like(mask), np.ones_like(mask)], axis=-1)  # (x, y, z): slices apart
    expected = np.stack([_reference_band(mask, band), np.zeros_like(mask), np.zeros_like(mask)], axis=-1)
    np.testing.assert_array_equal(border_band(volume, band), expected)


def test_summary_counts_the_interval_and_averages_the_band_by_hand():
    probabilities = np.zeros((10, 10))
    probabilities[2:6, 2:6] = 0.95  # 16 confident pixels
    probabilities[6, 2:6] = 0.5  # 4 doubtful ones
    probabilities[7, 2:6] = 0.05  # below alpha
    mask = probabilities > 0.5
    summary, entropy = uncertainty_summary(probabilities, mask, unit_size=2.0, band=1)
    assert summary.volume_interval == (16 * 2.0, 20 * 2.0)
    in_band = _reference_band(mask, 1)
    assert summary.band_voxels == in_band.sum()
    assert summary.border_entropy == pytest.approx(entropy[in_band].mean())
    assert summary.mean_entropy == pytest.approx(entropy.mean())
    with pytest.raises(ValueError, match=r"\(10, 10\).*\(10, 9\)"):
        uncertainty_summary(probabilities, mask[:, :9], 1.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained tiny U-Net: probabilities near 0.5, uncertain everywhere (cases to review)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "models"
    settings = ModelSettings(task="cxr", network_name="unet2d", network_kwargs=TINY_UNET, spatial_size=(32, 32))
    folder.mkdir()
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder.parent


def test_uncertainty_outputs_and_review_exit_status(model, real_data, tmp_path, capsys):
    images = sorted(real_data("cxr_openist").glob("*.jpg"))[:2]
    out = tmp_path / "out"
    flags = ["--uncertainty", "--probabilities", "--threshold", "otsu"]  # a mask with a border, from noise
    assert (
        medseg("infer", "--model-dir", model, "--input", *images, "--output", out, *flags, "--review-threshold", 0) == 3
    )
    assert "2 to review" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["review"] == 2 and summary["review_threshold"] == 0
    for record in summary["cases"]:
        probabilities = nib.load(out / f"{record['case']}_prob.nii.gz").get_fdata()
        mask = np.asarray(nib.load(out / f"{record['case']}_seg.nii.gz").dataobj) > 0
        entropy = nib.load(record["outputs"]["entropy"]).get_fdata()
        np.testing.assert_allclose(entropy, stats.entropy([probabilities, 1 - probabilities], base=2), atol=1e-5)
        band = _reference_band(mask, record["border_band_pixels"])
        assert record["border_entropy"] == pytest.approx(entropy[band].mean(), abs=1e-5)
        assert record["border_band_pixels"] == round(3 * max(mask.shape) / 32)
        low, high = record["foreground_pixels_interval"]  # a JPEG: pixels, no physical spacing
        assert low <= record["foreground_pixels"] <= high and "foreground_mm2" not in record
    # an entropy never exceeds 1 bit: nothing to review, exit 0
    again = ["--output", tmp_path / "again", "--review-threshold", 1]
    assert medseg("infer", "--model-dir", model, "--input", *images, *again) == 0
    assert not list((tmp_path / "again").glob("*_entropy.nii.gz"))  # the map only with --uncertainty
    # a failed case outweighs a review: exit 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert medseg("infer", "--model-dir", model, "--input", images[0], bad, "--output", tmp_path / "mixed",
                  "--review-threshold", 0) == 1  # fmt: skip
    capsys.readouterr()
    assert (
        medseg("infer", "--model-dir", model, "--input", images[0], "--output", tmp_path / "x", "--review-threshold", 2)
        == 2
    )
    assert "an entropy in bits of a binary outcome lies in [0, 1]" in capsys.readouterr().err
