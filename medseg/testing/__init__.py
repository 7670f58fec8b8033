"""Helpers for medseg's tests and benchmarks: where the real data lies, and independent reference code.

- :func:`shared_data_root`: the real data subsets beside the repository (never copied into it).
- :mod:`medseg.testing.segcaps_port`: a straightforward port of the SegCaps Keras code, the reference that
  :class:`medseg.networks.SegCapsR3` is checked and benchmarked against.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "shared_data_root"]

#: The repository root of a source checkout (the package is installed in editable mode).
REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_root() -> Path:
    """``$MEDSEG_SHARED_DATA`` when set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("MEDSEG_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
