"""Dataset adapters (published layouts to MONAI datalists) and synthetic datasets."""

from .cxr import montgomery_datalist
from .synthetic import SYNTH_TASKS, synthesize

__all__ = ["SYNTH_TASKS", "montgomery_datalist", "synthesize"]
