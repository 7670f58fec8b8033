"""Running a bundle's configs as a user types them: ``python -m monai.bundle run --config_file ... --key value``.

The demo and the loss-comparison runner train and evaluate through the bundles' own configs, in a subprocess
each (the exact command a user would type, which it prints or logs), never through a second training loop.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseg.bundle import config_list

__all__ = ["RunsStopped", "allow_runs", "bundle_command", "run_bundle", "shown", "stop_running"]

#: The bundle processes running now (from any thread), so that an interrupted runner can stop them.
_RUNNING: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
#: Set by :func:`stop_running`: no bundle process starts until :func:`allow_runs`.
_STOPPED = threading.Event()


class RunsStopped(RuntimeError):
    """A bundle run asked for after :func:`stop_running`: it is not started (it resumes with the next runner)."""


def bundle_command(workflow: str, overrides: Mapping[str, Any]) -> list[str]:
    """``[python, -m, monai.bundle, run, --config_file, configs/train.json, --key, value, ...]`` for a
    bundle ``workflow`` (``train``, ``evaluate``, ... of :data:`medseg.bundle.WORKFLOWS`)."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_list(workflow)]
    for key, value in overrides.items():
        if value is not None:
            command += [f"--{key}", str(value)]
    return command


def shown(command: Sequence[str]) -> str:
    """A command as a user types it: a config list in double quotes, the rest shell-quoted."""
    return " ".join(f'"{a}"' if "'" in a and '"' not in a else shlex.quote(a) for a in command)


def _die_with_parent() -> Any:
    """A ``preexec_fn`` that has Linux send SIGTERM to the child when the process that started it dies
    (``prctl(PR_SET_PDEATHSIG)``), so that a killed Ray worker leaves no bundle process training on; ``None``
    where there is no such call. The C function is looked up before the fork, so the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG, <linux/prctl.h>
    return lambda: prctl(set_parent_death_signal, int(signal.SIGTERM))


def _wait(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    with _LOCK:  # the same lock as stop_running's: a process either starts before the stop (and is stopped) or not
        if _STOPPED.is_set():
            raise RunsStopped(f"not started, the runner is stopping: {shown(command)}")
        process = subprocess.Popen(command, **kwargs)
        _RUNNING.add(process)
    try:
        return subprocess.CompletedProcess(command, process.wait())
    finally:
        with _LOCK:
            _RUNNING.discard(process)


def stop_running(timeout: float = 30.0) -> None:
    """Stop the bundle processes still running (SIGTERM, then SIGKILL after ``timeout`` seconds) and start no
    other until :func:`allow_runs`: a worker thread between two runs, or between training and evaluation, must not
    start the next one while the runner stops."""
    with _LOCK:
        _STOPPED.set()
        running = list(_RUNNING)
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def allow_runs() -> None:
    """Let bundle processes start again (a runner starting in a process where an earlier one was stopped)."""
    _STOPPED.clear()


def run_bundle(
    bundle: str | Path,
    workflow: str,
    overrides: Mapping[str, Any],
    log: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> subprocess.CompletedProcess:
    """Run the bundle's ``workflow`` with ``overrides`` in the bundle folder; output to ``log`` (appended) or the
    console. Returns the finished process (its ``returncode`` says whether it succeeded). ``die_with_parent``:
    the process is stopped when this one dies, however it dies (for a Ray worker, which runs one run at a time)."""
    command = bundle_command(workflow, overrides)
    options: dict[str, Any] = {"cwd": bundle, "env": {**os.environ, **(env or {})}}
    if die_with_parent:
        options["preexec_fn"] = _die_with_parent()
    if log is None:
        print(f"\n$ (cd {bundle} && {shown(command)})", flush=True)
        return _wait(command, **options)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as stream:
        stream.write(f"$ (cd {bundle} && {shown(command)})\n")
        stream.flush()
        return _wait(command, **options, stdout=stream, stderr=subprocess.STDOUT)
