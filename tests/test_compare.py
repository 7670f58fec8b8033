"""``medseg compare-losses``: runs through the bundle, resumes, and reports what scipy and the CSV say."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from fire.parser import DefaultParseValue
from scipy import stats
from support import REPO_ROOT

from medseg.apps.bundle_runs import bundle_command
from medseg.apps.compare import Comparison, Run, write_results
from medseg.apps.compare.execution import per_case_metrics
from medseg.bundle import read_config
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
        "--losses", "bce,iou", "--folds", "2", "--epochs", "1", "--spatial-size", "32", "32", "--batch-size", "4",
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
    while not any(records.glob("*/fold*/seed0/record.json")):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() - start < 300
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    assert not (out / "results.csv").exists()
    done = sorted(f"default {path.parts[-4]} fold {path.parts[-3][-1]} seed 0"
                  for path in records.glob("*/fold*/seed0/record.json"))  # fmt: skip
    # again: the finished runs are skipped, the others run
    process = subprocess.run(_command(datalist, out, jobs=4), capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout + process.stderr
    assert f"4 runs: {len(done)} finished earlier, {4 - len(done)} to run, 4 at a time" in process.stdout
    assert not any(run in process.stdout.split("to run", 1)[1] for run in done), (done, process.stdout)
    for run in ("bce/fold0", "bce/fold1", "iou/fold0", "iou/fold1"):
        folder = out / "runs" / "default" / run / "seed0"
        record = json.loads((folder / "record.json").read_text())
        assert record["status"] == "ok" and record["metrics"]["best_epoch"] == 1 and record["seed"] == 0
        assert "--loss_name" in (folder / "train.log").read_text()  # the bundle command, as a user types it
        assert (folder / "models" / "model.pt").is_file()
    rows = list(csv.DictReader((out / "results.csv").open()))
    metrics = {"test_mean_dice", "test_mean_iou", "test_accuracy", "test_kappa", "test_hd95", "test_ece"}
    assert {row["metric"] for row in rows} >= metrics
    assert len({(row["loss"], row["fold"], row["seed"]) for row in rows}) == 4
    # a row per test case and metric: the datalist's 12 cases, each once per loss (2 folds of 6)
    for loss in ("bce", "iou"):
        cases = [row for row in rows if row["loss"] == loss and row["case"] and row["metric"] == "test_mean_dice"]
        assert len(cases) == len({row["case"] for row in cases}) == 12
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


def _records(
    seed_sd: dict[str, float], effect: dict[str, float], folds: int = 4, seeds: int = 3, cases: int = 10
) -> list[dict]:
    """Runs of a simulated comparison: per case a base Dice, each loss's effect, each run's seed shift
    (``N(0, seed_sd)``, the same for all its cases) and per-case noise; IoU = Dice / (2 − Dice)."""
    rng = np.random.default_rng(7)
    base = {(fold, f"case{fold}-{c}.png"): rng.uniform(0.80, 0.92) for fold in range(folds) for c in range(cases)}
    records = []
    for loss in effect:
        for fold in range(folds):
            for seed in range(seeds):
                shift = rng.normal(0, seed_sd[loss])
                dice = {case: float(np.clip(value + effect[loss] + shift + rng.normal(0, 0.005), 0, 1))
                        for (k, case), value in base.items() if k == fold}  # fmt: skip
                per_case = {case: {"test_mean_dice": d, "test_mean_iou": d / (2 - d), "test_hd95": 10 - 5 * d}
                            for case, d in dice.items()}  # fmt: skip
                means = {m: float(np.mean([v[m] for v in per_case.values()])) for m in next(iter(per_case.values()))}
                records.append({"network": "unet2d", "loss": loss, "fold": fold, "seed": seed, "status": "ok",
                                "metrics": means, "cases": per_case})  # fmt: skip
    return records


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, by hand: the i-th smallest p times (m − i), running maximum, at most 1."""
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


EFFECTS = {"bce": 0.0, "iou": 0.02, "dice": -0.02, "kappa": 0.01}
SEED_SD = {"bce": 0.002, "iou": 0.002, "dice": 0.002, "kappa": 0.03}


