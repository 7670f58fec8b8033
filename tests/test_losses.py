"""medseg's losses against independent references: the papers' closed forms, scikit-learn, MONAI's
losses and published test values, torch's BCE, and values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss
from sklearn.metrics import cohen_kappa_score, jaccard_score

from medseg.losses import (
    EXACT_CHECK_CALLS,
    LOSSES,
    FocalTverskyLoss,
    KappaLoss,
    MarginLoss,
    SoftIoULoss,
    WeightedBCELoss,
    compute_pos_weight,
    get_loss,
)

MEDSEG_LOSSES = {
    "iou": SoftIoULoss,
    "kappa": KappaLoss,
    "focal_tversky": FocalTverskyLoss,
    "wbce": lambda **kw: WeightedBCELoss(pos_weight=3.0, **kw),
    "margin": MarginLoss,
}


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def _hard(shape, rng, p=0.4):
    return (torch.rand(shape, generator=rng) < p).float()


# ------------------------------------------------------------------ soft IoU


def test_iou_matches_monai_published_jaccard_case():
    # MONAI's DiceLoss test case with sigmoid and jaccard=True: 0.470451
    x = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
    y = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    assert SoftIoULoss(sigmoid=True)(x, y).item() == pytest.approx(0.470451, abs=1e-6)
    # MONAI smooths 2I and 2U instead of I and U: the same value up to the 1e-5 smoothing terms
    assert SoftIoULoss(sigmoid=True)(x, y).item() == pytest.approx(
        DiceLoss(sigmoid=True, jaccard=True)(x, y).item(), abs=1e-5
    )


def test_iou_by_hand():
    p = torch.tensor([0.2, 0.8, 0.6, 0.0], dtype=torch.float64).view(1, 1, 2, 2)
    g = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64).view(1, 1, 2, 2)
    # I = 0.8 + 0.6 = 1.4; U = sum(p + g - p g) = 0.2 + 1 + 1 + 0 = 2.2
    loss = SoftIoULoss(smooth_nr=0, smooth_dr=0)(p, g)
    assert loss.item() == pytest.approx(1 - 1.4 / 2.2, abs=1e-7)


def test_iou_gradient_is_the_papers_closed_form(rng):
    g = _hard((1, 1, 6, 7), rng)
    p = torch.rand((1, 1, 6, 7), generator=rng, dtype=torch.float64).requires_grad_()
    SoftIoULoss(smooth_nr=0, smooth_dr=0)(p, g).backward()
    pd = p.detach()
    intersection = (pd * g).sum()
    union = (pd + g - pd * g).sum()
    expected = torch.where(g == 1, -1.0 / union, intersection / union**2)
    torch.testing.assert_close(p.grad, expected.to(p.grad.dtype), rtol=1e-10, atol=1e-12)


def test_iou_on_hard_masks_is_one_minus_sklearn_jaccard(rng):
    for _ in range(5):
        p, g = _hard((1, 1, 9, 11), rng), _hard((1, 1, 9, 11), rng)
        expected = 1 - jaccard_score(g.flatten().numpy(), p.flatten().numpy())
        assert SoftIoULoss(smooth_nr=0, smooth_dr=0)(p, g).item() == pytest.approx(expected, abs=1e-6)


def test_iou_batch_sums_over_the_minibatch_before_the_ratio(rng):
    p, g = torch.rand((3, 1, 5, 5), generator=rng), _hard((3, 1, 5, 5), rng)
    i = (p * g).sum()
    u = (p + g - p * g).sum()
    assert SoftIoULoss(batch=True, smooth_nr=0, smooth_dr=0)(p, g).item() == pytest.approx(1 - (i / u).item(), abs=1e-6)
    per_item = [1 - ((p[b] * g[b]).sum() / (p[b] + g[b] - p[b] * g[b]).sum()).item() for b in range(3)]
    assert SoftIoULoss(smooth_nr=0, smooth_dr=0)(p, g).item() == pytest.approx(np.mean(per_item), abs=1e-6)


def test_iou_multiclass_softmax_onehot_matches_monai(rng):
    logits = torch.randn((2, 4, 6, 6), generator=rng)
    labels = torch.randint(0, 4, (2, 1, 6, 6), generator=rng).float()
    for include_background in (True, False):
        kwargs = dict(softmax=True, to_onehot_y=True, include_background=include_background)
        ours = SoftIoULoss(**kwargs, reduction="none")(logits, labels)
        monai = DiceLoss(**kwargs, jaccard=True, reduction="none")(logits, labels)
        assert ours.shape == monai.shape == (2, 4 - (not include_background), 1, 1)
        torch.testing.assert_close(ours, monai)


def test_iou_3d_and_reduction_shapes(rng):
    p, g = torch.rand((2, 3, 4, 5, 6), generator=rng), _hard((2, 3, 4, 5, 6), rng)
    assert SoftIoULoss(reduction="none")(p, g).shape == (2, 3, 1, 1, 1)
    assert SoftIoULoss(reduction="none", batch=True)(p, g).shape == (1, 3, 1, 1, 1)
    none = SoftIoULoss(reduction="none")(p, g)
    assert SoftIoULoss(reduction="sum")(p, g).item() == pytest.approx(none.sum().item(), abs=1e-5)
    assert SoftIoULoss()(p, g).item() == pytest.approx(none.mean().item(), abs=1e-6)
    torch.testing.assert_close(none, DiceLoss(jaccard=True, reduction="none")(p, g))


def test_include_background_false_drops_channel_zero(rng):
    p, g = torch.rand((2, 3, 5, 5), generator=rng), _hard((2, 3, 5, 5), rng)
    for loss in (SoftIoULoss, KappaLoss, FocalTverskyLoss):
        torch.testing.assert_close(loss(include_background=False)(p, g), loss()(p[:, 1:], g[:, 1:]))


# ------------------------------------------------------------------ kappa


def test_kappa_on_hard_masks_is_one_minus_sklearn_cohen_kappa(rng):
    for density in (0.1, 0.4, 0.7):
        p, g = _hard((1, 1, 12, 10), rng, density), _hard((1, 1, 12, 10), rng, 0.4)
        expected = 1 - cohen_kappa_score(g.flatten().numpy(), p.flatten().numpy())
        assert KappaLoss(smooth_nr=0, smooth_dr=0)(p, g).item() == pytest.approx(expected, abs=1e-6)
        assert KappaLoss()(p, g).item() == pytest.approx(expected, abs=1e-4)  # default smoothing


def test_kappa_soft_equals_observed_and_chance_agreement(rng):
    # the report's definition, eq. 18-22: L = (1 - p_o) / (1 - p_c) with soft agreement counts
    p = torch.rand((1, 1, 8, 8), generator=rng, dtype=torch.float64)
    g = _hard((1, 1, 8, 8), rng).double()
    n = p.numel()
    p_o = ((p * g).sum() + ((1 - p) * (1 - g)).sum()) / n
    p_c = (p.sum() * g.sum() + (1 - p).sum() * (1 - g).sum()) / n**2
    assert KappaLoss(smooth_nr=0, smooth_dr=0)(p, g).item() == pytest.approx(((1 - p_o) / (1 - p_c)).item(), rel=1e-6)


def test_kappa_published_form_is_the_reports_eq_26_by_hand():
    p = torch.tensor([0.9, 0.2, 0.7, 0.1]).view(1, 1, 2, 2)
    g = torch.tensor([1.0, 0.0, 1.0, 1.0]).view(1, 1, 2, 2)
    spg, sp, sg, n = 0.9 + 0.7 + 0.1, 1.9, 3.0, 4
    expected = 1 - (2 * spg - sp * sg / n) / (sp + sg - 2 * spg / n)
    loss = KappaLoss(published_form=True, smooth_nr=0, smooth_dr=0)(p, g)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # the two forms differ: the published one does not vanish for a perfect prediction
    assert KappaLoss(smooth_nr=0, smooth_dr=0)(g, g).item() == pytest.approx(0, abs=1e-7)
    assert KappaLoss(published_form=True, smooth_nr=0, smooth_dr=0)(g, g).item() != pytest.approx(0, abs=1e-3)


# ------------------------------------------------------------------ focal-Tversky


def test_focal_tversky_gamma_one_is_monai_tversky(rng):
    logits, g = torch.randn((2, 2, 7, 7), generator=rng), _hard((2, 2, 7, 7), rng)
    for alpha, beta in ((0.3, 0.7), (0.7, 0.3), (0.5, 0.5)):
        for batch in (False, True):
            kwargs = dict(alpha=alpha, beta=beta, sigmoid=True, batch=batch, smooth_nr=1.0, smooth_dr=1.0)
            torch.testing.assert_close(
                FocalTverskyLoss(gamma=1.0, **kwargs)(logits, g), TverskyLoss(**kwargs)(logits, g)
            )


def test_focal_tversky_half_half_is_dice(rng):
    p, g = torch.rand((2, 1, 7, 7), generator=rng), _hard((2, 1, 7, 7), rng)
    ours = FocalTverskyLoss(alpha=0.5, beta=0.5, gamma=1.0, smooth_nr=0, smooth_dr=0)(p, g)
    torch.testing.assert_close(ours, DiceLoss(smooth_nr=0, smooth_dr=0)(p, g))


def test_focal_tversky_by_hand_with_paper_defaults():
    p = torch.tensor([0.9, 0.4, 0.3, 0.0]).view(1, 1, 2, 2)
    g = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    tp, fp, fn = 0.9 + 0.4, 0.3, 0.1 + 0.6
    ti = tp / (tp + 0.3 * fp + 0.7 * fn)
    loss = FocalTverskyLoss(smooth_nr=0, smooth_dr=0)(p, g)  # alpha 0.3, beta 0.7, gamma 0.75
    assert loss.item() == pytest.approx((1 - ti) ** 0.75, abs=1e-6)


def test_focal_tversky_penalises_false_negatives_more():
    g = torch.zeros(1, 1, 4, 4)
    g[..., :2, :] = 1
    missed = g.clone()
    missed[..., 0, :2] = 0  # two false negatives
    extra = g.clone()
    extra[..., 3, :2] = 1  # two false positives
    loss = FocalTverskyLoss()
    assert loss(missed, g) > loss(extra, g)


# ------------------------------------------------------------------ weighted BCE and margin


def test_wbce_logits_match_torch_bce_with_logits(rng):
    x, g = torch.randn((2, 1, 9, 9), generator=rng) * 4, _hard((2, 1, 9, 9), rng)
    for w in (1.0, 2.5, 28.9):
        ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))(x, g)
        torch.testing.assert_close(WeightedBCELoss(pos_weight=w, sigmoid=True)(x, g), ref)


def test_wbce_probabilities_by_hand_with_keras_clipping():
    p = torch.tensor([0.0, 0.25, 1.0, 0.5], dtype=torch.float64).view(1, 1, 2, 2)
    g = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64).view(1, 1, 2, 2)
    w, eps = 3.0, 1e-7
    terms = [-w * np.log(eps), -np.log(0.75), -np.log(eps), -w * np.log(0.5)]
    loss = WeightedBCELoss(pos_weight=w)(p, g)
    assert loss.item() == pytest.approx(np.mean(terms), rel=1e-5)
    assert WeightedBCELoss(pos_weight=w, reduction="none")(p, g).shape == p.shape


def test_wbce_logits_and_probabilities_agree(rng):
    x, g = torch.randn((1, 1, 6, 6), generator=rng, dtype=torch.float64), _hard((1, 1, 6, 6), rng).double()
    a = WeightedBCELoss(pos_weight=2.0, sigmoid=True)(x, g)
    b = WeightedBCELoss(pos_weight=2.0)(torch.sigmoid(x), g)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_wbce_extreme_logits_are_finite():
    x = torch.tensor([-200.0, 200.0, -200.0, 200.0]).view(1, 1, 2, 2).requires_grad_()
    g = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    loss = WeightedBCELoss(pos_weight=5.0, sigmoid=True)(x, g)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert loss.item() == pytest.approx((5 * 200 + 200) / 4, rel=1e-6)


def test_margin_loss_by_hand_and_against_the_keras_formula():
    p = torch.tensor([0.95, 0.5, 0.05, 0.3]).view(1, 1, 2, 2)
    g = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    # positives below 0.9 cost 0.5 (0.9 - p)^2; negatives above 0.1 cost 0.25 (p - 0.1)^2
    assert MarginLoss()(p, g).item() == pytest.approx((0 + 0.5 * 0.16 + 0 + 0.25 * 0.04) / 4, abs=1e-7)

    def keras_margin(labels, raw, margin=0.4, downweight=0.5, pos_weight=2.0):  # the official code's terms
        logits = raw - 0.5
        positive = pos_weight * labels * (logits < margin) * (logits - margin) ** 2
        negative = (1 - labels) * (logits > -margin) * (logits + margin) ** 2
        return np.mean(0.5 * positive + downweight * 0.5 * negative)

    rng = np.random.default_rng(1)
    raw, labels = rng.random((1, 1, 8, 8)), (rng.random((1, 1, 8, 8)) > 0.5).astype(float)
    ours = MarginLoss(pos_weight=2.0)(torch.from_numpy(raw), torch.from_numpy(labels))
    assert ours.item() == pytest.approx(keras_margin(labels, raw), rel=1e-6)


def test_pos_weight_from_masks_feeds_wbce():
    masks = [np.pad(np.ones((2, 2)), 1), np.zeros((4, 4))]  # 4 positive, 12 negative; the empty mask is ignored
    w = compute_pos_weight(masks)
    assert w == pytest.approx(3.0)
    assert get_loss("wbce", pos_weight=w).pos_weight.item() == pytest.approx(3.0)


# ------------------------------------------------------------------ API, options and robustness


def test_registry_returns_monai_losses_where_monai_has_them():
    expected = {
        "dice": DiceLoss,
        "gdl": GeneralizedDiceLoss,
        "tversky": TverskyLoss,
        "focal": FocalLoss,
        "dice_bce": DiceCELoss,
    }
    for name, cls in expected.items():
        assert type(get_loss(name)) is cls
    assert type(get_loss("iou", sigmoid=True)) is SoftIoULoss and get_loss("iou", sigmoid=True).sigmoid
    required = {"bce", "wbce", "iou", "dice", "gdl", "tversky", "focal", "focal_tversky", "dice_bce", "kappa", "margin"}
    assert required <= set(LOSSES)


def _registry_kwargs(name):
    return {"pos_weight": 3.0} if LOSSES[name].needs_pos_weight else {}


def _perfect_loss(name):
    """The loss of a perfect prediction of the test's target (56 of 256 pixels per image): zero, except for the
    kappa report's eq. 26, whose value for p = g is 1 - (2 S - S^2 / n) / (2 S - 2 S / n) with S = 56, n = 256."""
    if name != "kappa_published":
        return 0.0
    s, n = 56.0, 256.0
    return 1 - (2 * s - s * s / n) / (2 * s - 2 * s / n)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registry_builds_each_loss_for_the_network_output(name):
    """A perfect prediction, given as the network's raw output, has the closed-form loss; a wrong one is far above.

    Logits of a perfect prediction: +-12 (sigmoid 1 - 6e-6); probabilities: exactly 0 and 1 (SegCaps' capsule
    lengths), for which a logits-only loss (MONAI's focal, Dice-CE) must be wrapped to read probabilities.
    """
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 3:10] = 1
    for output, perfect, wrong in (
        ("logits", 24 * target - 12, 12 - 24 * target),
        ("probabilities", target.clone(), 1 - target),
    ):
        loss = get_loss(name, network_output=output, **_registry_kwargs(name))
        best, worst = loss(perfect, target).item(), loss(wrong, target).item()
        assert best == pytest.approx(_perfect_loss(name), abs=1e-3) and worst > 0.2, (name, output, best, worst)
        # MONAI's convention without network_output: what the caller passes is what the loss gets
        assert type(get_loss(name, **_registry_kwargs(name))) is type(LOSSES[name].factory(**_registry_kwargs(name)))


