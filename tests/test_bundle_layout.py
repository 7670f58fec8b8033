"""The shape of the code and the bundles, as a model-zoo maintainer and a MONAI engineer would check it (issue 33).

Each bundle folder is plain files written from the one template (``scripts/build_bundles.py --check`` fails on a
stale copy); the library has no import circle and no ``SystemExit`` subclass; one name, ``spatial_size``, carries
the size from the bundles' override to the inferers; the multi-GPU configs pick the device by ``LOCAL_RANK``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import REPO_ROOT

import medseg
from medseg.bundle import read_config

BUNDLES = REPO_ROOT / "bundles"
NAMES = sorted(path.stem for path in (BUNDLES / "template" / "parameters").glob("*.json"))


def test_every_bundle_is_plain_files_written_from_the_template(tmp_path):
    assert NAMES == ["ct_lung_unet", "cxr_lung_unet", "lfw_face_fcn", "luna16_segcaps", "skin_lesion_unet"]
    links = [path for path in BUNDLES.rglob("*") if path.is_symlink()]
    assert links == [], "a bundle copied alone would lose what a link points to"
    script = [sys.executable, str(REPO_ROOT / "scripts" / "build_bundles.py"), "--check"]
    process = subprocess.run(script, capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr
    # a copy of the repository's bundles where one bundle's train.json was edited by hand: the check names it
    copy = tmp_path / "repo"
    shutil.copytree(BUNDLES, copy / "bundles")
    (copy / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "build_bundles.py", copy / "scripts")
    train = copy / "bundles" / "lfw_face_fcn" / "configs" / "train.json"
    train.write_text(train.read_text().replace('"epochs": 200', '"epochs": 100'))
    process = subprocess.run([sys.executable, str(copy / "scripts" / "build_bundles.py"), "--check"],
                             capture_output=True, text=True)  # fmt: skip
    assert process.returncode == 1 and process.stdout.strip() == "stale: bundles/lfw_face_fcn/configs/train.json"


@pytest.mark.parametrize("bundle", NAMES)
def test_train_json_is_the_template_with_the_bundles_own_parameters(bundle):
    """Every top-level setting of a bundle's ``train.json`` is the template's or its own parameter file's: no
    network or loss arguments of networks and losses the bundle does not use, nothing read from the metadata."""
    import json

    template = json.loads((BUNDLES / "template" / "configs" / "train.json").read_text())
    parameters = json.loads((BUNDLES / "template" / "parameters" / f"{bundle}.json").read_text())
    train = json.loads((BUNDLES / bundle / "configs" / "train.json").read_text())
    assert set(train) == set(template) | {key.lstrip("+") for key in parameters if "#" not in key}
    assert "_meta_" not in (BUNDLES / bundle / "configs" / "train.json").read_text()
    network = train["network_name"]
    assert not set(train["network_kwargs"]) & (set(NAMES) | {"unet", "unet2d", "bfcn32s", network})
    assert train["loss_kwargs"] == {}
    metadata = json.loads((BUNDLES / bundle / "configs" / "metadata.json").read_text())
    assert train["spatial_size"] == metadata["network_data_format"]["inputs"]["image"]["spatial_shape"]
    assert all(len(entry) <= 120 and "\n" not in entry for entry in metadata["changelog"].values())


def _library_modules() -> list[str]:
    """Every module of the package but ``medseg.__main__`` (importing it runs the command)."""
    return [info.name for info in pkgutil.walk_packages(medseg.__path__, "medseg.") if info.name != "medseg.__main__"]


def _imports(module: str) -> set[str]:
    """The medseg modules ``module`` imports, anywhere in its file (function-level imports too)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if importlib.util.find_spec(base) and _is_module(candidate) else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("medseg") and name != module}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_library_has_no_import_circle():
    """Between files, with every import counted (those inside functions too): Tarjan's strongly connected
    components of the import graph are single files."""
    modules = _library_modules()
    graph = {module: {target for target in _imports(module) if target in modules} for module in modules}
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert circles == []


def test_no_library_exception_is_a_system_exit():
    for module in _library_modules():
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            assert not issubclass(cls, SystemExit), f"{module}.{cls.__name__}"


def test_one_name_for_the_spatial_size():
    """``image_size`` appears nowhere on the settings path: not in the library, the bundles' configs or the
    command's flags."""
    sources = [*Path(medseg.__file__).parent.rglob("*.py"), *BUNDLES.rglob("*.json")]
    assert [str(path) for path in sources if re.search(r"\bimage_size\b", path.read_text())] == []


def test_multi_gpu_configs_choose_the_device_by_local_rank(monkeypatch):
    """The second process of the first node of two (``RANK=1, LOCAL_RANK=1``) and the first of the second node
    (``RANK=2, LOCAL_RANK=0``): each takes its own machine's GPU, never ``cuda:{global rank}``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for workflow in ("multi_gpu_train", "multi_gpu_evaluate"):
        for rank, local_rank in ((1, 1), (2, 0), (1, 0)):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("LOCAL_RANK", str(local_rank))
            parser = read_config(BUNDLES / "cxr_lung_unet", workflow)
            assert parser.get_parsed_content("device") == f"cuda:{local_rank}", (workflow, rank)


def test_multi_gpu_training_leaves_the_reporting_handlers_to_rank_0_by_type(monkeypatch):
    """The handlers the other ranks drop are found by their type, not by their place in the list: the config's
    own expression, parsed by MONAI with the config's imports, on a list of handlers of another order."""
    import torch.distributed as dist

    parser = read_config(BUNDLES / "cxr_lung_unet", "multi_gpu_train")
    assert "[:" not in parser.get("train#trainer#train_handlers")
    parser["train#resume_handlers"] = []
    parser["train#handlers"] = "$[monai.handlers.StatsHandler(), 'report', ignite.handlers.ProgressBar(), 'budget']"
    for rank, expected in ((1, ["report", "budget"]), (0, ["StatsHandler", "report", "ProgressBar", "budget"])):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        kept = parser.get_parsed_content("train#trainer#train_handlers", lazy=False)
        assert [h if isinstance(h, str) else type(h).__name__ for h in kept] == expected, rank


def test_docs_name_no_removed_command(tmp_path):
    """The inference script, the bundle template's common.json and the ``--bundle`` of infer/export/card are gone;
    no document tells a user to type them."""
    documents = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"), *BUNDLES.glob("*/docs/README.md")]
    stale = re.compile(r"scripts/infer\.py|configs/common\.json|medseg (infer|export|card) --bundle|--image[-_]size")
    texts = {path: path.read_text().partition("## Bundle version history")[0] for path in documents}  # history quoted
    found = [f"{path.name}: {match.group(0)}" for path, text in texts.items() for match in stale.finditer(text)]
    assert found == []
    assert os.path.exists(REPO_ROOT / "scripts" / "build_bundles.py")
