"""Task records: one per dataset family (adapter, pre-processing, label decoding, options, synthetic data).

See :mod:`medseg.tasks.base`. The built-in tasks are ``luna16``, ``ct``, ``cxr``, ``lfw`` and ``helen``.
"""

from . import ct, cxr, faces  # noqa: F401 (registers the built-in tasks)
from .base import (
    STAGES,
    TASKS,
    Task,
    TaskOption,
    get_task,
    register_task,
    resolve_synthetic,
    synthesize,
    synthetic_names,
)

__all__ = [
    "STAGES",
    "TASKS",
    "Task",
    "TaskOption",
    "get_task",
    "register_task",
    "resolve_synthetic",
    "synthesize",
    "synthetic_names",
]
