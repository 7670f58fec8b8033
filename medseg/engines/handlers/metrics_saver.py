"""MONAI's ``MetricsSaver`` with every report written completely or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ignite.engine import Engine
from monai.handlers import MetricsSaver

from medseg.files import umask_mode

__all__ = ["AtomicMetricsSaver"]


class AtomicMetricsSaver(MetricsSaver):
    """MONAI's ``MetricsSaver`` (per-case CSVs and summaries) with every file written completely or not at all.

    MONAI writes the reports in place; here they are written into a hidden staging folder inside ``save_dir``
    and each file is then renamed into place, with the umask's permissions.
    """

    def __call__(self, engine: Engine) -> None:
        final = Path(self.save_dir)
        final.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final, prefix=".metrics.") as staging:
            self.save_dir = staging
            try:
                super().__call__(engine)
            finally:
                self.save_dir = str(final)
            for path in Path(staging).iterdir():
                os.chmod(path, umask_mode())
                os.replace(path, final / path.name)
