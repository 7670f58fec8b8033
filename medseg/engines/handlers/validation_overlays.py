"""A PNG of validation cases with the outlines of ground truth and prediction, for the best epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events
from monai.utils import convert_to_numpy

from medseg.engines.utils import is_main_process
from medseg.files import atomic_path

__all__ = ["ValidationOverlays"]


class ValidationOverlays:
    """A PNG of validation cases with the ground truth (green) and prediction (red) outlines, for the best epoch.

    Attach to the evaluator: it keeps the first ``n_cases`` items of each validation run (a volume by its axial slice
    with the most foreground) and rewrites ``path`` whenever the key metric improves, so the figure always shows the
    best model's predictions.
    """

    def __init__(self, path: str | Path, n_cases: int = 4) -> None:
        self.path, self.n_cases = Path(path), n_cases
        self._items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self._items.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._keep)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write_if_best)

    def _keep(self, engine: Engine) -> None:
        for item in engine.state.output:
            if len(self._items) >= self.n_cases:
                return
            image, label, pred = (convert_to_numpy(item[k]) for k in ("image", "label", "pred"))
            if image.ndim == 4:  # a volume (channel, x, y, z): its axial slice of most foreground
                z = int(np.argmax(label[0].sum(axis=(0, 1))))
                middle = image.shape[0] // 2  # the slice itself among its neighbours (medseg.transforms.AdjacentSlices)
                image, label, pred = image[middle : middle + 1, ..., z], label[..., z], pred[..., z]
            self._items.append((image, label[0], pred[0]))

    def _write_if_best(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch != engine.state.epoch or not self._items or not is_main_process():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(self._items), figsize=(3 * len(self._items), 3.2), squeeze=False)
        for axis, (image, label, pred) in zip(axes[0], self._items):
            # MONAI's readers give (x, y): transpose back to (row, column) for display
            picture = image[0].T if image.shape[0] != 3 else np.moveaxis(image, 0, -1).transpose(1, 0, 2)
            axis.imshow(np.clip(picture, 0, 1), cmap="gray")
            for mask, colour in ((label, "lime"), (pred, "red")):
                if mask.any() and not mask.all():
                    axis.contour(mask.T, levels=[0.5], colors=colour, linewidths=1)
            axis.set_axis_off()
        fig.suptitle(f"epoch {engine.state.epoch}: ground truth (green), prediction (red)")
        fig.tight_layout()
        with atomic_path(self.path) as temporary:
            fig.savefig(temporary, dpi=90)
        plt.close(fig)
