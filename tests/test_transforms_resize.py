"""``AreaResized``: MONAI's area resize forward, a bilinear inverse (PyTorch's ``interpolate`` as the reference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Resized

from medseg.transforms import AreaResized


def test_forward_is_monai_area_and_the_inverse_bilinear():
    image = MetaTensor(torch.rand(1, 50, 40, generator=torch.Generator().manual_seed(0)))
    resize = Compose([AreaResized("image", (32, 32))])
    shrunk = resize({"image": image})["image"]
    reference = Resized("image", (32, 32), mode="area")({"image": image.clone()})["image"]
    torch.testing.assert_close(shrunk.as_tensor(), reference.as_tensor(), rtol=0, atol=0)
    torch.testing.assert_close(shrunk.as_tensor(), F.adaptive_avg_pool2d(image.as_tensor()[None], (32, 32))[0])

    prediction = MetaTensor(torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1)))
    back = Invertd("pred", transform=resize, orig_keys="image")({"image": shrunk, "pred": prediction})["pred"]
    expected = F.interpolate(prediction.as_tensor()[None], (50, 40), mode="bilinear", align_corners=False)[0]
    assert back.shape == (1, 50, 40)
    torch.testing.assert_close(back.as_tensor(), expected)
    # MONAI's own inverse repeats pixels instead: the two differ
    area = F.adaptive_avg_pool2d(prediction.as_tensor()[None], (50, 40))[0]
    assert (back.as_tensor() - area).abs().max() > 0.05
