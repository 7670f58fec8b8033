"""What a trained model records, in one place: :class:`ModelSettings`, carried by every model file medseg writes.

A checkpoint (a state dict) is only usable with the settings it was trained with: the task and its options (which
fix the image pre-processing and the number of input channels), the network and its arguments, the spatial size
the network saw, and the intensity pre-processing. Beside these, a trained model carries the defaults it is applied
with: the threshold, the mask cleaning (``keep_largest``, ``fill_holes``) and the test-time flips and shifts.

Training writes the record into each checkpoint it saves (:meth:`ModelSettings.stamp`, a key of the state dict's
metadata) and beside it as ``models/settings.json`` for people to read; the ONNX export carries it too. A model
file alone is thus enough to apply the model (:func:`medseg.inference.model_settings` reads it); evaluation checks
that the bundle's settings still match it (:meth:`ModelSettings.differences`), and every path builds the same
network and pipeline from it (:mod:`medseg.pipeline.builders`).

``spatial_size`` is MONAI's name for it along the whole path, from the bundles' override to the inferers: the size
2D images are resized to, the region of interest of the sliding-window inferer, and the size of the axial slices a
2D network sees in a volume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medseg.files import write_json
from medseg.losses import LOSSES
from medseg.networks import NETWORKS, network_output, unknown_arguments
from medseg.tasks import get_task

__all__ = [
    "APPLICATION_FIELDS",
    "MODEL_FIELDS",
    "SETTINGS_FILE",
    "STAMP_KEY",
    "ModelSettings",
    "SettingsError",
    "SettingsFileError",
    "check_flag",
    "checkpoint_stamp",
]

#: The record's file name, beside ``model.pt``.
SETTINGS_FILE = "settings.json"

#: Fields a checkpoint depends on: they must match to use it.
MODEL_FIELDS = (
    "task", "task_options", "labels", "network_name", "network_kwargs", "in_channels", "spatial_size", "intensity",
)  # fmt: skip
#: Where a checkpoint carries the settings it was trained with (:meth:`ModelSettings.stamp`): a key of the state
#: dict's ``_metadata`` (which ``torch.save`` keeps, ``load_state_dict`` ignores for a name no module can have, and
#: ``torch.load(..., weights_only=True)`` reads back), so that the checkpoint stays a plain state dict; an ONNX
#: export's metadata property of the same name.
STAMP_KEY = "medseg:settings"
#: Fields of how a trained model is applied: inference may override them.
APPLICATION_FIELDS = ("threshold", "keep_largest", "fill_holes", "test_time_flip_axes", "test_time_shift")


class SettingsError(ValueError):
    """A setting that cannot work: the message names it (as the bundles' override of that name is named), the value
    and what is valid."""


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool; otherwise a :class:`SettingsError` naming ``--name``. A bundle's command line is read
    by fire, which gives ``--flag False`` as False but ``--flag false`` as the string ``'false'``, true in an ``if``."""
    if not isinstance(value, bool):
        raise SettingsError(f"--{name} must be True or False (as Python spells them), got {value!r}")
    return value


class SettingsFileError(SettingsError):
    """A settings record (``settings.json``, or the one a model file carries) that is missing, unreadable, or at odds
    with what is asked; the message names the file."""


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists), so that records compare equal after a round trip."""
    return json.loads(json.dumps(value))


@dataclass(frozen=True)
class ModelSettings:
    """The settings of a trained model (see the module docstring).

    Args:
        task: a task of :mod:`medseg.tasks`; its options go in ``task_options``.
        network_name: a network of :data:`medseg.networks.NETWORKS`, built with ``network_kwargs``.
        spatial_size: the size the network sees, in medseg's (x, y) axis order: ``(width, height)`` of a 2D
            image (``[256, 192]`` for 256×192 dermoscopy photos), the in-plane size of a volume's slices.
        loss_name: the training loss (a record of how the model was made; no effect on its use).
        threshold: the probability above which a pixel is foreground.
        keep_largest: keep the largest ``n`` connected components of a mask (``None``: all).
        fill_holes: fill the holes of a mask.
        test_time_flip_axes: average the output over copies flipped along these spatial axes.
        test_time_shift: average the output over copies moved by this many pixels in-plane (0: off).
        in_channels, intensity: derived from the task and its options; given (from a record), they must agree.
        labels: what the model segments, names of the task's labels (:class:`medseg.tasks.LabelSet`): one (a binary
            mask, the default: the task's, e.g. ``("lungs",)``, ``("face",)``) or several (``("hair", "skin")``:
            a label map, a softmax over ``len(labels) + 1`` output maps).

    Raises:
        SettingsError: for an unknown task, task option, network or loss, a bad size or threshold, or an
            ``in_channels`` or ``intensity`` that the task would not give (a record from another pre-processing).
    """

    task: str
    network_name: str
    spatial_size: tuple[int, int]
    task_options: dict = field(default_factory=dict)
    network_kwargs: dict = field(default_factory=dict)
    loss_name: str | None = None
    threshold: float = 0.5
    keep_largest: int | None = None
    fill_holes: bool = False
    test_time_flip_axes: tuple[int, ...] = ()
    test_time_shift: int = 0
    in_channels: int | None = None
    intensity: dict | None = None
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            task = get_task(self.task)
            task.resolve_options(**self.task_options)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        for name, value, registry in (
            ("network_name", self.network_name, NETWORKS),
            ("loss_name", self.loss_name, LOSSES),
        ):
            if value is not None and value not in registry:
                raise SettingsError(f"unknown {name} {value!r}; valid: {', '.join(sorted(registry))}")
        if self.network_kwargs and (unknown := unknown_arguments(self.network_name, **self.network_kwargs)):
            raise SettingsError(
                f"network_kwargs {self.network_kwargs} hold arguments network_name {self.network_name!r} does not take "
                f"({', '.join(unknown)}): another network's? Give its own (--network_kwargs {{}} for its defaults)"
            )
        check_flag("fill_holes", self.fill_holes)
        size = tuple(self.spatial_size)
        if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
            raise SettingsError(f"spatial_size must be two positive integers, got {self.spatial_size!r}")
        if self.threshold != "otsu" and not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise SettingsError(f"threshold must be a probability in (0, 1) or 'otsu', got {self.threshold!r}")
        object.__setattr__(self, "spatial_size", size)
        object.__setattr__(self, "test_time_flip_axes", tuple(int(axis) for axis in self.test_time_flip_axes))
        object.__setattr__(self, "keep_largest", self.keep_largest or None)
        try:
            channels, intensity = task.channels(**self.task_options), task.intensity(**self.task_options)
        except ValueError as error:
            raise SettingsError(f"task_options: {error}") from None
        for name, derived in (("in_channels", channels), ("intensity", intensity)):
            given = getattr(self, name)
            if given is not None and _plain(given) != _plain(derived):
                raise SettingsError(
                    f"{name} {given!r} is not what task {self.task!r} gives ({derived!r}): "
                    "the model was trained with another pre-processing"
                )
            object.__setattr__(self, name, derived)
        labels = (
            self.labels.split(",") if isinstance(self.labels, str) else self.labels
        )  # "hair,skin" on a command line
        try:
            task.label_set.members(labels)
        except ValueError as error:
            raise SettingsError(f"labels: {error}") from None
        object.__setattr__(self, "labels", tuple(labels or ()) or task.label_set.default)
        if self.out_channels > 1 and unknown_arguments(self.network_name, out_channels=self.out_channels):
            raise SettingsError(
                f"network_name {self.network_name!r} segments one label; labels {', '.join(self.labels)} need a "
                "network with one output map per label (unet, unet2d, basicunet, fcn32s, fcdensenet)"
            )

    @property
    def volumetric(self) -> bool:
        """Whether the task's images are volumes (a 2D network segments their axial slices)."""
        return get_task(self.task).volumetric

    @property
    def out_channels(self) -> int:
        """The network's output maps: one for one label (a sigmoid), one per label and one for the background for
        several (a softmax)."""
        return 1 if len(self.labels) == 1 else len(self.labels) + 1

    @property
    def network_output(self) -> str:
        """What the network returns: ``"logits"`` or ``"probabilities"`` (SegCaps)."""
        return network_output(self.network_name)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values."""
        return _plain(asdict(self))

    def fingerprint(self) -> str:
        """SHA-256 of the fields a checkpoint depends on (:data:`MODEL_FIELDS`), in canonical JSON."""
        record = self.to_dict()
        text = json.dumps({name: record[name] for name in MODEL_FIELDS}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def check_stamp(self, state_dict: Mapping[str, Any], path: str | Path) -> None:
        """Raise a ``ValueError`` naming ``path`` when the checkpoint carries the stamp of another model than these
        settings describe (a checkpoint copied beside another model's record); one without a stamp passes."""
        self.check_recorded_stamp(checkpoint_stamp(state_dict), path)

    def check_recorded_stamp(self, stamp: Mapping[str, Any] | None, path: str | Path) -> None:
        """:meth:`check_stamp` of a stamp read from a file (a checkpoint's, or an exported model's metadata)."""
        if stamp is not None and stamp.get("sha256") != self.fingerprint():
            raise SettingsFileError(
                f"{path}: trained as another model (task {stamp.get('task')!r}, network {stamp.get('network_name')!r}, "
                f"fingerprint {str(stamp.get('sha256'))[:12]}) than its settings.json describes (task {self.task!r}, "
                f"network {self.network_name!r}, fingerprint {self.fingerprint()[:12]}): a checkpoint and its record "
                "belong together"
            )

    def stamp(self) -> dict[str, Any]:
        """What a model file carries (:data:`STAMP_KEY`): the record, its fingerprint, and the task and network for
        the message when it is found beside another model's record."""
        return {
            "sha256": self.fingerprint(),
            "task": self.task,
            "network_name": self.network_name,
            "settings": self.to_dict(),
        }

    @classmethod
    def from_stamp(cls, stamp: Mapping[str, Any], path: str | Path) -> ModelSettings | None:
        """The record a model file's stamp carries (``None`` for a stamp without one).

        Raises:
            SettingsFileError: naming ``path``, for a record that is not valid or not the one its fingerprint says.
        """
        if not isinstance(stamp.get("settings"), Mapping):
            return None
        try:
            settings = cls.from_dict(stamp["settings"])
        except (TypeError, ValueError) as error:
            raise SettingsFileError(f"{path}: the settings it carries are not valid ({error})") from None
        if settings.fingerprint() != stamp.get("sha256"):
            raise SettingsFileError(f"{path}: the settings it carries do not match their fingerprint (altered?)")
        return settings

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ModelSettings:
        """A record written by :meth:`to_dict`; unknown keys raise a :class:`SettingsError`."""
        unknown = sorted(set(record) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(f"not a setting of a trained model: {', '.join(unknown)}")
        return cls(**record)

    def replace(self, **changes: Any) -> ModelSettings:
        """A copy with ``changes`` (re-validated)."""
        return replace(self, **changes)

    def differences(self, other: ModelSettings, names: Sequence[str] = MODEL_FIELDS) -> dict[str, tuple[Any, Any]]:
        """``{name: (self's value, other's value)}`` for the fields of ``names`` that differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {name: (mine[name], theirs[name]) for name in names if mine[name] != theirs[name]}

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/settings.json`` atomically; return its path."""
        return write_json(Path(folder) / SETTINGS_FILE, self.to_dict())

    @classmethod
    def read(cls, folder: str | Path) -> ModelSettings:
        """The record of ``folder/settings.json``.

        Raises:
            SettingsFileError: naming the file, when it is missing, not JSON, or not a valid record.
        """
        path = Path(folder) / SETTINGS_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SettingsFileError(
                f"{path}: no such file; a medseg checkpoint carries the settings it was trained with there "
                "(training writes it)"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise SettingsFileError(f"{path}: cannot be read ({error})") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsFileError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise SettingsFileError(f"{path}: not a settings record (a JSON object)")
        try:
            return cls.from_dict(record)
        except (TypeError, ValueError) as error:
            raise SettingsFileError(f"{path}: {error}") from None

    def with_given(self, source: str | Path, **given: Any) -> ModelSettings:
        """These settings with what is ``given`` (``None`` values: not given), for the model of ``source``.

        A given field of how the model is applied (:data:`APPLICATION_FIELDS`: threshold, cleaning, test-time
        flips and shifts) replaces the recorded one; a given field the checkpoint depends on (:data:`MODEL_FIELDS`)
        must equal the recorded one.

        Raises:
            SettingsError: for a name that is not a setting; :class:`SettingsFileError` naming ``source``, the
                field and both values, for a given model field that contradicts the record.
        """
        given = {name: value for name, value in given.items() if value is not None}
        unknown = sorted(set(given) - set(MODEL_FIELDS) - set(APPLICATION_FIELDS) - {"loss_name"})
        if unknown:
            raise SettingsError(f"not a setting of a trained model: {', '.join(unknown)}")
        recorded = self.to_dict()
        conflicts = [
            f"{name} {_plain(value)!r} (trained with {recorded[name]!r})"
            for name, value in given.items()
            if name in MODEL_FIELDS and _plain(value) != recorded[name]
        ]
        if conflicts:
            raise SettingsFileError(
                f"{source}: the model was trained with other settings than those given: {'; '.join(conflicts)}. "
                "Leave them out: a trained model is applied with its own"
            )
        applied = {name: value for name, value in given.items() if name in APPLICATION_FIELDS}
        return self.replace(**applied) if applied else self


def checkpoint_stamp(state_dict: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings stamp a checkpoint carries (:meth:`ModelSettings.stamp`), or ``None`` (from elsewhere)."""
    metadata = getattr(state_dict, "_metadata", None) or {}
    stamp = metadata.get(STAMP_KEY)
    return dict(stamp) if isinstance(stamp, Mapping) else None
