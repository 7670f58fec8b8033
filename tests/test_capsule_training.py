"""SegCaps with reconstruction through MONAI's SupervisedTrainer and SupervisedEvaluator; the composite loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import MeanDice, from_engine
from monai.losses import DiceLoss

from medseg.engines import PrepareBatchSegCaps
from medseg.losses.reconstruction import SegCapsLoss
from medseg.networks import SegCapsR3
from medseg.transforms import binary_postprocessing


def manual_segcaps_loss(pred: np.ndarray, target: np.ndarray, weight: float) -> float:
    """Binary cross-entropy of channel 0 plus weight x MSE of the rest against image x label, by hand."""
    p, y = pred[:, 0].astype(np.float64), target[:, 0].astype(np.float64)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    mse = ((pred[:, 1:] - target[:, 1:] * target[:, :1]) ** 2).mean()
    return bce + weight * mse


def test_segcaps_loss_by_hand():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.05, 0.95, (2, 3, 4, 5)).astype(np.float32)
    label = (rng.uniform(size=(2, 1, 4, 5)) > 0.5).astype(np.float32)
    target = np.concatenate([label, rng.uniform(size=(2, 2, 4, 5)).astype(np.float32)], axis=1)
    loss = SegCapsLoss(torch.nn.BCELoss(), recon_weight=131.072)(torch.from_numpy(pred), torch.from_numpy(target))
    assert loss.item() == pytest.approx(manual_segcaps_loss(pred, target, 131.072), rel=1e-5)
    dice = SegCapsLoss(DiceLoss(), recon_weight=0.0)(torch.from_numpy(pred), torch.from_numpy(target))
    intersection = (pred[:, :1] * label).sum(axis=(1, 2, 3))
    expected = 1 - (2 * intersection + 1e-5) / (pred[:, :1].sum(axis=(1, 2, 3)) + label.sum(axis=(1, 2, 3)) + 1e-5)
    assert dice.item() == pytest.approx(expected.mean(), rel=1e-5)


def test_segcaps_loss_shape_errors():
    loss = SegCapsLoss(torch.nn.BCELoss())
    with pytest.raises(ValueError, match=r"\(1, 2, 4, 4\) and \(1, 3, 4, 4\)"):
        loss(torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 4, 4\)"):
        loss(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))


def test_prepare_batch_passes_the_label_to_network_and_loss():
    image, label = torch.rand(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).to(torch.uint8)
    inputs, target, args, kwargs = PrepareBatchSegCaps()({"image": image, "label": label})
    assert torch.equal(inputs, image) and kwargs == {}
    assert torch.equal(args[0], label.float()) and torch.equal(target, torch.cat([label.float(), image], dim=1))
    with pytest.raises(ValueError, match="needs a label"):
        PrepareBatchSegCaps()({"image": image})
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\).*got \(2, 2, 8, 8\)"):
        PrepareBatchSegCaps()({"image": image, "label": torch.zeros(2, 2, 8, 8)})


def synthetic_items(count: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    items = []
    for i in range(count):
        label = torch.zeros(1, 16, 16)
        label[:, 3 + i : 11 + i, 4:12] = 1
        image = 0.2 * torch.rand(1, 16, 16, generator=generator) + 0.6 * label
        items.append({"image": image, "label": label})
    return items


def test_segcaps_trains_and_validates_through_monai_engines():
    torch.manual_seed(0)
    network = SegCapsR3()
    calls: list[tuple[int, bool]] = []
    network.register_forward_pre_hook(lambda module, args: calls.append((len(args), module.training)))
    loader = DataLoader(synthetic_items(4), batch_size=2)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=loader,
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), lr=1e-4, betas=(0.99, 0.999)),
        loss_function=SegCapsLoss(torch.nn.BCELoss(), recon_weight=100.0),
        prepare_batch=PrepareBatchSegCaps(),
    )
    trainer.run()
    assert trainer.state.iteration == 2 and calls == [(2, True), (2, True)]  # image and label, training mode
    preds, targets, losses = from_engine(["pred", "label", "loss"])(trainer.state.output)  # decollated batch
    pred, target = torch.stack(preds).detach(), torch.stack(targets)
    assert pred.shape == (2, 2, 16, 16) and target.shape == (2, 2, 16, 16)
    expected = manual_segcaps_loss(pred.numpy(), target.numpy(), 100.0)
    assert float(losses[0]) == pytest.approx(expected, rel=1e-4)

    calls.clear()
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=network,
        postprocessing=binary_postprocessing(network_output="probabilities"),
        key_val_metric={"val_dice": MeanDice(include_background=True, output_transform=from_engine(["pred", "label"]))},
    )
    evaluator.run()
    assert calls == [(1, False), (1, False)]  # the image only, eval mode: the label is never a network input
    predictions = evaluator.state.output[0]["pred"]
    assert predictions.shape == (1, 16, 16) and set(predictions.unique().tolist()) <= {0.0, 1.0}
    assert 0.0 <= evaluator.state.metrics["val_dice"] <= 1.0


def test_batch_preparation_follows_the_reconstruction_branch():
    """SegCaps (a reconstruction branch) trains with image and label as inputs; a plain network with the image."""
    from monai.engines import default_prepare_batch
    from torch.nn.parallel import DistributedDataParallel

    from medseg.engines import has_reconstruction, training_prepare_batch

    assert has_reconstruction(SegCapsR3()) and isinstance(training_prepare_batch(SegCapsR3()), PrepareBatchSegCaps)
    plain = torch.nn.Conv2d(1, 1, 3)
    assert not has_reconstruction(plain) and training_prepare_batch(plain) is default_prepare_batch
    wrapped = DistributedDataParallel.__new__(DistributedDataParallel)  # unwrapped without a process group
    torch.nn.Module.__init__(wrapped)
    wrapped.module = SegCapsR3()
    assert has_reconstruction(wrapped)


def test_capsule_lengths_are_thresholded_without_a_sigmoid():
    torch.manual_seed(0)
    network = SegCapsR3().eval()
    images = torch.stack([item["image"] for item in synthetic_items(2)])
    with torch.no_grad():
        lengths = network(images)
    masks = binary_postprocessing(network_output="probabilities")({"pred": lengths})["pred"]
    torch.testing.assert_close(masks, (lengths >= 0.5).float())
    logits = binary_postprocessing()({"pred": lengths})["pred"]  # a sigmoid first: every length > 0 is kept
    torch.testing.assert_close(logits, (lengths > 0).float())
