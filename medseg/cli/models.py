"""``medseg models``: the models shipped with medseg (:mod:`medseg.pretrained`), what they segment, what they were
trained on under which terms, how well they do, and their size.

``medseg infer --model NAME`` runs one; ``--verify`` re-runs its golden cases. ``--json`` prints the manifests (with
each model's folder and size) for machines. Exit status: 0 listed; 1 a shipped model's manifest cannot be read (one
line naming the file).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _result(value: Any) -> str:
    """A measured result in a few words: ``mean ± SD (n cases)`` for a spread, else its JSON."""
    if isinstance(value, dict) and "mean" in value:
        spread = f" ± {_number(value['sd'])}" if "sd" in value else ""
        cases = f" ({value['n']} cases)" if "n" in value else ""
        return f"{_number(value['mean'])}{spread}{cases}"
    return _number(value) if isinstance(value, (int, float, str)) else json.dumps(value)


def _results(results: dict[str, Any]) -> list[str]:
    lines = []
    for source, metrics in results.items():
        if isinstance(metrics, dict):
            lines.append(f"{source}: " + "; ".join(f"{metric} {_result(value)}" for metric, value in metrics.items()))
        else:
            lines.append(f"{source}: {_result(metrics)}")
    return lines


def _data(entry: dict[str, Any]) -> str:
    cases = f"{entry['cases']} cases, " if entry.get("cases") is not None else ""
    return f"{entry.get('name', '?')} ({cases}{entry.get('licence', 'licence not stated')})"


def run(args: argparse.Namespace) -> int:
    from medseg.pretrained import ManifestError, list_models, pretrained_root

    root = pretrained_root()
    try:
        models = list_models(root)
    except ManifestError as error:
        print(f"medseg models: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        records = [{**model.manifest.to_dict(), "folder": str(model.folder), "size": model.size} for model in models]
        print(json.dumps(records, indent=2))
        return 0
    if not models:
        print(f"no shipped models in {root}")
        return 0
    print(f"{len(models)} shipped model(s) in {root}; run one with medseg infer --model NAME (--verify checks it)")
    for model in models:
        manifest = model.manifest
        print(f"\n{model.name}")
        print(f"  task {manifest.task}, labels {', '.join(manifest.labels)}; {model.size / 1e6:.2f} MB on disk")
        print(f"  runtimes: {', '.join(manifest.runtimes)}; weights stored in {manifest.weights_precision}")
        print(f"  input: {manifest.input}")
        print(f"  trained on: {', '.join(_data(entry) for entry in manifest.training_data)}")
        results = _results(manifest.results)
        print("  results: " + ("\n           ".join(results) if results else "none recorded"))
        print(f"  card: {model.folder / 'docs' / 'model_card.md'}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models",
        help="list the models shipped with medseg (medseg infer --model NAME runs one)",
        description="List the models shipped with medseg: name, task, labels, the input each expects, the data it "
        "was trained on and its terms of use, the results measured, its runtimes and its size on disk. Exit status: "
        "0 listed, 1 a model's manifest cannot be read.",
    )
    models.add_argument("--json", action="store_true", help="print the manifests as JSON, for machines")
    models.set_defaults(func=run, command_parser=models)
