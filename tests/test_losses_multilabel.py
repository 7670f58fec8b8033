"""medseg's losses of several classes (softmax over ``C`` maps, one-hot targets) against independent references:
scikit-learn's macro Jaccard and Cohen's kappa of the class maps, MONAI's Tversky and Dice losses, torch's weighted
cross-entropy, values computed by hand in float64 NumPy; and, for two classes, today's binary losses.

Tolerances: 1e-6 absolute for float32 against float64 references (sums over at most a few hundred elements);
``torch.autograd.gradcheck``'s defaults in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, TverskyLoss
from sklearn.metrics import cohen_kappa_score, jaccard_score

from medseg.losses import (
    FocalTverskyLoss,
    KappaLoss,
    SoftIoULoss,
    WeightedBCELoss,
    compute_class_weights,
    compute_pos_weight,
    get_loss,
    multi_label_losses,
)

CLASSES = 4
HARD = 60.0  # logits this far apart give a softmax within 1e-26 of one-hot


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(35)


def _maps(rng, batch=3, classes=CLASSES, size=(9, 7)):
    """Two class maps ``(B, 1, H, W)``: a target and a prediction agreeing on about half the pixels."""
    target = torch.randint(0, classes, (batch, 1, *size), generator=rng)
    noise = torch.randint(0, classes, target.shape, generator=rng)
    predicted = torch.where(torch.rand(target.shape, generator=rng) < 0.5, target, noise)
    return target, predicted


def _onehot(labels: torch.Tensor, classes: int = CLASSES) -> torch.Tensor:
    return F.one_hot(labels[:, 0].long(), classes).movedim(-1, 1).float()


def _hard_logits(predicted: torch.Tensor) -> torch.Tensor:
    return HARD * _onehot(predicted)


# ------------------------------------------------------------------ soft IoU, per class


@pytest.mark.parametrize("include_background", [True, False])
def test_iou_of_hard_maps_is_one_minus_sklearn_macro_jaccard(include_background, rng):
    target, predicted = _maps(rng)
    labels = list(range(0 if include_background else 1, CLASSES))
    loss = SoftIoULoss(
        softmax=True, to_onehot_y=True, include_background=include_background, batch=True, smooth_nr=0, smooth_dr=0
    )(_hard_logits(predicted), target)
    expected = jaccard_score(target.flatten(), predicted.flatten(), labels=labels, average="macro")
    assert loss.item() == pytest.approx(1 - expected, abs=1e-6)
    per_item = SoftIoULoss(
        softmax=True,
        to_onehot_y=True,
        include_background=include_background,
        smooth_nr=0,
        smooth_dr=0,
        reduction="none",
    )(_hard_logits(predicted), target)
    for item in range(target.shape[0]):  # without batch: each image's per-class IoU (sklearn average=None)
        by_class = jaccard_score(
            target[item].flatten(), predicted[item].flatten(), labels=labels, average=None, zero_division=1.0
        )
        np.testing.assert_allclose(per_item[item].flatten().numpy(), 1 - by_class, atol=1e-6)


def test_iou_of_soft_maps_by_hand(rng):
    logits = torch.randn(2, CLASSES, 5, 6, generator=rng)
    target, _ = _maps(rng, batch=2, size=(5, 6))
    p = torch.softmax(logits.double(), 1).numpy()
    g = _onehot(target).double().numpy()
    intersection = (p * g).sum(axis=(2, 3))
    union = (p + g - p * g).sum(axis=(2, 3))  # the paper's element-wise union
    expected = (1 - (intersection + 1e-5) / (union + 1e-5)).mean()
    assert SoftIoULoss(softmax=True, to_onehot_y=True)(logits, target).item() == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------------ focal-Tversky, per class


@pytest.mark.parametrize("include_background", [True, False])
def test_focal_tversky_gamma_one_is_monai_tversky_of_several_classes(include_background, rng):
    logits = torch.randn(2, CLASSES, 6, 5, generator=rng)
    target, _ = _maps(rng, batch=2, size=(6, 5))
    kwargs = dict(softmax=True, to_onehot_y=True, include_background=include_background, alpha=0.3, beta=0.7)
    ours = FocalTverskyLoss(gamma=1.0, reduction="none", **kwargs)(logits, target)
    monai = TverskyLoss(reduction="none", **kwargs)(logits, target)
    torch.testing.assert_close(ours.flatten(), monai.flatten(), atol=1e-6, rtol=0)  # MONAI's "none": (B, C)
    half = dict(kwargs, alpha=0.5, beta=0.5)  # and with alpha = beta = 1/2, MONAI's Dice loss
    torch.testing.assert_close(
        FocalTverskyLoss(gamma=1.0, **half)(logits, target),
        DiceLoss(softmax=True, to_onehot_y=True, include_background=include_background)(logits, target),
        atol=1e-6,
        rtol=0,
    )


def test_focal_tversky_of_several_classes_by_hand_with_the_papers_defaults(rng):
    logits = torch.randn(3, CLASSES, 4, 4, generator=rng)
    target, _ = _maps(rng, size=(4, 4))
    p = torch.softmax(logits.double(), 1).numpy()
    g = _onehot(target).double().numpy()
    tp, fp, fn = (p * g).sum((2, 3)), (p * (1 - g)).sum((2, 3)), ((1 - p) * g).sum((2, 3))
    tversky = (tp + 1e-5) / (tp + 0.3 * fp + 0.7 * fn + 1e-5)
    expected = ((1 - tversky) ** 0.75).mean()
    loss = FocalTverskyLoss(softmax=True, to_onehot_y=True)(logits, target)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------------ kappa: multi-class Cohen's kappa


def test_kappa_of_hard_maps_is_one_minus_sklearn_cohen_kappa(rng):
    target, predicted = _maps(rng)
    batch = KappaLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=0, smooth_dr=0)
    assert batch(_hard_logits(predicted), target).item() == pytest.approx(
        1 - cohen_kappa_score(target.flatten(), predicted.flatten()), abs=1e-6
    )
    per_item = KappaLoss(softmax=True, to_onehot_y=True, smooth_nr=0, smooth_dr=0, reduction="none")
    values = per_item(_hard_logits(predicted), target)
    assert values.shape == (target.shape[0], 1, 1, 1)
    expected = [1 - cohen_kappa_score(t.flatten(), p.flatten()) for t, p in zip(target, predicted)]
    np.testing.assert_allclose(values.flatten().numpy(), expected, atol=1e-6)


def test_kappa_of_soft_maps_is_the_soft_confusion_matrix_kappa_by_hand(rng):
    logits = torch.randn(1, CLASSES, 6, 6, generator=rng)
    target, _ = _maps(rng, batch=1, size=(6, 6))
    p = torch.softmax(logits.double(), 1).numpy().reshape(CLASSES, -1)
    g = _onehot(target).double().numpy().reshape(CLASSES, -1)
    confusion = g @ p.T  # M_ij = sum over pixels of g_i p_j
    n = confusion.sum()
    observed = np.trace(confusion) / n
    chance = (confusion.sum(axis=1) * confusion.sum(axis=0)).sum() / n**2
    expected = 1 - (observed - chance) / (1 - chance)
    loss = KappaLoss(softmax=True, to_onehot_y=True, smooth_nr=0, smooth_dr=0)(logits, target)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_kappa_of_two_classes_is_the_binary_kappa(rng):
    z = torch.randn(2, 1, 7, 7, generator=rng)
    g = (torch.rand(z.shape, generator=rng) < 0.4).float()
    two = KappaLoss(softmax=True, reduction="none")(torch.cat([torch.zeros_like(z), z], 1), torch.cat([1 - g, g], 1))
    binary = KappaLoss(sigmoid=True, reduction="none")(z, g)
    torch.testing.assert_close(two, binary, atol=1e-6, rtol=0)


def test_kappa_of_several_classes_refuses_what_is_not_cohens_kappa(rng):
    logits, target = torch.randn(1, 3, 4, 4, generator=rng), torch.randint(0, 3, (1, 1, 4, 4), generator=rng)
    for kwargs in ({"published_form": True}, {"include_background": False}):
        with pytest.raises(ValueError, match="exact one, over every class"):
            KappaLoss(softmax=True, to_onehot_y=True, **kwargs)(logits, target)
    with pytest.raises(ValueError, match="segments one label"):
        get_loss("kappa_published", labels=2)


# ------------------------------------------------------------------ weighted cross-entropy, per class


def test_weighted_cross_entropy_is_torch_cross_entropy_summed_over_the_pixels(rng):
    logits = torch.randn(2, CLASSES, 5, 5, generator=rng)
    target, _ = _maps(rng, batch=2, size=(5, 5))
    weights = [1.0, 2.5, 0.5, 7.0]
    loss = WeightedBCELoss(pos_weight=weights, softmax=True, to_onehot_y=True)
    reference = F.cross_entropy(logits, target[:, 0], weight=torch.tensor(weights), reduction="none")
    # the mean over pixels (torch's own "mean" divides by the targets' summed weights instead)
    assert loss(logits, target).item() == pytest.approx(reference.mean().item(), abs=1e-6)
    none = WeightedBCELoss(pos_weight=weights, softmax=True, to_onehot_y=True, reduction="none")(logits, target)
    torch.testing.assert_close(none[:, 0], reference, atol=1e-6, rtol=0)
    one_number = WeightedBCELoss(pos_weight=2.0, softmax=True, to_onehot_y=True)(logits, target)
    every = F.cross_entropy(logits, target[:, 0], weight=torch.tensor([1.0, 2.0, 2.0, 2.0]), reduction="none")
    assert one_number.item() == pytest.approx(every.mean().item(), abs=1e-6)


def test_weighted_cross_entropy_of_two_classes_is_segcaps_weighted_bce(rng):
    z = torch.randn(2, 1, 6, 6, generator=rng)
    g = (torch.rand(z.shape, generator=rng) < 0.3).float()
    two = WeightedBCELoss(pos_weight=[1.0, 4.0], softmax=True)(
        torch.cat([torch.zeros_like(z), z], 1), torch.cat([1 - g, g], 1)
    )
    binary = WeightedBCELoss(pos_weight=4.0, sigmoid=True)(z, g)
    assert two.item() == pytest.approx(binary.item(), abs=1e-6)


def test_weighted_cross_entropy_refuses_a_weight_count_that_is_not_the_class_count(rng):
    logits, target = torch.randn(1, 3, 4, 4, generator=rng), torch.randint(0, 3, (1, 1, 4, 4), generator=rng)
    with pytest.raises(ValueError, match=r"2 weights for 3 classes of input \(1, 3, 4, 4\)"):
        WeightedBCELoss(pos_weight=[1.0, 2.0], softmax=True, to_onehot_y=True)(logits, target)
    with pytest.raises(ValueError, match="needs softmax=True"):
        WeightedBCELoss(pos_weight=[1.0, 2.0], sigmoid=True)


def test_class_weights_by_hand_and_segcaps_ratio_for_one_label():
    maps = [np.array([[0, 0, 1], [2, 2, 2]]), np.zeros((2, 3), int), np.array([[0, 0, 0], [0, 2, 1]])]
    # counted over maps with any label: background 2 + 4 = 6, label 1: 1 + 1, label 2: 3 + 1
    assert compute_class_weights(maps, labels=2) == pytest.approx([1.0, 6 / 2, 6 / 4])
    one_hot = [np.eye(3)[m].transpose(2, 0, 1) for m in maps]  # the same masks one-hot, background first
    assert compute_class_weights(one_hot, labels=2) == pytest.approx([1.0, 3.0, 1.5])
    binary = [(m > 0).astype(int) for m in maps]
    assert compute_class_weights(binary, labels=1) == pytest.approx([1.0, compute_pos_weight(binary)])
    with pytest.raises(ValueError, match=r"label\(s\) \[3\] have no pixel"):
        compute_class_weights(maps, labels=3)


# ------------------------------------------------------------------ every loss of several labels


def _two_class_from_binary(z: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([torch.zeros_like(z), z], 1), torch.cat([1 - g, g], 1)


@pytest.mark.parametrize("name", ["iou", "focal_tversky", "dice", "tversky"])
def test_region_losses_of_two_classes_without_background_are_the_binary_losses(name, rng):
    z = torch.randn(3, 1, 6, 6, generator=rng)
    g = (torch.rand(z.shape, generator=rng) < 0.4).float()
    two = get_loss(name, labels=2, include_background=False)(*_two_class_from_binary(z, g))
    binary = get_loss(name, network_output="logits")(z, g)
    assert two.item() == pytest.approx(binary.item(), abs=1e-6)


@pytest.mark.parametrize("name", ["iou", "focal_tversky", "kappa", "wbce"])
def test_gradients_of_several_classes(name, rng):
    logits = torch.randn(2, 3, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    target = _onehot(torch.randint(0, 3, (2, 1, 3, 4), generator=rng), 3).double()
    kwargs = {"pos_weight": [1.0, 3.0, 0.5]} if name == "wbce" else {}
    loss = get_loss(name, labels=2, **kwargs)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def test_every_multi_label_loss_trains_from_logits_and_one_hot_targets(rng):
    logits = torch.randn(2, 3, 8, 8, generator=rng, requires_grad=True)
    target = _onehot(torch.randint(0, 3, (2, 1, 8, 8), generator=rng), 3)
    assert set(multi_label_losses()) >= {"bce", "dice", "dice_bce", "focal", "focal_tversky", "iou", "kappa"}
    for name in multi_label_losses():
        kwargs = {"pos_weight": [1.0, 2.0, 3.0]} if name == "wbce" else {}
        value = get_loss(name, labels=2, **kwargs)(logits, target)
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.isfinite(value) and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    for name in ("margin", "kappa_published"):
        with pytest.raises(ValueError, match="segments one label"):
            get_loss(name, labels=2)
    with pytest.raises(ValueError, match="outputs logits"):
        get_loss("iou", network_output="probabilities", labels=2)