def test_probability_input_equals_the_logits_loss():
    logits = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    target = (logits > 0.3).float()
    for name in ("focal", "dice_bce"):
        from_logits = get_loss(name, network_output="logits")(logits, target)
        from_probabilities = get_loss(name, network_output="probabilities")(torch.sigmoid(logits), target)
        assert from_probabilities.item() == pytest.approx(from_logits.item(), rel=1e-4)
    assert get_loss("iou", network_output="logits").sigmoid
    assert not get_loss("iou", network_output="probabilities").sigmoid


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'jacard'.*bce.*dice.*iou"):
        get_loss("jacard")
    with pytest.raises(ValueError, match="network_output must be one of"):
        get_loss("iou", network_output="scores")
    with pytest.raises(ValueError, match="needs pos_weight"):
        get_loss("wbce")
    with pytest.raises(ValueError, match="use 'wbce'"):
        get_loss("bce", pos_weight=2.0)


@pytest.mark.parametrize("name", sorted(MEDSEG_LOSSES))
def test_invalid_options_and_shapes_raise_value_error(name):
    make = MEDSEG_LOSSES[name]
    with pytest.raises(ValueError, match="reduction"):
        make(reduction="avg")
    with pytest.raises(ValueError, match="more than 1"):
        make(sigmoid=True, softmax=True)
    with pytest.raises(ValueError, match="callable"):
        make(other_act="tanh")
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 4\).*\(2, 1, 5, 5\)"):
        make()(torch.rand(2, 1, 5, 5), torch.rand(2, 1, 4, 4))


