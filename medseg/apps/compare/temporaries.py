"""The temporary folders and files of a comparison's runs, and their removal once the process that made them is gone.

A run leaves temporaries behind only when its process is killed outright (SIGKILL, a node lost, power): the Ray
backend's scratch folder on the node that ran the task (``<tmp>/medseg-run-<pid>_<random>``), the driver's folder
that a run's archive is unpacked into before it takes the run's name (``runs/.../.seed1.<pid>_<random>.tmp``),
and the temporary files of :func:`medseg.files.atomic_path` inside a run folder (``.<name>.<pid>_<random>.tmp*``).
Each name carries the id of the process that made it, so that the node it is on can tell whether that process is
still running:

- scratch folders are cleared on their own node, by the next task that runs there (:func:`scratch_folder`), of the
  processes of that node that are gone;
- under ``--out``, the comparison clears them when it starts (:func:`clear_temporaries`), holding the output
  folder's lock (:func:`medseg.files.output_lock`): no other driver can be unpacking into it then, so every
  unpacking folder is a dead driver's, whichever node it ran on; files inside a run folder are removed only when
  the process named in them is gone (a local bundle process whose driver was killed may still be running).

Nothing whose name is not one of these is touched: a user's own files in ``--out`` stay.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from medseg.files import process_alive

from .spec import Comparison, Run

__all__ = ["SCRATCH_PREFIX", "clear_temporaries", "scratch_folder", "unpacking_folder"]

#: The name of a Ray task's scratch folder on its node: ``medseg-run-<pid>_<random>``.
SCRATCH_PREFIX = "medseg-run-"
_SCRATCH = re.compile(rf"{re.escape(SCRATCH_PREFIX)}(\d+)_\w+")
#: A temporary file of :func:`medseg.files.atomic_path`: ``.<name>.<pid>_<random>.tmp<suffix>``.
_ATOMIC = re.compile(r"\..+\.(\d+)_\w+\.tmp.*")
#: What follows ``.<run folder>.`` in an unpacking folder's name: ``<pid>_<random>.tmp``, or the 8 characters of
#: :func:`tempfile.mkdtemp` that versions before the pid was in the name used.
_UNPACKING = r"(\d+_\w+\.tmp|[a-z0-9_]{8})"


def scratch_folder(root: str | Path | None = None) -> Path:
    """A new scratch folder for a run in ``root`` (default: this node's temporary folder), after removing the
    scratch folders there whose process is gone (a task whose worker or node was killed)."""
    root = Path(root or tempfile.gettempdir())
    for path in root.glob(f"{SCRATCH_PREFIX}*"):
        if (match := _SCRATCH.fullmatch(path.name)) and not process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}_", dir=root))


def unpacking_folder(folder: Path) -> Path:
    """A new hidden folder beside ``folder`` to unpack a run into before it takes ``folder``'s name."""
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}_", suffix=".tmp", dir=folder.parent))


def clear_temporaries(comparison: Comparison, runs: Sequence[Run]) -> list[Path]:
    """Remove the temporaries under ``comparison.out`` that ``runs`` left when their process was killed (see the
    module docstring); return them. The caller holds the output folder's lock."""
    removed: list[Path] = []
    for run in runs:
        folder = run.folder(comparison.out)
        if folder.parent.is_dir():  # unpacking folders: only a driver makes them, and none but this one runs
            unpacking = re.compile(rf"\.{re.escape(folder.name)}\.{_UNPACKING}")
            for path in folder.parent.glob(f".{folder.name}.*"):
                if unpacking.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                    removed.append(path)
        if folder.is_dir():
            for path in folder.rglob(".*.tmp*"):
                if (
                    (match := _ATOMIC.fullmatch(path.name))
                    and path.is_file()
                    and not process_alive(int(match.group(1)))
                ):
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed
