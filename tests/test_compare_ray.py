"""``medseg compare-losses --backend ray`` on a real Ray cluster of several nodes on 127.0.0.1.

The cluster (``ray.cluster_utils.Cluster``: a head without CPUs for the driver, two worker nodes of one CPU) is
started by the test, bounded in time and shut down by it. A node is killed while it trains a run, the driver is
killed mid-grid and started again: the grid completes with nothing lost, nothing redone, and every number (every
run's and every test case's) the local backend gives for the same seeds.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO_ROOT

from medseg.apps.compare import Comparison, run_comparison
from medseg.tasks import prepare_datalist

ray = pytest.importorskip("ray", reason="the Ray backend's tests need ray (pip install -e '.[ray]', make test does)")
from ray.cluster_utils import Cluster  # noqa: E402

BUNDLE = REPO_ROOT / "bundles" / "cxr_lung_unet"
#: Ray on this machine only, no usage report, no dashboard (the tests talk to 127.0.0.1 and nothing else).
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
GRID = ["--losses", "bce,iou", "--folds", "2", "--seeds", "0", "--epochs", "1", "--spatial-size", "32", "32",
        "--batch-size", "4"]  # fmt: skip


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 240.0, process=None) -> object:
    start = time.monotonic()
    while not (value := condition()):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the driver ended ({process.returncode}) before {what}: {process.stdout.read()}")
        assert time.monotonic() - start < timeout, f"no {what} after {timeout} s"
        time.sleep(0.2)
    return value


def _ancestors(pid: int) -> set[int]:
    """``pid``'s parent, its parent's parent, ... (from /proc)."""
    found = set()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        found.add(pid)
    return found


def _bundle_processes(marker: str) -> list[int]:
    """The bundle processes (``python -m monai.bundle run``) whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "monai.bundle" in command and marker in command:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _values(out: Path) -> dict[tuple, str]:
    """Every value of ``results.csv``, keyed by run, case and metric."""
    with open(out / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows and all(row["status"] == "ok" for row in rows), rows[:3]
    return {(r["network"], r["loss"], r["fold"], r["seed"], r["case"], r["metric"]): r["value"] for r in rows}


@pytest.fixture(scope="module")
def cluster():
    saved = {key: os.environ.get(key) for key in RAY_ENVIRONMENT}
    os.environ.update(RAY_ENVIRONMENT)
    started = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0})
    try:
        nodes = [started.add_node(**NODE) for _ in range(2)]
        started.wait_for_nodes(timeout=120)
        yield started, nodes
    finally:
        started.shutdown()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.mark.slow
def test_ray_grid_survives_a_killed_node_and_driver_and_matches_the_local_backend(synthetic, cluster, tmp_path):
    head, workers = cluster
    datalist = tmp_path / "datalist.json"
    prepare_datalist("cxr", synthetic("cxr", n=12), datalist, n_folds=2)
    local = tmp_path / "local"
    overrides = {"spatial_size": [32, 32], "batch_size": 4}
    comparison = Comparison(bundle=BUNDLE, datalist=datalist, losses=["bce", "iou"], folds=2, seeds=[0], out=local,
                            epochs=1, jobs=2, cpus_per_run=1, overrides=overrides)  # fmt: skip
    assert all(record["status"] == "ok" for record in run_comparison(comparison, print_fn=lambda line: None))

    out = tmp_path / "ray"
    command = [sys.executable, "-m", "medseg", "compare-losses", "--bundle", str(BUNDLE), "--datalist",
               str(datalist), *GRID, "--out", str(out), "--backend", "ray", "--address", head.address]  # fmt: skip
    environment = {**os.environ, **RAY_ENVIRONMENT}

    def driver() -> subprocess.Popen:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)

    def training() -> list[int]:
        return [pid for pid in _bundle_processes(str(datalist)) if _alive(pid)]

    # the driver is killed when the first run of the grid's four has arrived (the other runs then training), then
    # started again
    process = driver()
    records = out / "runs" / "default"
    _wait_for(lambda: list(records.glob("*/fold*/seed0/record.json")), "first record", process=process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    finished = {path: path.stat().st_mtime_ns for path in records.glob("*/fold*/seed0/record.json")}
    assert 1 <= len(finished) <= 2, sorted(finished)  # two workers: the runs of the second pair had not started
    _wait_for(lambda: not training(), "end of the killed driver's runs", 60)

    # the second driver: the first worker node is killed while one of its runs trains, and a new node joins
    process = driver()
    raylet = workers[0].all_processes["raylet"][0].process.pid
    victims = _wait_for(
        lambda: [pid for pid in training() if raylet in _ancestors(pid)],
        "run on the first worker node",
        process=process,
    )
    head.remove_node(workers[0], allow_graceful=False)
    _wait_for(lambda: not any(_alive(pid) for pid in victims), "end of the killed node's bundle process", 60)
    head.add_node(**NODE)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    left = 4 - len(finished)
    assert f"4 runs: {len(finished)} finished earlier, {left} to run" in output, output
    assert output.count(": ok, test Dice") == left, output  # the killed node's run too, retried on another
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items()), "a finished run was redone"

    # nothing lost: the same files and, to the last digit, the same numbers as the local backend
    assert _values(out) == _values(local)
    for name in ("statistics.csv", "report.md"):
        assert (out / name).read_text() == (local / name).read_text().replace(str(local), str(out)), name

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "tfevents" not in p.name}

    assert files(out / "runs") == files(local / "runs")
    record = json.loads((records / "iou" / "fold1" / "seed0" / "record.json").read_text())
    assert record["status"] == "ok" and set(record["cases"]) and "test_ece" in record["metrics"]
