"""What the sub-commands share: argparse types that check a value before any data is read, the usage error, and
the flags of the task options (from the task records, :mod:`medseg.tasks`)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medseg.tasks import TaskOption

__all__ = [
    "SEED_RANGE",
    "GivenOnce",
    "UsageError",
    "add_task_options",
    "boolean",
    "entropy_bits",
    "folder",
    "fraction",
    "integer",
    "names",
    "non_negative",
    "positive",
    "probability_or_otsu",
    "seeds",
    "setting",
    "task_options",
]

#: Seeds scikit-learn and NumPy's legacy generators accept.
SEED_RANGE = (0, 2**32 - 1)


class UsageError(Exception):
    """A usage error found after parsing; the message starts with the argument it is about."""


class GivenOnce(argparse.Action):
    """Store an option's values, refusing the option a second time: argparse keeps the last of a repeated option,
    which for a list of fixed length (``--spatial-size H W``) silently drops the first. Options of any number of
    values (``--data-root DIR [DIR ...]``) extend instead (argparse's ``action="extend"``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        seen = f"_given_{self.dest}"
        if getattr(namespace, seen, False):
            shown = " ".join(map(str, values)) if isinstance(values, list) else values
            raise argparse.ArgumentError(self, f"given twice (again: {shown}); give it once")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def integer(low: int, high: int | None = None, also: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (or the single value ``also``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value != also and (value < low or (high is not None and value > high)):
            wanted = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(
                f"must be {wanted}" + (f" (or {also})" if also is not None else "") + f", got {value}"
            )
        return value

    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive(text: str) -> float:
    """An argparse type: a number above 0."""
    if not (value := _number(text)) > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative(text: str) -> float:
    """An argparse type: a number of at least 0."""
    if not (value := _number(text)) >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a share in [0, 1)."""
    if not 0.0 <= (value := _number(text)) < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def seeds(text: str) -> list[int]:
    """An argparse type: comma-separated distinct seeds (``0,1,2``), each in :data:`SEED_RANGE`."""
    parse = integer(*SEED_RANGE)
    values = [parse(part.strip()) for part in text.split(",") if part.strip()]
    if not values or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated seeds, got {text!r}")
    return values


def boolean(text: str) -> bool:
    """An argparse type: ``true`` or ``false`` (any case, or 1/0), as a bundle override spells it."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def folder(text: str) -> str:
    """An argparse type: an existing folder (a symbolic link loop or a file is named as such)."""
    try:
        os.stat(text)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: {error.strerror}") from None
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return text


def add_model_dir(parser: Any, required: bool = True, what: str = "trained") -> None:
    """``--model-dir DIR`` (``--model_dir`` too): a trained model's folder with its ``models/model.pt``."""
    parser.add_argument(
        "--model-dir", "--model_dir", dest="model_dir", type=folder, required=required,
        help=f"a {what} model's folder (a bundle run's --output_dir, or a bundle trained there) with models/model.pt",
    )  # fmt: skip


def entropy_bits(text: str) -> float:
    """An argparse type: an entropy of a binary outcome in bits, in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: an entropy in bits of a binary outcome lies in [0, 1]")
    return value


def probability_or_otsu(text: str) -> float | str:
    """An argparse type: a threshold in (0, 1), or ``otsu``."""
    if text == "otsu":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability or 'otsu', got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) or 'otsu', got {text}")
    return value


def names(kind: str, registry: Any) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names of ``registry`` (unknown names are a usage error)."""

    def parse(text: str) -> list[str]:
        given = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in given if name not in registry]
        if unknown or not given:
            shown = ", ".join(map(repr, unknown)) or "(none given)"
            raise argparse.ArgumentTypeError(f"unknown {kind} {shown}; valid: {', '.join(sorted(registry))}")
        return given

    return parse


def setting(text: str) -> tuple[str, Any]:
    """An argparse type: ``KEY=VALUE`` for a bundle override, the value read as JSON when it parses."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _declared(name: str) -> TaskOption:
    """The first declaration of a task option called ``name`` (tasks that share an option share its flag)."""
    from medseg.tasks import TASKS

    return next(option for task in TASKS.values() for option in task.options if option.name == name)


def _option_names(stages: Sequence[str]) -> list[str]:
    from medseg.tasks import TASKS

    return list(dict.fromkeys(o.name for task in TASKS.values() for o in task.options if o.stage in stages))


def _flags(option: TaskOption) -> str:
    return option.flag + (f"/{option.negative_flag}" if option.negative_flag else "")


def _users(name: str) -> str:
    from medseg.tasks import TASKS

    return ", ".join(task.name for task in TASKS.values() if any(o.name == name for o in task.options))


def add_task_options(parser: argparse.ArgumentParser, stages: Sequence[str]) -> None:
    """One flag per task option of ``stages`` (default ``None``: "not given"), its help naming the tasks."""
    for name in _option_names(stages):
        option = _declared(name)
        help_text = f"{_users(name)}: {option.help}"
        if option.type is None:  # a boolean: its flag sets True, the negative flag (if any) False
            group = parser.add_mutually_exclusive_group()
            group.add_argument(option.flag, dest=name, action="store_true", default=None, help=help_text)
            if option.negative_flag:
                group.add_argument(
                    option.negative_flag, dest=name, action="store_false", help=f"{_users(name)}: not so"
                )
            continue
        kwargs = {"choices": _choices(name)} if option.choices else {}
        action = "extend" if option.nargs in ("+", "*") else GivenOnce  # a repeated flag extends or is refused
        parser.add_argument(option.flag, dest=name, type=option.type, nargs=option.nargs, action=action,
                            help=help_text, **kwargs)  # fmt: skip


def _choices(name: str) -> list:
    """Every task's choices of an option they share (``layout``: chest X-rays' and skin lesions'); the task's own are
    checked when the options reach it (:meth:`medseg.tasks.Task.resolve_options`)."""
    from medseg.tasks import TASKS

    declared = [o.choices for task in TASKS.values() for o in task.options if o.name == name and o.choices]
    return list(dict.fromkeys(choice for choices in declared for choice in choices))


def task_options(args: argparse.Namespace, stages: Sequence[str]) -> dict[str, Any]:
    """The task options given on the command line; a flag the task does not take is a usage error."""
    from medseg.tasks import TASKS

    task = TASKS[args.task]
    accepted = {option.name for option in task.options if option.stage in stages}
    given = {name: value for name, value in vars(args).items() if name in _option_names(stages) and value is not None}
    misplaced = [_flags(_declared(name)) for name in given if name not in accepted]
    if misplaced:
        raise UsageError(f"{', '.join(misplaced)} do(es) not apply to --task {args.task}")
    for option in task.options:
        if option.choices and option.name in given and given[option.name] not in option.choices:
            valid = ", ".join(map(str, option.choices))
            raise UsageError(
                f"argument {option.flag}: {given[option.name]!r} is not a --task {args.task} choice: {valid}"
            )
    return {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}