def test_invalid_hyper_parameters():
    for bad in (dict(gamma=0), dict(alpha=-1)):
        with pytest.raises(ValueError):
            FocalTverskyLoss(**bad)
    with pytest.raises(ValueError):
        SoftIoULoss(smooth_nr=-1)
    with pytest.raises(ValueError):
        WeightedBCELoss(pos_weight=0)
    with pytest.raises(ValueError):
        MarginLoss(margin=0.7)


@pytest.mark.parametrize("name", sorted(MEDSEG_LOSSES))
def test_softmax_onehot_multiclass_and_3d(name, rng):
    logits = torch.randn((2, 3, 4, 5, 6), generator=rng, requires_grad=True)
    labels = torch.randint(0, 3, (2, 1, 4, 5, 6), generator=rng)
    loss = MEDSEG_LOSSES[name](softmax=True, to_onehot_y=True)(logits, labels)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    with pytest.warns(UserWarning, match="single channel"):
        MEDSEG_LOSSES[name](to_onehot_y=True)(torch.rand(1, 1, 3, 3), torch.ones(1, 1, 3, 3))


@pytest.mark.parametrize("name", sorted(MEDSEG_LOSSES))
@pytest.mark.parametrize("case", ["empty", "all_ones", "single_pixel"])
def test_finite_value_and_gradient_on_edge_cases(name, case):
    shape = (2, 1, 16, 16)
    target = torch.zeros(shape) if case == "empty" else torch.ones(shape)
    prediction = target.clone()
    if case == "single_pixel":
        target = torch.zeros(shape)
        target[:, :, 3, 4] = 1
        prediction = target.clone()
    prediction.requires_grad_()
    loss = MEDSEG_LOSSES[name]()(prediction, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(prediction.grad).all()
    if name in ("iou", "kappa", "focal_tversky"):  # a perfect prediction costs (almost) nothing
        assert loss.item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("name", sorted(MEDSEG_LOSSES))
def test_half_precision_accumulates_in_float32(name):
    # 8 x 256 x 256 ones sum to 524288, beyond float16's range: accumulating in float16 would give inf
    x = torch.full((8, 1, 256, 256), 4.0, dtype=torch.float16)
    g = torch.ones((8, 1, 256, 256), dtype=torch.float16)
    loss = MEDSEG_LOSSES[name](sigmoid=True)(x, g)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    reference = MEDSEG_LOSSES[name](sigmoid=True)(x.float(), g.float())
    assert loss.item() == pytest.approx(reference.item(), rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(MEDSEG_LOSSES))
def test_finite_under_autocast(name, dtype, rng):
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    image, target = torch.rand((2, 1, 64, 64), generator=rng), _hard((2, 1, 64, 64), rng)
    with torch.autocast("cpu", dtype=dtype):
        logits = conv(image)
        assert logits.dtype == dtype
        loss = MEDSEG_LOSSES[name](sigmoid=True)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in conv.parameters())


