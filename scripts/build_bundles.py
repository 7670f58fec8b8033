"""Write the bundles' configs from the template: ``python scripts/build_bundles.py [--check]``.

``bundles/template/`` holds, once, what the bundles share: ``configs/train.json`` and ``configs/inference.json``
(complete configs with the template's defaults), the overlays (``evaluate.json``, ``multi_gpu_train.json``,
``multi_gpu_evaluate.json``, ``inference_onnx.json``), ``logging.conf`` and ``LICENSE``. What each bundle sets
otherwise is in ``bundles/template/parameters/<bundle>.json``. For each of these, this writes, as plain files:

- ``bundles/<bundle>/configs/train.json``: the template's ``train.json`` with the bundle's parameters merged in as
  MONAI merges a list of config files (``monai.bundle.ConfigParser.load_config_files``: ``a#b`` keys set nested
  items, ``+key`` extends a list), so that it runs training alone;
- ``configs/inference.json``, the overlays, ``configs/logging.conf`` and ``LICENSE``: the template's.

A bundle's own ``configs/metadata.json`` and ``docs/README.md`` are written by hand. ``--check`` writes nothing
and exits 1 naming every file that differs from what this would write (``tests/test_bundle_layout.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
TEMPLATE = BUNDLES / "template"
#: Template files copied into every bundle as they are, relative to a bundle folder.
COPIED = (
    "LICENSE",
    "configs/inference.json",
    "configs/evaluate.json",
    "configs/inference_onnx.json",
    "configs/multi_gpu_train.json",
    "configs/multi_gpu_evaluate.json",
    "configs/logging.conf",
)
#: Settings the template leaves to each bundle.
REQUIRED = ("task", "network_name", "loss_name")
WIDTH = 120


def formatted(value: Any, indent: int = 0) -> str:
    """JSON with four-space indents, a list or object kept on one line when it fits in :data:`WIDTH` columns."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or indent + len(flat) <= WIDTH - 8:
        return flat
    inner = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {formatted(item, indent + 4)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(f"{inner}{formatted(item, indent + 4)}" for item in value) + "\n" + " " * indent + "]"


def bundle_files(name: str) -> dict[Path, str]:
    """What the template writes into bundle ``name``: path -> content."""
    parameters = TEMPLATE / "parameters" / f"{name}.json"
    train = ConfigParser.load_config_files([TEMPLATE / "configs" / "train.json", parameters])
    missing = [key for key in REQUIRED if train.get(key) is None]
    if missing:
        raise SystemExit(f"{parameters}: set {', '.join(missing)}")
    folder = BUNDLES / name
    files = {folder / "configs" / "train.json": formatted(train) + "\n"}
    files.update({folder / relative: (TEMPLATE / relative).read_text() for relative in COPIED})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a bundle's file is stale")
    args = parser.parse_args(argv)
    stale = []
    for parameters in sorted((TEMPLATE / "parameters").glob("*.json")):
        for path, content in bundle_files(parameters.stem).items():
            if path.is_symlink() or not path.is_file() or path.read_text() != content:
                stale.append(path)
                if not args.check:
                    path.unlink(missing_ok=True)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(content)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(BUNDLES.parent)}")
    if args.check and stale:
        print("run `python scripts/build_bundles.py` to write them from bundles/template", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
