"""``medseg compare-losses``: runs through the bundle, resumes, and reports what scipy and the CSV say."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from support import REPO_ROOT

from medseg.apps.compare import Comparison, write_results
from medseg.cli import main
from medseg.tasks import prepare_datalist

BUNDLE = REPO_ROOT / "bundles" / "cxr_lung_unet"


@pytest.fixture(scope="module")
def datalist(synthetic, tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "datalist.json"
    prepare_datalist("cxr", synthetic("cxr", n=12), path, n_folds=2)
    return path


def _command(datalist: Path, out: Path, jobs: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "medseg", "compare-losses", "--bundle", str(BUNDLE), "--datalist", str(datalist),
        "--losses", "bce,iou", "--folds", "2", "--epochs", "1", "--image-size", "32", "--batch-size", "4",
        "--out", str(out), "--jobs", str(jobs),
    ]  # fmt: skip


@pytest.mark.slow
def test_two_losses_two_folds_end_to_end_and_a_stopped_comparison_resumes(datalist, tmp_path):
    """Two runs at a time, then the rest at once: each bundle process spends most of its seconds importing MONAI
    on one core. Stopped when the first run has finished; started again, it skips the finished runs."""
    out = tmp_path / "comparison"
    process = subprocess.Popen(_command(datalist, out, jobs=2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    records = out / "runs" / "default"
    start = time.monotonic()
    while not any(records.glob("*/fold*/record.json")):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() - start < 300
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    assert not (out / "results.csv").exists()
    done = sorted(f"default {path.parts[-3]} fold {path.parts[-2][-1]}" for path in records.glob("*/fold*/record.json"))
    # again: the finished runs are skipped, the others run
    process = subprocess.run(_command(datalist, out, jobs=4), capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout + process.stderr
    assert f"4 runs: {len(done)} finished earlier, {4 - len(done)} to run, 4 at a time" in process.stdout
    assert not any(run in process.stdout.split("to run", 1)[1] for run in done), (done, process.stdout)
    for run in ("bce/fold0", "bce/fold1", "iou/fold0", "iou/fold1"):
        folder = out / "runs" / "default" / run
        record = json.loads((folder / "record.json").read_text())
        assert record["status"] == "ok" and record["best_epoch"] == 1
        assert "--loss_name" in (folder / "train.log").read_text()  # the bundle command, as a user types it
        assert (folder / "models" / "model.pt").is_file()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["metric"] for row in rows} >= {"test_mean_dice", "test_mean_iou", "test_accuracy", "test_kappa"}
    assert len({(row["loss"], row["fold"]) for row in rows}) == 4
    for figure in ("boxplots_default.png", "learning_curves_default.png", "cases_default.png"):
        assert (out / figure).stat().st_size > 1000


def test_no_bundle_run_starts_after_a_stop_until_allowed(tmp_path):
    """A worker thread between two runs (or between training and evaluation) when the runner is stopped must not
    start the next process: the race that once let a stopped comparison finish its second run."""
    from medseg.apps.bundle_runs import RunsStopped, allow_runs, run_bundle, stop_running

    missing = tmp_path / "no-bundle"  # Popen fails at once on the missing folder: a process would have started
    stop_running()
    try:
        with pytest.raises(RunsStopped, match="not started, the runner is stopping"):
            run_bundle(missing, "train", {"epochs": 1})
    finally:
        allow_runs()
    with pytest.raises(FileNotFoundError):
        run_bundle(missing, "train", {"epochs": 1})


def test_unknown_loss_fails_before_any_run(datalist, tmp_path, capsys):
    out = tmp_path / "comparison"
    code = None
    try:
        code = main(["compare-losses", "--bundle", str(BUNDLE), "--datalist", str(datalist), "--losses",
                     "bce,jacard", "--out", str(out)])  # fmt: skip
    except SystemExit as exit:
        code = exit.code
    assert code == 2 and "unknown loss 'jacard'; valid: bce, dice" in capsys.readouterr().err
    assert not out.exists()


def _records(values: dict[str, list[float]]) -> list[dict]:
    return [
        {"network": "unet2d", "loss": loss, "fold": fold, "status": "ok",
         "metrics": {"test_mean_dice": value, "test_hd95": 10 - 5 * value}}
        for loss, per_fold in values.items() for fold, value in enumerate(per_fold)
    ]  # fmt: skip


def test_report_t_tests_equal_scipy_on_the_csv_and_bold_marks_the_best(tmp_path):
    values = {"bce": [0.90, 0.92, 0.88, 0.91], "iou": [0.93, 0.94, 0.90, 0.95], "kappa": [0.89, 0.93, 0.87, 0.90]}
    comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=list(values), out=tmp_path)
    write_results(comparison, _records(values), plots=False)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    dice = {loss: [float(r["value"]) for r in rows if r["loss"] == loss and r["metric"] == "test_mean_dice"]
            for loss in values}  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    dice_section = report.split("### Dice")[1].split("###")[0]
    for loss in ("iou", "kappa"):
        expected = stats.ttest_rel(dice[loss], dice["bce"])
        t, p = re.search(rf"\| {loss} \| (-?[\d.]+) \| ([\d.e-]+) \| 4 \|", dice_section).groups()
        assert float(t) == pytest.approx(expected.statistic, abs=1e-3)
        assert float(p) == pytest.approx(expected.pvalue, rel=1e-3)
    table = [line for line in dice_section.splitlines() if line.startswith("| ") and "mean" not in line]
    cells = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")[1:] for line in table[:3]}
    for column in range(4):  # the bold entry of each fold column is the largest Dice
        best = max(values, key=lambda loss: values[loss][column])
        assert [loss for loss in values if cells[loss][column].startswith("**")] == [best]
    assert cells["iou"][4].startswith(f"**{np.mean(values['iou']):.4f} ± {np.std(values['iou'], ddof=1):.4f}")
    hd95 = report.split("### 95 % Hausdorff")[1].split("###")[0]
    assert f"**{10 - 5 * 0.95:.4f}**" in hd95  # lower is better for distances
