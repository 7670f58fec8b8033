"""One line, not a traceback, when a bundle run stops on a setting, a data folder or a model file its user gave.

MONAI's config parser wraps an error raised while it builds a component or evaluates an expression in a
``RuntimeError`` naming the config item, and Python prints both tracebacks. :func:`report_errors_in_one_line`, the
first step of every medseg bundle's ``initialize``, has an uncaught error caused by one of :data:`USER_ERRORS`
end the process with exit status 1 and one line, ``medseg bundle: error: <the message>`` (which names the setting
or the file and what is valid); any other error keeps its traceback. This is the one place a bundle run's errors
are mapped to its exit status; the ``medseg`` command maps its own in :func:`medseg.cli.main`.
"""

from __future__ import annotations

import sys
from types import TracebackType

from medseg.inference import CheckpointError
from medseg.pipeline import SettingsError

__all__ = ["USER_ERRORS", "report_errors_in_one_line", "user_error"]

#: Errors about what the user gave, whose message says all there is to say.
USER_ERRORS = (SettingsError, CheckpointError)


def user_error(error: BaseException | None) -> BaseException | None:
    """The first of :data:`USER_ERRORS` in ``error``'s chain of causes, or ``None``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, USER_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def report_errors_in_one_line() -> None:
    """Make an uncaught error caused by one of :data:`USER_ERRORS` print one line on stderr (the process then exits
    with status 1, as Python ends on any uncaught error); idempotent."""
    previous = sys.excepthook
    if getattr(previous, "medseg_one_line", False):
        return

    def hook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        found = user_error(error)
        if found is None:
            previous(kind, error, traceback)
        else:
            print(f"medseg bundle: error: {found}", file=sys.stderr)

    hook.medseg_one_line = True  # type: ignore[attr-defined]
    sys.excepthook = hook
