"""The CUDA paths, each checked against the same computation on the CPU in float32.

CI has no GPU: every test here skips, saying so, where PyTorch sees no CUDA device. Run them where one is:

    python -m pytest tests/test_cuda.py

- the registered losses give the CPU's values and gradients on CUDA;
- SegCaps' blockwise routing kernels give the CPU's lengths on CUDA, and under ``torch.autocast`` (where they step
  aside for the float32 reference routing) the same lengths to half-precision accuracy, with finite gradients;
- each bundle trains with ``--device cuda --amp True`` through ``python -m monai.bundle run``, evaluates its
  checkpoint on CUDA, and ``medseg infer --device cuda --amp`` gives the masks ``medseg infer --device cpu`` gives.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from test_bundles import BUNDLES, SETUPS, bundle_run, ok  # pytest puts tests/ on sys.path (no __init__.py)

from medseg.cli import main as medseg_main
from medseg.losses import LOSSES, get_loss
from medseg.networks import SegCapsR3

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: PyTorch sees none"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_on_cuda_give_the_cpu_values_and_gradients(name):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 32, 32, generator=generator)
    target = (torch.rand(2, 1, 32, 32, generator=generator) > 0.6).float()
    kwargs = {"pos_weight": 2.0} if LOSSES[name].needs_pos_weight else {}
    results = []
    for device in ("cpu", CUDA):
        loss_function = get_loss(name, network_output="logits", **kwargs).to(device)
        inputs = logits.clone().to(device).requires_grad_(True)
        value = loss_function(inputs, target.to(device))
        value.backward()
        results.append((value.detach().cpu(), inputs.grad.cpu()))
    (cpu_value, cpu_grad), (cuda_value, cuda_grad) = results
    torch.testing.assert_close(cuda_value, cpu_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cuda_grad, cpu_grad, rtol=1e-4, atol=1e-7)


def test_segcaps_on_cuda_and_under_autocast_gives_the_cpu_lengths():
    torch.manual_seed(0)
    network = SegCapsR3(in_channels=1).eval()
    image = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        reference = network(image)
        network.to(CUDA)
        on_cuda = network(image.to(CUDA)).cpu()
        with torch.autocast("cuda"):
            autocast = network(image.to(CUDA)).float().cpu()
    torch.testing.assert_close(on_cuda, reference, rtol=1e-4, atol=1e-5)
    assert (autocast - reference).abs().max() < 2e-2, (autocast - reference).abs().max()

    network.train()
    label = (torch.rand(2, 1, 64, 64) > 0.5).float().to(CUDA)
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda"):
        output = network(image.to(CUDA), label)
        loss = torch.nn.functional.mse_loss(output.float(), torch.cat([label, image.to(CUDA)], dim=1))
    scaler.scale(loss).backward()
    gradients = [p.grad for p in network.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)


@pytest.mark.parametrize("bundle", sorted(SETUPS))
def test_bundle_trains_evaluates_and_infers_on_cuda_with_amp(bundle, synthetic, tmp_path):
    task, arguments, small = SETUPS[bundle]
    data, out = synthetic(task, **arguments), tmp_path / "run"
    on_cuda = ["--device", "cuda", "--amp", "True"]
    common = ["--dataset_dir", str(data), "--output_dir", str(out), *small, *on_cuda]
    ok(bundle_run(bundle, "train", *common, "--epochs", "2"))
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(np.isfinite(row["train_loss"]) for row in history)
    ok(bundle_run(bundle, "evaluate", *common))
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert 0 <= summary["test_mean_dice"]["mean"] <= 1

    image = sorted(json.loads((out / "datalist.json").read_text())["training"], key=lambda e: e["case"])[0]["image"]
    trained = tmp_path / "bundle"
    shutil.copytree(BUNDLES / bundle / "configs", trained / "configs")
    shutil.copytree(out / "models", trained / "models")
    masks = {}
    for device, extra in (("cpu", []), ("cuda", ["--amp"])):
        where = tmp_path / device
        arguments = ["infer", "--model-dir", str(trained), "--input", image, "--output", str(where), "--device", device]
        assert medseg_main([*arguments, *extra]) == 0
        [mask] = where.glob("*_seg.nii.gz")
        masks[device] = sitk.GetArrayFromImage(sitk.ReadImage(str(mask)))
    agreement = (masks["cpu"] == masks["cuda"]).mean()
    assert agreement > 0.99, f"CUDA with AMP and the CPU agree on {agreement:.2%} of the voxels"
