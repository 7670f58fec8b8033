"""Task records: one per dataset family (adapter, pre-processing, label decoding, options, synthetic data).

See :mod:`medseg.tasks.base`; :mod:`medseg.tasks.prepare` turns a dataset folder into a datalist.
The built-in tasks are ``luna16``, ``ct``, ``cxr``, ``lfw``, ``helen`` and ``skin``.
"""

from . import ct, cxr, faces, skin  # noqa: F401 (registers the built-in tasks)
from .base import (
    STAGES,
    TASKS,
    LabelSet,
    Task,
    TaskOption,
    get_task,
    register_task,
    synthesize,
    synthetic_names,
)
from .prepare import PrepareReport, check_sources, format_report, prepare_datalist, same_grid

__all__ = [
    "STAGES",
    "TASKS",
    "LabelSet",
    "PrepareReport",
    "Task",
    "TaskOption",
    "check_sources",
    "format_report",
    "get_task",
    "prepare_datalist",
    "register_task",
    "same_grid",
    "synthesize",
    "synthetic_names",
]
