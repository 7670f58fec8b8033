"""Which config files each workflow of a medseg bundle runs, in MONAI's order (later files override earlier ones).

As in every MONAI model-zoo bundle, ``configs/train.json`` runs training and ``configs/inference.json`` inference,
each alone; evaluation and multi-GPU runs are overlays given after ``train.json`` (and ONNX Runtime inference
after ``inference.json``). These are the ``--config_file`` values a user types in the bundle folder (its
``docs/README.md``); medseg's own callers (the demo, the loss comparison, the benchmarks) take them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["WORKFLOWS", "config_files", "config_list", "read_config"]

#: Workflow -> the config files it merges, relative to the bundle folder.
WORKFLOWS: dict[str, tuple[str, ...]] = {
    "train": ("configs/train.json",),
    "evaluate": ("configs/train.json", "configs/evaluate.json"),
    "inference": ("configs/inference.json",),
    "inference_onnx": ("configs/inference.json", "configs/inference_onnx.json"),
    "multi_gpu_train": ("configs/train.json", "configs/multi_gpu_train.json"),
    "multi_gpu_evaluate": ("configs/train.json", "configs/evaluate.json", "configs/multi_gpu_evaluate.json"),
}


def config_files(bundle: str | Path, workflow: str) -> list[str]:
    """The config files of ``workflow`` in ``bundle``, as paths (for ``monai.bundle.ConfigParser.read_config``)."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown bundle workflow {workflow!r}; valid: {', '.join(WORKFLOWS)}")
    return [str(Path(bundle) / name) for name in WORKFLOWS[workflow]]


def config_list(workflow: str) -> str:
    """``--config_file``'s value for ``workflow`` as a user types it in the bundle folder: ``configs/train.json``,
    or a list, ``"['configs/train.json','configs/evaluate.json']"``."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown bundle workflow {workflow!r}; valid: {', '.join(WORKFLOWS)}")
    files = WORKFLOWS[workflow]
    return files[0] if len(files) == 1 else str(list(files)).replace(" ", "")


def read_config(bundle: str | Path, workflow: str, **overrides: Any) -> ConfigParser:
    """The parser of the bundle's ``workflow`` configs and its ``configs/metadata.json`` (as ``_meta_``), with
    ``bundle_root`` set to the bundle and ``overrides`` applied (as ``--key value`` would), as
    ``python -m monai.bundle run`` reads them: ``read_config(bundle, "train").get_parsed_content("model")``."""
    parser = ConfigParser()
    parser.read_config(config_files(bundle, workflow))
    parser.read_meta(str(Path(bundle) / "configs" / "metadata.json"))
    parser.update({"bundle_root": str(bundle), **overrides})
    return parser
