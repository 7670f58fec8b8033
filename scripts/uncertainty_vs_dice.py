"""Does ``medseg infer --uncertainty`` find the hard cases? Border entropy against Dice on a run's test cases.

For each trained run folder (a bundle's ``--output_dir`` after evaluation, or a run of ``medseg compare-losses``),
``medseg infer --uncertainty`` segments the cases its evaluation scored (``eval/test_mean_dice_raw.csv``) and the
per-case ``border_entropy`` of ``summary.json`` is set against their Dice: SciPy's Spearman correlation, the
entropy's quantiles, and how many of the worst tenth by Dice are among the tenth of highest entropy.

    python scripts/uncertainty_vs_dice.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats


def measure(run: Path) -> dict:
    with open(run / "eval" / "test_mean_dice_raw.csv") as stream:
        dice = {row["filename"]: float(row["mean"]) for row in csv.DictReader(stream)}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "medseg", "infer", "--model-dir", str(run), "--input", *dice, "--output", out,
                   "--uncertainty"]  # fmt: skip
        subprocess.run(command, check=False, capture_output=True)
        cases = json.loads((Path(out) / "summary.json").read_text())["cases"]
    pairs = [(case["border_entropy"], dice[case["input"]]) for case in cases if case["status"] == "ok"]
    entropy, scores = (np.array(values) for values in zip(*pairs))
    rho, p = stats.spearmanr(entropy, scores)
    tenth = max(1, len(scores) // 10)
    caught = len(set(np.argsort(scores)[:tenth]) & set(np.argsort(-entropy)[:tenth]))
    return {
        "run": str(run),
        "cases": len(pairs),
        "median_dice": round(float(np.median(scores)), 4),
        "entropy_median_p90_p95": [round(float(q), 3) for q in np.quantile(entropy, [0.5, 0.9, 0.95])],
        "spearman": round(float(rho), 3),
        "p": float(p),
        "worst_tenth_caught": f"{caught}/{tenth}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    for run in parser.parse_args().runs:
        print(json.dumps(measure(run)))


if __name__ == "__main__":
    main()
