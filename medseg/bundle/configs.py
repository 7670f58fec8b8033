"""Which config files each workflow of a medseg bundle merges, in MONAI's order (later files override earlier ones).

Every medseg bundle is the one template in ``bundles/template/`` with its own parameters: ``configs/common.json``
(the template's definitions: defaults, network, data, engines, handlers) comes first, then the bundle's own
``configs/train.json`` (what differs: task, network, loss, sizes, defaults), then the workflow's overlay. These are
the lists a user passes as ``--config_file`` in the bundle folder (its ``docs/README.md``); medseg's own callers
(the demo, the loss comparison, the benchmarks) take them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["WORKFLOWS", "config_files", "config_list", "read_config"]

#: Workflow -> the config files it merges, relative to the bundle folder.
WORKFLOWS: dict[str, tuple[str, ...]] = {
    "train": ("configs/common.json", "configs/train.json"),
    "evaluate": ("configs/common.json", "configs/train.json", "configs/evaluate.json"),
    "inference": ("configs/common.json", "configs/inference.json"),
    "multi_gpu_train": ("configs/common.json", "configs/train.json", "configs/multi_gpu_train.json"),
    "multi_gpu_evaluate": (
        "configs/common.json",
        "configs/train.json",
        "configs/evaluate.json",
        "configs/multi_gpu_evaluate.json",
    ),
    "inference_onnx": ("configs/common.json", "configs/inference.json", "configs/inference_onnx.json"),
}


def config_files(bundle: str | Path, workflow: str) -> list[str]:
    """The config files of ``workflow`` in ``bundle``, as paths (for ``monai.bundle.ConfigParser.read_config``)."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown bundle workflow {workflow!r}; valid: {', '.join(WORKFLOWS)}")
    return [str(Path(bundle) / name) for name in WORKFLOWS[workflow]]


def config_list(workflow: str) -> str:
    """``--config_file``'s value for ``workflow`` as a user types it in the bundle folder:
    ``"['configs/common.json','configs/train.json']"``."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown bundle workflow {workflow!r}; valid: {', '.join(WORKFLOWS)}")
    return str(list(WORKFLOWS[workflow])).replace(" ", "")


def read_config(bundle: str | Path, workflow: str, **overrides: Any) -> ConfigParser:
    """The parser of the bundle's ``workflow`` configs and its ``configs/metadata.json`` (as ``_meta_``), with
    ``bundle_root`` set to the bundle and ``overrides`` applied (as ``--key value`` would), as
    ``python -m monai.bundle run`` reads them: ``read_config(bundle, "train").get_parsed_content("model")``."""
    parser = ConfigParser()
    parser.read_config(config_files(bundle, workflow))
    parser.read_meta(str(Path(bundle) / "configs" / "metadata.json"))
    parser.update({"bundle_root": str(bundle), **overrides})
    return parser
