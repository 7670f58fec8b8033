"""Small models trained for a few seconds on real images, for tests that need masks a trained network gives (two
backends compared on them) rather than the noise of random weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from medseg.pipeline import ModelSettings, build_network, preprocessing

__all__ = ["TINY_UNET", "train_tiny_model"]

#: A U-Net small enough to train in seconds on a CPU.
TINY_UNET = {"features": [4, 8, 16]}


def _training_batch(settings: ModelSettings, pairs: Sequence[tuple[Path, Path]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pre-processed images and labels of ``pairs``; a volume gives its axial slices (as a 2D network sees it)."""
    transform = preprocessing(settings, with_label=True)
    images, labels = [], []
    for image, label in pairs:
        item = transform({"image": str(image), "label": str(label)})
        image_t, label_t = item["image"].as_tensor(), item["label"].as_tensor()
        if settings.volumetric:  # (1, H, W, D) -> D slices (1, H, W)
            images.extend(image_t.permute(3, 0, 1, 2))
            labels.extend(label_t.permute(3, 0, 1, 2))
        else:
            images.append(image_t)
            labels.append(label_t)
    return torch.stack(list(images)).float(), (torch.stack(list(labels)) > 0).float()


def train_tiny_model(
    folder: Path,
    task: str,
    pairs: Sequence[tuple[Path, Path]],
    size: int = 64,
    steps: int = 150,
    seed: int = 0,
    learning_rate: float = 5e-3,
    labels: Sequence[str] = (),
) -> Path:
    """Train :data:`TINY_UNET` on ``pairs`` (image, label files) for ``steps`` Adam steps of soft Dice plus BCE (for
    several ``labels``: with a softmax) and write ``folder/models/model.pt`` with its ``settings.json``; return the
    checkpoint."""
    from monai.losses import DiceCELoss

    torch.manual_seed(seed)
    settings = ModelSettings(task=task, network_name="unet2d", network_kwargs=TINY_UNET,
                             spatial_size=(size, size), labels=tuple(labels))  # fmt: skip
    images, labels = _training_batch(settings, pairs)
    network = build_network(settings).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    loss = DiceCELoss(sigmoid=settings.out_channels == 1, softmax=settings.out_channels > 1)
    for _ in range(steps):
        batch = torch.randint(len(images), (8,))
        optimizer.zero_grad()
        loss(network(images[batch]), labels[batch]).backward()
        optimizer.step()
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    torch.save(network.eval().state_dict(), models / "model.pt")
    settings.save(models)
    return models / "model.pt"