def test_statistics_equal_scipy_recomputed_from_the_per_case_csv(tmp_path):
    """Every figure of statistics.csv from results.csv alone, with SciPy called here; Holm by hand."""
    comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=list(EFFECTS), out=tmp_path,
                            seeds=[0, 1, 2])  # fmt: skip
    write_results(comparison, _records(SEED_SD, EFFECTS), plots=False)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    written = {(r["metric"], r["loss"]): r for r in csv.DictReader((tmp_path / "statistics.csv").open())}
    assert {metric for metric, _ in written} == {"test_mean_iou", "test_mean_dice"} and len(written) == 6
    for metric in ("test_mean_iou", "test_mean_dice"):
        per_case, per_run = defaultdict(list), defaultdict(list)
        for row in rows:
            if row["metric"] == metric:
                if row["case"]:
                    per_case[row["loss"], row["fold"], row["case"]].append(float(row["value"]))
                else:
                    per_run[row["loss"], row["fold"]].append(float(row["value"]))
        keys = sorted({(fold, case) for _, fold, case in per_case})
        assert len(keys) == 40
        baseline = np.array([np.mean(per_case["bce", fold, case]) for fold, case in keys])
        folds = sorted({fold for _, fold in per_run})
        baseline_folds = [np.mean(per_run["bce", fold]) for fold in folds]
        raw_w, raw_t = [], []
        for loss in ("iou", "dice", "kappa"):
            row = written[metric, loss]
            differences = np.array([np.mean(per_case[loss, fold, case]) for fold, case in keys]) - baseline
            assert float(row["mean_difference"]) == pytest.approx(differences.mean(), abs=1e-12)
            assert float(row["wilcoxon_p"]) == pytest.approx(stats.wilcoxon(differences).pvalue, rel=1e-9)
            interval = stats.bootstrap((differences,), np.mean, confidence_level=0.95, n_resamples=9999,
                                       method="BCa", rng=np.random.default_rng(0)).confidence_interval  # fmt: skip
            assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((interval.low, interval.high))
            t_test = stats.ttest_rel([np.mean(per_run[loss, fold]) for fold in folds], baseline_folds)
            assert float(row["t"]) == pytest.approx(t_test.statistic) and int(row["folds"]) == 4
            assert float(row["t_p"]) == pytest.approx(t_test.pvalue)
            spread = np.sqrt(np.mean([np.var(per_run[loss, fold], ddof=1) for fold in folds]))
            assert float(row["seed_sd"]) == pytest.approx(spread) and int(row["seeds"]) == 3
            raw_w.append(float(row["wilcoxon_p"]))
            raw_t.append(float(row["t_p"]))
        for raw, column in ((raw_w, "wilcoxon_p_holm"), (raw_t, "t_p_holm")):
            adjusted = [float(written[metric, loss][column]) for loss in ("iou", "dice", "kappa")]
            assert adjusted == pytest.approx(_holm(raw))
            assert all(a >= p for a, p in zip(adjusted, raw))  # never below the raw p
            ranked = sorted(zip(raw, adjusted))
            assert all(a1 <= a2 for (_, a1), (_, a2) in pairwise(ranked))  # monotone in the raw p


def test_verdicts_weigh_the_gap_against_the_seed_noise(tmp_path):
    """iou: +0.02 with seed noise 0.002, better; dice: −0.02, worse; kappa: +0.01 with runs that move 0.03
    between seeds, whatever its per-case p, not distinguishable. The report prints them as statistics.csv does."""
    comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=list(EFFECTS), out=tmp_path,
                            seeds=[0, 1, 2])  # fmt: skip
    write_results(comparison, _records(SEED_SD, EFFECTS), plots=False)
    rows = {(r["metric"], r["loss"]): r for r in csv.DictReader((tmp_path / "statistics.csv").open())}
    verdicts = {key: row["verdict"] for key, row in rows.items()}
    for metric in ("test_mean_iou", "test_mean_dice"):
        assert float(rows[metric, "kappa"]["wilcoxon_p_holm"]) < 1e-3  # the per-case test alone would decide
        assert verdicts[metric, "iou"] == "better than bce"
        assert verdicts[metric, "dice"] == "worse than bce"
        assert verdicts[metric, "kappa"] == "not distinguishable from bce beyond seed noise"
    report = (tmp_path / "report.md").read_text()
    assert report.count("**better than bce**") == 2 and report.count("**worse than bce**") == 2
    # one seed: no noise to weigh against, and the verdict says so
    single = [record for record in _records(SEED_SD, EFFECTS) if record["seed"] == 0]
    comparison.seeds = [0]
    write_results(comparison, single, plots=False)
    verdicts = {(r["metric"], r["loss"]): r["verdict"] for r in csv.DictReader((tmp_path / "statistics.csv").open())}
    assert verdicts["test_mean_iou", "iou"] == "better than bce (one seed: seed noise not measured)"