def test_margin_hand_written_backward_matches_autograd_of_the_formula(rng):
    x = torch.randn((2, 1, 7, 7), generator=rng, dtype=torch.float64) * 2
    g = torch.rand((2, 1, 7, 7), generator=rng, dtype=torch.float64)  # soft targets too
    for sigmoid in (False, True):
        a = x.clone().requires_grad_()
        MarginLoss(pos_weight=1.7, downweight=0.3, sigmoid=sigmoid)(a if sigmoid else torch.sigmoid(a), g).backward()
        b = x.clone().requires_grad_()
        p = torch.sigmoid(b)
        formula = 0.5 * 1.7 * g * torch.relu(0.9 - p) ** 2 + 0.5 * 0.3 * (1 - g) * torch.relu(p - 0.1) ** 2
        formula.mean().backward()
        torch.testing.assert_close(a.grad, b.grad)
    assert torch.autograd.gradcheck(lambda t: MarginLoss(sigmoid=True)(t, g), (x.clone().requires_grad_(),))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_blocks_and_reductions_match_the_formula(reduction, rng, monkeypatch):
    import medseg.losses.margin as margin_module

    monkeypatch.setattr(margin_module, "BLOCK", 7)  # many blocks, the last one partial
    x = torch.randn((2, 1, 5, 6), generator=rng, dtype=torch.float64)
    g = _hard((2, 1, 5, 6), rng).double()
    a = x.clone().requires_grad_()
    ours = MarginLoss(pos_weight=2.0, sigmoid=True, reduction=reduction)(a, g)
    b = x.clone().requires_grad_()
    p = torch.sigmoid(b)
    formula = 0.5 * 2.0 * g * torch.relu(0.9 - p) ** 2 + 0.25 * (1 - g) * torch.relu(p - 0.1) ** 2
    reference = {"mean": formula.mean(), "sum": formula.sum(), "none": formula}[reduction]
    torch.testing.assert_close(ours, reference)
    weights = torch.rand(ours.shape, generator=rng, dtype=torch.float64)
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


