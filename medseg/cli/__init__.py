"""The ``medseg`` command: one sub-command per job, each a thin wrapper over the library.

Task names, their options and their synthetic layouts come from the task records (:mod:`medseg.tasks`): a
registered task appears here with its flags, and a flag given to a task that does not take it is refused.

Exit status: 0 done; 1 the data could not be used (the message says which file and why); 2 a usage error, one
line naming the argument, as argparse reports its own (a value out of range, an output path that cannot be
written, a data root that is not a folder), checked before any data is read; 130 interrupted (Ctrl-C) or 143
stopped (SIGTERM), one line, with no partial output file. ``medseg infer`` returns 1 when any input failed, and
3 when all were segmented but ``--review-threshold`` marked some for review.
Each sub-command is a module of this package (its parser and its ``run``). The library (PyTorch, MONAI) is imported
only once :func:`main` runs, so that Ctrl-C during the imports is an interruption like any other.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from . import card, compare, demo, export, infer, models, prepare, synth
from .arguments import UsageError

__all__ = ["build_parser", "main"]

#: The sub-commands, in the order ``--help`` lists them.
COMMANDS = (synth, prepare, demo, models, infer, export, card, compare)


def build_parser() -> argparse.ArgumentParser:
    """The ``medseg`` parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="medseg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``medseg`` command; returns the exit status (see the module docstring).

    Ctrl-C prints one line and returns 130, wherever it lands: Python raises ``KeyboardInterrupt``, but an import
    of a compiled extension interrupted half-way fails with another error (NumPy: "cannot load module more than
    once per process"), so the interruption is recorded by the SIGINT handler and any error after it counts as it.
    """
    interrupted: list[int] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    # only Python's own handlers are replaced (a background job that ignores SIGINT goes on ignoring it), and only
    # in the main thread, the one place a handler can be set; SIGTERM (kill, a scheduler's stop) ends the run the
    # same way, so that no temporary file is left behind
    in_main_thread = threading.current_thread() is threading.main_thread()
    replace_int = in_main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, on_interrupt) if replace_int else None
    replace_term = in_main_thread and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    previous_term = signal.signal(signal.SIGTERM, on_interrupt) if replace_term else None
    command = "medseg"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"medseg {args.command}"
        try:
            return args.func(args)
        except UsageError as error:
            args.command_parser.error(str(error))  # exits 2 with its usage line, as argparse does
    except (KeyboardInterrupt, Exception) as error:
        if not (interrupted or isinstance(error, KeyboardInterrupt)):
            raise
        print(f"{command}: interrupted", file=sys.stderr)
        return 128 + (interrupted[0] if interrupted else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return 2


if __name__ == "__main__":
    sys.exit(main())