def test_report_tables_average_the_seeds_and_bold_marks_the_best(tmp_path):
    comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=list(EFFECTS), out=tmp_path,
                            seeds=[0, 1, 2])  # fmt: skip
    records = _records(SEED_SD, EFFECTS)
    write_results(comparison, records, plots=False)
    values = {loss: [np.mean([r["metrics"]["test_mean_dice"] for r in records if (r["loss"], r["fold"]) == (loss, k)])
                     for k in range(4)] for loss in EFFECTS}  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    dice_section = report.split("### Dice")[1].split("###")[0]
    table = [line for line in dice_section.splitlines() if line.startswith("| ") and "mean" not in line]
    cells = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")[1:] for line in table}
    for column in range(4):  # the bold entry of each fold column is the largest Dice
        assert cells["bce"][column].strip("*") == f"{values['bce'][column]:.4f}"
        best = max(values, key=lambda loss: values[loss][column])
        assert [loss for loss in values if cells[loss][column].startswith("**")] == [best]
    assert cells["iou"][4].startswith(f"**{np.mean(values['iou']):.4f} ± {np.std(values['iou'], ddof=1):.4f}")
    hd95 = report.split("### 95 % Hausdorff")[1].split("###")[0]
    first_fold = {loss: np.mean([r["metrics"]["test_hd95"] for r in records if (r["loss"], r["fold"]) == (loss, 0)])
                  for loss in EFFECTS}  # fmt: skip
    assert f"| {min(first_fold, key=first_fold.get)} | **{min(first_fold.values()):.4f}** |" in hd95  # lower is better


def test_seeds_and_backend_usage_errors(datalist, tmp_path, capsys):
    for flags, message in (
        (["--seeds", "0,0"], "expected distinct comma-separated seeds"),
        (["--seeds", "-1"], "argument --seeds: must be from 0"),
        (["--address", "auto"], "argument --address: only with --backend ray"),
        (["--backend", "ray", "--gpus-per-run", "0.25"], "argument --gpus-per-run: GPUs for each run need --device"),
    ):
        code = None
        try:
            code = main(["compare-losses", "--bundle", str(BUNDLE), "--datalist", str(datalist), "--losses", "bce,iou",
                         "--out", str(tmp_path / "comparison"), *flags])  # fmt: skip
        except SystemExit as exit:
            code = exit.code
        assert code == 2 and message in capsys.readouterr().err, flags
    assert not (tmp_path / "comparison").exists()


def test_a_network_or_loss_other_than_the_bundles_gets_its_own_defaults(tmp_path):
    """The face bundle's arguments are BFCN-32s's and none of the soft IoU loss's: a comparison that swaps in
    another network or loss passes empty arguments for it (its registry defaults) unless told otherwise."""
    bundle = REPO_ROOT / "bundles" / "lfw_face_fcn"
    comparison = Comparison(bundle=bundle, datalist=tmp_path / "unused.json", losses=["iou", "bce"], out=tmp_path,
                            networks=["default", "unet"])  # fmt: skip
    own = comparison.settings(Run("default", "iou", 0))
    assert "network_kwargs" not in own and "loss_kwargs" not in own  # the bundle's own, as its train.json has them
    other = comparison.settings(Run("unet", "bce", 0))
    assert (other["network_name"], other["network_kwargs"], other["loss_kwargs"]) == ("unet", {}, {})
    comparison.overrides = {"network_kwargs": {"channels": [8, 16], "strides": [2]}}
    assert comparison.settings(Run("unet", "bce", 0))["network_kwargs"] == {"channels": [8, 16], "strides": [2]}