# ------------------------------------------------------------------ input checks (medseg.losses.checks)


def _confident(target):
    """Logits of a confident prediction that follows the target (foreground where the target is positive)."""
    return torch.where(target > 0, 12.0, -12.0)


def _mask():
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 3:10] = 1
    return target


def _with(value, at=(0, 0, 5, 5)):
    def put(tensor):
        tensor = tensor.clone()
        tensor[at] = value
        return tensor

    return put


BAD_INPUTS = {  # case -> (change of the target, change of the logits, message)
    "0/255 target": (lambda t: 255 * t, None, r"target values must be in \[0, 1\] .* from 0 to 255; a 0/255 mask\?"),
    "negative target": (_with(-0.5), None, r"target values must be in \[0, 1\] .* from -0.5 to 1"),
    "NaN in the target": (_with(float("nan")), None, r"target has 1 NaN and 0 infinite value\(s\) among 512"),
    "inf in the target": (_with(float("inf")), None, r"target has 0 NaN and 1 infinite value\(s\)"),
    "NaN in the input": (None, _with(float("nan")), r"input \(the network output\) has 1 NaN and 0 infinite"),
    "inf in the input": (None, _with(float("-inf")), r"input \(the network output\) has 0 NaN and 1 infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_rejects_bad_inputs(name, case):
    """Before: a 0/255 mask gave iou -254, bce -1012, dice -0.99, focal_tversky 0.0; a NaN gave NaN."""
    change_target, change_input, message = BAD_INPUTS[case]
    target = _mask()
    logits = _confident(target)
    target = change_target(target) if change_target else target
    logits = change_input(logits) if change_input else logits
    loss = get_loss(name, network_output="logits", **_registry_kwargs(name))
    with pytest.raises(ValueError, match=message):
        loss(logits, target)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_rejects_an_empty_input_on_every_call(name):
    loss = get_loss(name, network_output="logits", **_registry_kwargs(name))
    loss.input_checks.exact_left = 0  # the shapes are checked even when the values no longer are
    for shape in ((2, 1, 0, 16), (0, 1, 16, 16)):
        with pytest.raises(ValueError, match=r"empty input"):
            loss(torch.zeros(shape), torch.zeros(shape))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_after_the_first_calls_the_loss_value_triggers_the_exact_check(name):
    """Steady state: no scan of the inputs, but a NaN (any loss) or a negative value (a target outside [0, 1] that
    the prediction follows) runs the exact check, which names the problem."""
    loss = get_loss(name, network_output="logits", **_registry_kwargs(name))
    target = _mask()
    for _ in range(EXACT_CHECK_CALLS):
        loss(_confident(target), target)
    assert loss.input_checks.exact_left == 0
    with pytest.raises(ValueError, match="NaN"):
        loss(_with(float("nan"))(_confident(target)), target)
    wide = 255 * target
    if name == "focal":  # MONAI's focal loss stays >= 0 on this 0/255 case: only the first calls see it
        assert loss(_confident(wide), wide).item() >= 0
    else:
        with pytest.raises(ValueError, match="0/255 mask"):
            loss(_confident(wide), wide)
    loss.input_checks.exact_left = math.inf  # every call exact: a 0/255 target is found whatever the prediction
    with pytest.raises(ValueError, match="0/255 mask"):
        loss(torch.zeros_like(wide), wide)


def test_focal_tversky_no_longer_hides_a_wrong_target():
    target = _mask()
    hidden = FocalTverskyLoss(sigmoid=True).forward(_confident(target), 255 * target)  # forward skips the checks
    assert hidden.item() < 0  # 1 - TI < 0: returned as it is, no longer clamped to 0


def test_class_indices_with_to_onehot_y_and_monai_ignore_index():
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 3, (2, 1, 8, 8), generator=torch.Generator().manual_seed(2)).float()
    for name in ("iou", "dice"):
        loss = get_loss(name, softmax=True, to_onehot_y=True)
        assert torch.isfinite(loss(logits, labels))  # indices 0, 1, 2 for three channels
        with pytest.raises(ValueError, match=r"class indices must be in \[0, 2\] for 3 channels .* from 0 to 3"):
            loss(logits, _with(3.0)(labels))
    ignoring = get_loss("dice", softmax=True, to_onehot_y=True, ignore_index=255)
    assert torch.isfinite(ignoring(logits, _with(255.0)(labels)))  # MONAI's ignored label is not out of range


def test_checked_monai_losses_stay_monai_classes_and_copies_keep_the_checks():
    import copy

    loss = get_loss("dice", network_output="logits")
    assert type(loss) is DiceLoss
    twin = copy.deepcopy(loss)
    assert twin.input_checks is not loss.input_checks
    with pytest.raises(ValueError, match="0/255"):
        twin(_confident(_mask()), 255 * _mask())


# ------------------------------------------------------------------ empty masks (docs/losses.md)


def test_empty_mask_figures_by_hand():
    """docs/losses.md: a confident correct prediction (logits -10) of an empty 256x256 mask."""
    empty = torch.zeros(1, 1, 256, 256)
    fp = 256 * 256 / (1 + math.exp(10))  # sum of p = sigmoid(-10) over the image: 2.98
    for name in ("iou", "kappa", "dice"):  # I = 0 and the union (kappa: its denominator) is sum(p)
        assert get_loss(name, sigmoid=True)(empty - 10, empty).item() == pytest.approx(1 - 1e-5 / (fp + 1e-5), abs=1e-6)
        smoothed = get_loss(name, sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(empty - 10, empty).item()
        assert smoothed == pytest.approx(1 - 1 / (fp + 1), rel=1e-4)
    focal_tversky = get_loss("focal_tversky", sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(empty - 10, empty).item()
    assert focal_tversky == pytest.approx((1 - 1 / (0.3 * fp + 1)) ** 0.75, rel=1e-4)


@pytest.mark.parametrize("name", ["iou", "kappa", "focal_tversky", "dice"])
def test_batch_reduction_keeps_empty_slices_from_scoring_one(name):
    """Two empty slices among eight: per item they score ~1 each (a quarter of the mean); summed over the batch
    (batch=True, the setting recommended for CT slices) a correct prediction costs almost nothing."""
    target = torch.zeros(8, 1, 64, 64)
    target[2:, :, 16:48, 10:30] = 1
    logits = 20 * target - 10
    per_item = get_loss(name, sigmoid=True)(logits, target).item()
    assert per_item == pytest.approx(2 / 8, abs=0.01)
    assert get_loss(name, sigmoid=True, batch=True)(logits, target).item() < 2e-3
    shifted = torch.roll(target, 3, dims=-1)  # and a wrong prediction still costs
    assert get_loss(name, sigmoid=True, batch=True)(20 * shifted - 10, target).item() > 0.1


@pytest.mark.parametrize("name", ["iou", "kappa", "focal_tversky", "dice"])
def test_recommended_ct_setting_on_the_real_scan(name, real_data):
    """The 79 axial slices of ct_cip (10 without lung), shuffled into batches of 8 (scripts/loss_empty_masks.py)."""
    import SimpleITK as sitk

    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(real_data("ct_cip") / "wholeLung-64.nrrd")))
    order = torch.randperm(len(mask), generator=torch.Generator().manual_seed(0))
    slices = torch.from_numpy(mask).float()[order, None]

    def mean_loss(prediction, **kwargs):
        loss = get_loss(name, sigmoid=True, **kwargs)
        values = [loss(20 * prediction[i : i + 8] - 10, slices[i : i + 8]).item() for i in range(0, len(slices), 8)]
        return sum(values) / len(values)

    assert mean_loss(slices) > 0.1  # per item, the empty slices score ~1 each
    assert mean_loss(slices, batch=True) < 2e-3
    assert mean_loss(torch.roll(slices, 1, dims=-1), batch=True) > 0.05
