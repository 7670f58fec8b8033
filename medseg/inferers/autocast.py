"""Mixed precision on a CPU, as a MONAI ``Inferer``.

MONAI's engines take ``amp=True`` to run the network under ``torch.autocast("cuda")`` (float16, with a gradient
scaler); on a CPU they run in float32. CPUs with native bfloat16 arithmetic (AVX-512 BF16, AMX) run convolutions
about 1.5 times faster in bfloat16, and bfloat16 has float32's range, so no gradient scaling is needed. This inferer
runs any inferer (and so the network) under ``torch.autocast`` of the input's device and returns float32 outputs:
the loss, the activations and the metrics after it are computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

__all__ = ["AutocastInferer", "cpu_bfloat16"]


def cpu_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated, and
    slower than float32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


class AutocastInferer(Inferer):
    """``inferer`` (default: MONAI's ``SimpleInferer``) under ``torch.autocast(device, dtype)``, its output as float32.

    Args:
        inferer: the MONAI inferer to run (sliding windows, test-time flips, ...).
        dtype: the autocast type, ``torch.bfloat16`` (or its name).
        enabled: ``False`` runs ``inferer`` as it is (the same outputs, bit for bit).
    """

    def __init__(
        self, inferer: Inferer | None = None, dtype: torch.dtype | str = torch.bfloat16, enabled: bool = True
    ) -> None:
        super().__init__()
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.enabled = enabled

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        with torch.autocast(inputs.device.type, dtype=self.dtype):
            output = self.inferer(inputs, network, *args, **kwargs)
        return output.float()