def test_a_budget_in_epochs_has_no_wall_clock_budget_of_the_bundle(tmp_path):
    """The skin bundle trains 10 minutes by default: a comparison in epochs must not keep that budget (its cosine
    schedule would follow the wall clock of a loaded machine), while one in minutes sets its own. What the bundle
    parses from the command line the runs get (the overrides rendered as monai.bundle's arguments) is checked."""
    bundle = REPO_ROOT / "bundles" / "skin_lesion_unet"
    assert read_config(bundle, "train").get_parsed_content("minutes") == 10
    for budget, expected in (({"epochs": 3}, None), ({"minutes": 2.5}, 2.5)):
        comparison = Comparison(
            bundle=bundle, datalist=tmp_path / "unused.json", losses=["bce"], out=tmp_path, **budget
        )
        command = bundle_command("train", comparison.settings(Run("default", "bce", 0)))
        given = dict(zip(command[6::2], command[7::2]))
        config = read_config(bundle, "train", minutes=DefaultParseValue(given["--minutes"]))  # as fire parses it
        assert config.get_parsed_content("minutes") == expected


def test_verdicts_per_label_of_a_model_of_several_labels(tmp_path):
    """hair: +0.03 for iou against bce; skin: -0.03; their mean: 0. Asked on a label, the verdict is that label's;
    the per-label values are read from MONAI's per-case CSV, a column per label, as the evaluation writes it."""
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "test_mean_dice_raw.csv").write_text("filename,class0,class1,mean\na.jpg,0.6,0.9,0.75\n")
    assert per_case_metrics(evaluation, ["hair", "skin"]) == {
        "a.jpg": {"test_mean_dice": 0.75, "test_mean_dice_hair": 0.6, "test_mean_dice_skin": 0.9}
    }
    assert per_case_metrics(evaluation) == {"a.jpg": {"test_mean_dice": 0.75}}
    effects = {"bce": {"hair": 0.0, "skin": 0.0}, "iou": {"hair": 0.03, "skin": -0.03}}
    records = []
    for label in ("hair", "skin"):
        labelled = _records(SEED_SD, {loss: effect[label] for loss, effect in effects.items()})
        for record in labelled:
            record["cases"] = {case: {f"{m}_{label}": v for m, v in values.items()} for case, values in
                               record["cases"].items()}  # fmt: skip
        records.append(labelled)
    for hair, skin in zip(*records):  # the same run: both labels' values, and their mean
        for case, values in hair["cases"].items():
            values.update(skin["cases"][case])
            for metric in ("test_mean_dice", "test_mean_iou"):
                values[metric] = (values[f"{metric}_hair"] + values[f"{metric}_skin"]) / 2
        hair["metrics"] = {m: float(np.mean([v[m] for v in hair["cases"].values()])) for m in values}
    merged = records[0]
    expected = {"hair": "better than bce", "skin": "worse than bce"}
    for label, verdict in expected.items():
        comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=["bce", "iou"],
                                out=tmp_path / label, seeds=[0, 1, 2], label=label)  # fmt: skip
        comparison.out.mkdir()
        write_results(comparison, merged, plots=False)
        rows = list(csv.DictReader((comparison.out / "statistics.csv").open()))
        assert {row["metric"] for row in rows} == {f"test_mean_iou_{label}", f"test_mean_dice_{label}"}
        assert {row["verdict"] for row in rows} == {verdict}
        assert f"| Dice ({label}) | iou |" in (comparison.out / "report.md").read_text()
    mean = Comparison(bundle=BUNDLE, datalist=tmp_path / "unused.json", losses=["bce", "iou"], out=tmp_path / "mean",
                      seeds=[0, 1, 2])  # fmt: skip
    mean.out.mkdir()
    write_results(mean, merged, plots=False)
    verdicts = {row["verdict"] for row in csv.DictReader((mean.out / "statistics.csv").open())}
    assert verdicts == {"not distinguishable from bce beyond seed noise"}
