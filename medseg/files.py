"""Output files that are either complete or absent: written under a temporary name, then renamed.

Every file medseg writes (datalists, checkpoints, masks, summaries, figures) goes through :func:`atomic_path`:
the writer fills a temporary file in the target's folder, which is flushed to disk, given the permissions the
umask grants to a new file, checked (not empty; and, when the writer gives one, by a ``verify`` function that reads
it back), and renamed over the target in one step. An interrupted writer (an exception, Ctrl-C, a full disk, a
library that reports a short write without raising, as ITK does) leaves the old target untouched and removes its
temporary file. Only a process killed outright (SIGKILL, power loss) can leave a temporary file behind: it is hidden
(``.<name>.<pid>_<random>.tmp<suffix>``), never mistaken for an output, and removed by a later write of the same
target once the process that wrote it is gone (a temporary of a process still running is never touched).

:func:`output_lock` keeps two runs from writing into one output folder at once.

:func:`check_output_file` and :func:`check_output_folder` tell, before any work is done, whether an output can be
written where it is asked for (not a folder where a file goes, no file on the way, a folder that takes new files),
so that a long run does not fail at its last step.

Python's :func:`tempfile.mkstemp` creates files with mode 0600 whatever the umask; ignite's atomic
``DiskSaver`` inherits that (which is why MONAI's ``CheckpointSaver`` writes checkpoints in place instead).
Here the mode is set from the umask, as ``open()`` would have done.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "IncompleteWriteError",
    "OutputLockedError",
    "OutputPathError",
    "atomic_path",
    "check_output_file",
    "check_output_folder",
    "content_digest",
    "file_suffix",
    "output_lock",
    "process_alive",
    "read_json",
    "remove_stale_temporaries",
    "umask_mode",
    "write_json",
]

_MULTI_SUFFIXES = (".nii.gz", ".tar.gz")


def content_digest(path: str | Path | Sequence[str | Path]) -> str:
    """The SHA-256 of a file's bytes, of a folder's files' bytes in the order of their sorted paths, or of several
    files' (or folders') bytes in the order given."""
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    digest = hashlib.sha256()
    for each in paths:
        for file in sorted(each.rglob("*")) if each.is_dir() else [each]:
            if file.is_file():
                with open(file, "rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()


def file_suffix(path: str | Path) -> str:
    """The extension a reader or writer goes by: ``".nii.gz"`` for ``case.nii.gz``, else the last suffix."""
    name = Path(path).name.lower()
    return next((s for s in _MULTI_SUFFIXES if name.endswith(s)), Path(path).suffix)


def umask_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 without the process umask's bits."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _writer_pid(temporary: Path, target: Path) -> int | None:
    """The process id a temporary file of ``target`` (``.<name>.<pid>_<random>.tmp<suffix>``) carries; ``None`` for a
    file of another name, which medseg did not write."""
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.(\d+)_\w+\.tmp.*", temporary.name)
    return int(match.group(1)) if match else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (this process, or one of another user, counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporary files that earlier writes of ``target`` left behind when their process was killed;
    return them. A temporary of a process still running (another writer, this one) is left alone, and so is any
    file whose name is not that of a medseg temporary."""
    target = Path(target)
    found = sorted(target.parent.glob(f".{glob.escape(target.name)}.*.tmp*")) if target.parent.is_dir() else []
    stale = [path for path in found if (pid := _writer_pid(path, target)) is not None and not process_alive(pid)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the path and the reason."""


def _existing_folder(path: Path) -> Path:
    """The nearest existing ancestor of ``path`` (or ``path``), which must be a folder new files can be created in.

    Writing is tried (a hidden temporary file, removed at once) rather than read from the permission bits, which
    say nothing of read-only file systems and of what root may do.
    """
    ancestor = path
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{ancestor} is not a folder" + ("" if ancestor == path else f", so {path} cannot be made")
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".medseg.", suffix=".tmp", dir=ancestor)
    except OSError as error:
        raise OutputPathError(f"cannot create files in {ancestor}: {error.strerror}") from error
    os.close(handle)
    os.unlink(probe)
    return ancestor


def check_output_file(path: str | Path) -> Path:
    """Raise :class:`OutputPathError` unless a file can be written at ``path`` (missing folders are made later).

    ``path`` must not be a folder, the nearest existing folder on its way must be one (not a file) and take new
    files.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file name")
    _existing_folder(path.parent)
    return path


def check_output_folder(path: str | Path, empty: bool = False) -> Path:
    """Raise :class:`OutputPathError` unless files can be written in the folder ``path`` (made later if missing).

    Args:
        path: the output folder.
        empty: it must also be new or empty, so that what is written there is all it holds.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} is a file, not a folder")
    _existing_folder(path)
    if empty and path.is_dir():
        entries = sorted(p.name for p in path.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputPathError(f"{path} is not empty ({len(entries)} entries: {shown}); give a new or empty folder")
    return path


class IncompleteWriteError(OSError):
    """A writer that finished without raising, but left an empty or unreadable file (a full disk, mostly)."""


@contextlib.contextmanager
def atomic_path(target: str | Path, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A temporary path to write ``target`` to; renamed over ``target`` when the block completes.

    The temporary name keeps the target's extension (``.nii.gz``, ``.pt``, ``.png``), so writers that choose a
    format by extension (SimpleITK, nibabel, Pillow, matplotlib) work unchanged. Before the rename the file is
    flushed to disk and checked: an empty file raises :class:`IncompleteWriteError`, and ``verify(temporary)``, when
    given, may read it back and raise. On any exception, including ``KeyboardInterrupt``, the temporary file is
    removed and the target is left as it was.

    Example::

        with atomic_path(out / "model.pt") as temporary:
            torch.save(state, temporary)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    prefix = f".{target.name}.{os.getpid()}_"
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=f".tmp{file_suffix(target)}", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        if temporary.stat().st_size == 0:
            raise IncompleteWriteError(f"{target}: nothing was written (is the disk full?)")
        if verify is not None:
            verify(temporary)
        os.chmod(temporary, umask_mode())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# a list of integers as json.dumps(indent=...) lays it out: real newlines occur only between tokens, never in strings
_INT_LIST = re.compile(r"\[\n\s*-?\d+(?:,\n\s*-?\d+)*\n\s*\]")


def write_json(path: str | Path, payload: Any) -> Path:
    """``payload`` as JSON at ``path``, through :func:`atomic_path`: one key or entry a line, but lists of integers
    (slice indices, sizes) on one line. Returns the path."""
    text = json.dumps(payload, indent=1)
    text = _INT_LIST.sub(lambda match: "[" + ", ".join(re.findall(r"-?\d+", match.group(0))) + "]", text)
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(text + "\n")
    return path


def read_json(path: str | Path, what: str, error: type[Exception]) -> Any:
    """The JSON value in ``path``; ``error`` with one line naming the file (``PATH: cannot be read as WHAT (...)``)
    for one that cannot be read or decoded. The caller checks the value's shape."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{path}: cannot be read as {what} ({problem})") from None


class OutputLockedError(OutputPathError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def output_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` locked while the block runs, so that a second run writing into the same folder is refused
    instead of interleaving its files with this one's. The lock is ``fcntl.flock`` on the folder itself (no lock
    file is left behind), released when the block ends or the process does, however it ends.

    Raises:
        OutputLockedError: when another process holds the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(
                f"{folder} is in use by another run writing to it; wait for it to end or give another folder"
            ) from None
        yield folder
    finally:
        os.close(handle)  # releases the lock
