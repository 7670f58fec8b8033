"""SegCaps augmentation: image and mask aligned, the papers' probabilities and magnitudes, SciPy/scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.util import random_noise

from medseg.transforms import (
    SEGCAPS_AUGMENTATION,
    Rand2DSimardElastic,
    Rand2DSimardElasticd,
    RandSaltAndPepper,
    RandSaltAndPepperd,
    segcaps_augmentation,
)

SIZE = (96, 80)
SPATIAL = [name for name in SEGCAPS_AUGMENTATION if name != "salt_and_pepper"]


def _only(*names: str, scale: float = 1.0) -> dict[str, float]:
    return {name: (scale if name in names else 0.0) for name in SEGCAPS_AUGMENTATION}


def _blob() -> torch.Tensor:
    """A binary (1, x, y) mask with no symmetry: two ellipses off centre."""
    x, y = np.meshgrid(np.arange(SIZE[0]), np.arange(SIZE[1]), indexing="ij")
    mask = ((x - 30) / 14) ** 2 + ((y - 28) / 9) ** 2 <= 1
    mask |= ((x - 62) / 8) ** 2 + ((y - 52) / 16) ** 2 <= 1
    return torch.as_tensor(mask[None], dtype=torch.float32)


def test_probabilities_are_the_capsule_iou_papers():
    assert SEGCAPS_AUGMENTATION == {
        "rotate": 0.1, "elastic": 0.2, "shift": 0.1, "shear": 0.1, "zoom": 0.1,
        "flip_horizontal": 0.1, "flip_vertical": 0.1, "salt_and_pepper": 0.1,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown augmentation\(s\) \['mirror'\]"):
        segcaps_augmentation(SIZE, probabilities={"mirror": 1.0})


@pytest.mark.parametrize("name", [*SPATIAL, "all"])
def test_image_equal_to_the_mask_stays_equal_to_it(name):
    """Transform an image that equals the mask: thresholded at 0.5 it must equal the transformed mask."""
    mask = _blob()
    probabilities = _only(*SPATIAL) if name == "all" else _only(name)
    pipeline = segcaps_augmentation(SIZE, probabilities=probabilities, elastic_sigma=6.0, elastic_affine=8.0)
    pipeline.set_random_state(seed=3)
    changed = 0
    for _ in range(4):
        out = pipeline({"image": mask.clone(), "label": mask.clone()})
        label = out["label"]
        assert set(torch.unique(label).tolist()) <= {0.0, 1.0}  # re-binarised
        changed += not torch.equal(label, mask)
        torch.testing.assert_close((out["image"] >= 0.5).float(), label, rtol=0, atol=0)
    assert changed >= 3  # the transform did something (a draw near the identity may not change the mask)


def test_salt_and_pepper_touches_the_image_only():
    mask = _blob()
    out = segcaps_augmentation(SIZE, probabilities=_only("salt_and_pepper"))(
        {"image": torch.full((1, *SIZE), 0.5), "label": mask.clone()}
    )
    torch.testing.assert_close(out["label"], mask)
    assert 0 < int((out["image"] != 0.5).sum()) < 0.1 * out["image"].numel()


def test_salt_and_pepper_statistics_match_scikit_image():
    shape = (1, 400, 400)
    ours = RandSaltAndPepper(prob=1.0, amount=0.04, salt_vs_pepper=0.2)
    ours.set_random_state(0)
    noisy = ours(torch.full(shape, 0.5)).numpy()
    reference = random_noise(np.full(shape, 0.5), mode="s&p", amount=0.04, salt_vs_pepper=0.2, rng=0)
    n = noisy.size
    for image in (noisy, reference):
        salt, pepper = (image == 1.0).sum(), (image == 0.0).sum()
        assert salt + pepper + (image == 0.5).sum() == n
        # binomial counts: within 5 standard deviations of n p
        for count, p in ((salt + pepper, 0.04), (salt, 0.04 * 0.2), (pepper, 0.04 * 0.8)):
            assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)), (count, n * p)


def test_salt_and_pepper_dictionary_shares_the_pattern_between_keys():
    transform = RandSaltAndPepperd(["a", "b"], prob=1.0)
    transform.set_random_state(1)
    out = transform(
        {"a": torch.full((1, 50, 50), 0.5), "b": torch.full((1, 50, 50), 0.5), "label": torch.zeros(1, 50, 50)}
    )
    torch.testing.assert_close(out["a"], out["b"])
    assert int(out["label"].sum()) == 0


def test_elastic_warp_matches_scipy_map_coordinates():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((1, 60, 80)), (0, 3, 3)).astype(np.float32)
    elastic = Rand2DSimardElastic(alpha=300.0, sigma=8.0, affine_range=6.0, prob=1.0)
    elastic.set_random_state(1)
    out = elastic(torch.as_tensor(image)).numpy()[0]
    # the reference: SegCaps' formulation written with SciPy, from the same random draws
    noise = elastic.noise
    field = np.stack([ndimage.gaussian_filter(u, 8.0, mode="mirror", truncate=2.0) * 300.0 for u in noise])
    assert 1.0 < np.abs(field).max() < 60.0
    inverse = np.linalg.inv(elastic.affine((60, 80)))
    index = np.stack(np.meshgrid(np.arange(60.0), np.arange(80.0), indexing="ij")) + field
    source = np.einsum("ij,jhw->ihw", inverse[:2, :2], index) + inverse[:2, 2, None, None]
    reference = ndimage.map_coordinates(image[0], source, order=1, mode="constant", cval=0.0)
    inside = (source[0] >= 0) & (source[0] <= 59) & (source[1] >= 0) & (source[1] <= 79)
    far_outside = (source[0] < -1) | (source[0] > 60) | (source[1] < -1) | (source[1] > 80)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(out[inside], reference[inside], atol=1e-5)
    np.testing.assert_array_equal(out[far_outside], 0.0)


def test_elastic_affine_maps_the_three_points():
    elastic = Rand2DSimardElastic(affine_range=50.0, prob=1.0)
    elastic.set_random_state(2)
    elastic.randomize((512, 512))
    points = np.array([[426.0, 426.0], [426.0, 86.0], [86.0, 86.0]])  # centre 256 +- 512 // 3
    moved = elastic.affine((512, 512)) @ np.vstack([points.T, np.ones(3)])
    np.testing.assert_allclose(moved[:2].T, points + elastic.point_shift, atol=1e-9)
    assert np.abs(elastic.point_shift).max() <= 50.0


def test_elastic_dictionary_deforms_every_key_alike():
    mask = _blob()
    transform = Rand2DSimardElasticd(["image", "label"], alpha=200.0, sigma=6.0, affine_range=5.0, prob=1.0)
    transform.set_random_state(0)
    out = transform({"image": mask.clone(), "label": mask.clone()})
    torch.testing.assert_close(out["image"], out["label"])
    assert not torch.equal(out["label"], mask)


def test_zoom_magnifies_by_four_thirds():
    square = torch.zeros(1, 120, 120)
    square[0, 45:75, 45:75] = 1  # 30 pixels wide
    out = segcaps_augmentation((120, 120), probabilities=_only("zoom"))(
        {"image": square.clone(), "label": square.clone()}
    )
    width = int(out["label"][0].sum(dim=0).max())
    assert abs(width - 40) <= 1  # Keras zoom 0.75: 30 / 0.75


def test_shift_stays_within_a_fifth_of_the_size():
    mask = torch.zeros(1, *SIZE)
    mask[0, 44:52, 36:44] = 1
    centre = np.argwhere(mask[0].numpy()).mean(axis=0)
    pipeline = segcaps_augmentation(SIZE, probabilities=_only("shift"))
    pipeline.set_random_state(seed=0)
    shifts = []
    for _ in range(30):
        label = pipeline({"image": mask.clone(), "label": mask.clone()})["label"]
        shifts.append(np.argwhere(label[0].numpy()).mean(axis=0) - centre)
    shifts = np.abs(np.array(shifts))
    assert (shifts <= 0.2 * np.array(SIZE) + 1).all() and (shifts.max(axis=0) > 0.1 * np.array(SIZE)).all()


def test_flip_happens_with_its_probability_and_rotation_within_45_degrees():
    mask = _blob()
    pipeline = segcaps_augmentation(SIZE, probabilities={**_only(), "flip_horizontal": 0.1})
    pipeline.set_random_state(seed=0)
    flips = sum(not torch.equal(pipeline({"image": mask, "label": mask})["label"], mask) for _ in range(1000))
    assert abs(flips - 100) < 5 * math.sqrt(1000 * 0.1 * 0.9)
    bar = torch.zeros(1, 81, 81)
    bar[0, 10:71, 39:42] = 1  # along x
    rotate = segcaps_augmentation((81, 81), probabilities=_only("rotate"))
    rotate.set_random_state(seed=1)
    for _ in range(20):
        points = np.argwhere(rotate({"image": bar, "label": bar})["label"][0].numpy()) - 40.0
        direction = np.linalg.svd(points - points.mean(axis=0))[2][0]
        angle = math.degrees(math.acos(min(1.0, abs(direction[0]))))
        assert angle <= 45.0 + 2.0


def test_same_seed_same_augmentation():
    mask = _blob()
    image = torch.rand(1, *SIZE, generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        pipeline = segcaps_augmentation(SIZE, probabilities=_only(*SEGCAPS_AUGMENTATION, scale=0.5), elastic_sigma=6.0)
        pipeline.set_random_state(seed=11)
        runs.append([pipeline({"image": image.clone(), "label": mask.clone()}) for _ in range(4)])
    for a, b in zip(*runs):
        torch.testing.assert_close(a["image"], b["image"])
        torch.testing.assert_close(a["label"], b["label"])
