"""The task record: everything medseg knows about one dataset family, in one place.

A :class:`Task` names its dataset adapter (published layout -> datalist), its image pre-processing (usable
without a label), its label decoding, whether its images are volumes, the options it accepts, and the
generators of its synthetic layouts. ``medseg prepare``, ``medseg synth``, the command line's option checks,
the bundles and the inference script all read the record; no other module branches on a task name. A new
dataset family is one :func:`register_task` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai.transforms import Compose

__all__ = [
    "STAGES",
    "TASKS",
    "LabelSet",
    "Task",
    "TaskOption",
    "get_task",
    "register_task",
    "synthesize",
    "synthetic_names",
]

#: Where a task option acts: the adapter that finds the pairs, the label decoding, or the image pre-processing.
STAGES = ("pairs", "label", "image")


@dataclass(frozen=True)
class TaskOption:
    """One keyword option of a task, as a Python argument and as a command-line flag.

    Args:
        name: the keyword, e.g. ``"mask_pattern"``; the flag is ``--mask-pattern``.
        stage: one of :data:`STAGES`; ``"pairs"`` and ``"label"`` options change the datalist and are recorded
            in it, ``"image"`` options only the image pre-processing.
        help: one line for ``--help``.
        default: the value when the option is not given.
        type: converts a command-line string (``None`` for a boolean flag).
        choices, nargs: as in :mod:`argparse`.
        negative_flag: for a boolean option, the flag that sets it to ``False`` (its own flag sets ``True``).
    """

    name: str
    stage: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = str
    choices: tuple | None = None
    nargs: str | None = None
    negative_flag: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"option {self.name!r}: stage must be one of {STAGES}, got {self.stage!r}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class LabelSet:
    """What a task's masks tell apart and the labels a model of it may segment.

    A model segments one label (a binary mask, one output map: the papers' tasks) or several (a label map, one output
    map per label and one for the background, with a softmax). Each label is one of the task's ``classes`` or a
    ``merged`` label that covers several of them (LFW's ``face`` = hair + skin); no class may be in two labels.

    Args:
        classes: the foreground classes the task's masks tell apart, in the decoder's order.
        merged: name -> the classes a merged label covers.
        default: the labels a model segments unless told otherwise.
    """

    classes: tuple[str, ...]
    merged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.default:
            object.__setattr__(self, "default", self.classes[:1] if len(self.classes) == 1 else tuple(self.merged)[:1])

    @property
    def names(self) -> tuple[str, ...]:
        """Every label name a model may ask for."""
        return (*self.classes, *self.merged)

    def members(self, labels: Sequence[str] | None = None) -> tuple[tuple[str, ...], ...]:
        """For each of ``labels`` (default: :attr:`default`), the classes it covers.

        Raises:
            ValueError: for an unknown label, a label given twice, or two labels that share a class.
        """
        labels = tuple(labels or self.default)
        unknown = [name for name in labels if name not in self.names]
        if unknown:
            raise ValueError(f"unknown label(s) {', '.join(map(repr, unknown))}; this task's: {', '.join(self.names)}")
        groups = tuple(self.merged.get(name, (name,)) for name in labels)
        flat = [name for group in groups for name in group]
        if len(set(flat)) != len(flat):
            raise ValueError(f"labels {', '.join(labels)} overlap: a class may be in one label only")
        return groups


@dataclass(frozen=True)
class Task:
    """A dataset family (see the module docstring).

    Args:
        name: the ``--task`` name.
        description: one line for ``--help`` and the docs.
        adapter: ``adapter(root, skipped=..., **pairs_options)`` -> datalist entries ``{"image", "label", "case"}``.
        make_image_transforms: ``(spatial_size, **image_options)`` -> the pipeline of ``"image"`` only.
        make_label_transforms: ``(spatial_size, **label_options)`` -> the pipeline of ``"label"`` only.
        volumetric: images are 3D volumes (2D networks see their axial slices); ``spatial_size`` must be ``None``.
        options: the keyword options the task accepts.
        synthetic: synthetic layout name -> generator ``(out_dir, n=..., seed=...)``; the first is the default.
        image_channels: ``image_channels(**image_options)`` -> channels of the pre-processed image.
        image_intensity: ``image_intensity(**image_options)`` -> what the image pre-processing does to intensities
            (a JSON-able description, e.g. ``{"window_hu": [-1024, 3072], "range": [0, 1]}``); a trained model records
            it (:class:`medseg.pipeline.ModelSettings`), so that a checkpoint is never run on images pre-processed
            otherwise.
        label_set: the labels its masks tell apart and a model may segment; ``make_label_transforms`` takes the
            classes of each label asked for as ``labels`` (:meth:`LabelSet.members`) when the task has several.
    """

    name: str
    description: str
    adapter: Callable[..., list[dict]]
    make_image_transforms: Callable[..., Compose]
    make_label_transforms: Callable[..., Compose]
    volumetric: bool = False
    options: tuple[TaskOption, ...] = ()
    synthetic: Mapping[str, Callable[..., list[Path]]] = field(default_factory=dict)
    image_channels: Callable[..., int] = lambda **_: 1
    image_intensity: Callable[..., dict] = lambda **_: {}
    label_set: LabelSet = field(default_factory=lambda: LabelSet(("foreground",)))

    def option(self, name: str) -> TaskOption:
        for option in self.options:
            if option.name == name:
                return option
        valid = ", ".join(o.name for o in self.options) or "none"
        raise ValueError(f"option {name!r} does not apply to task {self.name!r} (its options: {valid})")

    def resolve_options(self, stages: Sequence[str] = STAGES, **given: Any) -> dict[str, Any]:
        """The options of ``stages``, from ``given`` or their defaults; unknown names raise a ``ValueError``."""
        for name in given:
            self.option(name)
        return {o.name: given.get(o.name, o.default) for o in self.options if o.stage in stages}

    def find_pairs(self, root: str | Path, skipped: list | None = None, **options: Any) -> list[dict]:
        """The adapter on ``root`` with the task's pair options (see :meth:`resolve_options`)."""
        return self.adapter(root, skipped=skipped, **self.resolve_options(("pairs",), **self._only(options, "pairs")))

    def image_transforms(self, spatial_size: Sequence[int] | None = None, **options: Any) -> Compose:
        """Image pre-processing of an entry with or without a label; ``spatial_size=None`` keeps the native size."""
        self._check_size(spatial_size)
        return self.make_image_transforms(
            spatial_size, **self.resolve_options(("image",), **self._only(options, "image"))
        )

    def label_transforms(
        self, spatial_size: Sequence[int] | None = None, labels: Sequence[str] | None = None, **options: Any
    ) -> Compose:
        """Label loading and decoding to the model's ``labels`` (default: the task's): one float32 0/1 channel for
        one label, one-hot channels (background first) for several."""
        self._check_size(spatial_size)
        groups = self.label_set.members(labels)
        resolved = self.resolve_options(("label",), **self._only(options, "label"))
        if len(self.label_set.names) > 1:
            resolved["labels"] = groups
        return self.make_label_transforms(spatial_size, **resolved)

    def pair_transforms(
        self, spatial_size: Sequence[int] | None = None, labels: Sequence[str] | None = None, **options: Any
    ) -> Compose:
        """:meth:`image_transforms` then :meth:`label_transforms`: an image/mask pair, as training loads it."""
        return Compose(
            [self.image_transforms(spatial_size, **options), self.label_transforms(spatial_size, labels, **options)]
        )

    def channels(self, **options: Any) -> int:
        """Channels of the pre-processed image (the network's ``in_channels``)."""
        return self.image_channels(**self.resolve_options(("image",), **self._only(options, "image")))

    def intensity(self, **options: Any) -> dict:
        """What the image pre-processing does to intensities with these options (see :attr:`image_intensity`)."""
        return self.image_intensity(**self.resolve_options(("image",), **self._only(options, "image")))

    def synthesize(
        self, out_dir: str | Path, n: int, seed: int = 0, layout: str | None = None, **options: Any
    ) -> list[Path]:
        """Write ``n`` synthetic cases in ``layout`` (default: the first of :attr:`synthetic`) under ``out_dir``;
        ``options`` go to the layout's generator (e.g. ``shape`` for LUNA16 volumes)."""
        if not self.synthetic:
            raise ValueError(f"task {self.name!r} has no synthetic generator")
        layout = layout or next(iter(self.synthetic))
        if layout not in self.synthetic:
            raise ValueError(
                f"task {self.name!r} has no synthetic layout {layout!r}; choose one of {list(self.synthetic)}"
            )
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self.synthetic[layout](out_dir, n=n, seed=seed, **options)

    def _only(self, options: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """The given options of ``stage`` (unknown names raise, options of other stages are left out)."""
        return {name: value for name, value in options.items() if self.option(name).stage == stage}

    def _check_size(self, spatial_size: Sequence[int] | None) -> None:
        if self.volumetric and spatial_size is not None:
            raise ValueError(
                f"task {self.name!r} has volumes, which keep their size; resize their 2D slices instead "
                f"(got spatial_size={tuple(spatial_size)})"
            )


#: Registered tasks by name.
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS`."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task registered as ``name``; an unknown name raises a ``ValueError`` listing the valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def synthesize(
    name: str, out_dir: str | Path, n: int, seed: int = 0, layout: str | None = None, **options: Any
) -> list[Path]:
    """Write ``n`` synthetic cases of task ``name`` in ``layout`` (default: its first); ``options`` go to the
    generator."""
    return get_task(name).synthesize(out_dir, n=n, seed=seed, layout=layout, **options)


def synthetic_names() -> list[str]:
    """The tasks ``medseg synth --task`` writes."""
    return [name for name, task in TASKS.items() if task.synthetic]
