"""The MONAI bundles, run as a user types them: ``python -m monai.bundle run`` in a subprocess, on synthetic data.

Modelled on the model zoo's own bundle tests: train a short run with small overrides, evaluate its checkpoint,
run inference; metadata valid against the schema, ``verify_net_in_out``, ``ckpt_export``; the loss and network
overrides change what is built; ``--resume`` after a killed run; ``--minutes``; two CPU processes under
``torchrun``; bad overrides fail at once without leaving a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.bundle import ConfigParser, ckpt_export, run, verify_metadata, verify_net_in_out
from monai.losses import DiceCELoss, DiceLoss, FocalLoss
from support import REPO_ROOT, sitk_reference

from medseg.bundle import WORKFLOWS, config_files, config_list, print_outputs, read_config, user_error
from medseg.cli import main as medseg_main
from medseg.engines import PrepareBatchSegCaps
from medseg.inferers import AutocastInferer, FlipAveragingInferer, ShiftAveragingInferer
from medseg.losses import ProbabilityInput, SegCapsLoss, SoftIoULoss, WeightedBCELoss
from medseg.networks import FCN32s, PaddedBasicUNet, PaddedUNet, SegCapsR1, SegCapsR3
from medseg.pipeline import ModelSettings

BUNDLES = REPO_ROOT / "bundles"
#: bundle -> (synthetic task, its generator's arguments, small overrides that keep a test run to seconds)
SETUPS = {
    "cxr_lung_unet": ("cxr", {"n": 12}, ["--spatial_size", "[32,32]", "--batch_size", "4"]),
    "lfw_face_fcn": (
        "lfw",
        {"n": 12},
        ["--spatial_size", "[32,32]", "--batch_size", "4", "--network_kwargs#fc_channels", "8"],
    ),
    # volumes of 16 slices of 48x48 pixels (not 40 of 96x96): SegCaps on a CPU is the suite's slowest network
    "luna16_segcaps": ("luna16", {"n": 4, "shape": (16, 48, 48)}, ["--spatial_size", "[32,32]"]),
    # one fold without a test subset by default (--folds 1 --val_fraction 0, a model to use): evaluated on its
    # validation scans (the training scans), validated after each of the two epochs (the bundle: every 5th)
    "ct_lung_unet": (
        "ct",
        {"n": 4, "shape": (16, 48, 48)},
        ["--spatial_size", "[32,32]", "--batch_size", "4", "--evaluate_subset", "validation", "--val_interval", "1"],
    ),
    "skin_lesion_unet": ("skin", {"n": 16}, ["--spatial_size", "[32,32]", "--batch_size", "4"]),
}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def bundle_start(
    bundle: str | Path,
    workflow: str,
    *overrides: str,
    runner: list[str] | None = None,
    threads: int | None = None,
):
    """Start ``python -m monai.bundle run --config_file ... OVERRIDES`` for a workflow (``train``, ``evaluate``, ...)
    in the bundle folder (a name under ``bundles/``, or a folder), as its README types it, its output going to
    temporary files (a pipe nobody reads yet would stop a process that runs beside another). ``threads``: PyTorch's
    threads, 1 for processes that run beside others (more threads than cores make each wait for the others')."""
    config_file = config_list(workflow)
    command = [*(runner or [sys.executable]), "-m", "monai.bundle", "run", "--config_file", config_file, *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, cwd=BUNDLES / bundle, stdout=out, stderr=err, text=True, env=env)
    process.outputs = (out, err)
    return process


def finished(process: subprocess.Popen, timeout: int = 600) -> subprocess.CompletedProcess:
    """Wait for a process from :func:`bundle_start`; returns it as :func:`subprocess.run` would."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    texts = []
    for stream in process.outputs:
        stream.seek(0)
        texts.append(stream.read())
        stream.close()
    return subprocess.CompletedProcess(process.args, process.returncode, *texts)


def bundle_run(bundle: str, workflow: str, *overrides: str, timeout: int = 600, runner: list[str] | None = None):
    """``python -m monai.bundle run --config_file "[...]" OVERRIDES`` in the bundle folder; returns the process."""
    return finished(bundle_start(bundle, workflow, *overrides, runner=runner), timeout)


def as_config(overrides: list[str]) -> dict:
    """Command-line overrides as config ids and values (numbers parsed, as fire does)."""
    return {key.removeprefix("--"): json.loads(value) for key, value in zip(overrides[::2], overrides[1::2])}


def ok(process: subprocess.CompletedProcess) -> str:
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return process.stdout + process.stderr


@contextlib.contextmanager
def refused(message: str):
    """The block must fail on a setting, a datalist or a model file (:data:`medseg.bundle.USER_ERRORS`, whatever
    MONAI's parser wrapped it in) whose message holds ``message``: what a bundle run reports in one line."""
    with pytest.raises(Exception) as caught:
        yield
    found = user_error(caught.value)
    assert found is not None and message in str(found), repr(caught.value)


@pytest.fixture
def run_here(monkeypatch):
    """``monai.bundle.run`` in this process, in a bundle's folder: ``run_here(bundle, workflow, **overrides)``.

    For checks of what a run produces rather than of how it is launched (that is `bundle_run`'s): a new process
    spends seconds importing MONAI. The root logger the bundle's ``logging.conf`` sets up is put back afterwards.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run_bundle(bundle: str, workflow: str, **overrides) -> None:
        monkeypatch.chdir(BUNDLES / bundle)
        run(config_file=list(WORKFLOWS[workflow]), **overrides)

    yield run_bundle
    root.handlers[:] = handlers
    root.setLevel(level)


@dataclass
class UserRuns:
    """A bundle's runs as a user types them: training, then evaluation and inference of its checkpoint."""

    data: Path
    out: Path
    train: subprocess.CompletedProcess
    image: str = ""  # the case inference was run on
    predictions: Path | None = None
    evaluation: subprocess.CompletedProcess | None = None
    inference: subprocess.CompletedProcess | None = None
    mismatch: subprocess.CompletedProcess | None = None  # inference with other settings than training's (cxr)


def copied_alone(bundle: str, where: Path) -> Path:
    """``bundles/<bundle>`` copied with a plain ``cp -r`` (a link would be copied as a link) into ``where``."""
    subprocess.run(["cp", "-r", str(BUNDLES / bundle), str(where)], check=True)
    return where / bundle


def _train_evaluate_infer(bundle: str, data: Path, root: Path) -> UserRuns:
    """In a copy of the bundle alone, with its README's commands (outputs in the bundle folder): train two epochs;
    then evaluate, infer (and, for one bundle, infer with other settings) at once."""
    _, _, small = SETUPS[bundle]
    out = copied_alone(bundle, root)
    overrides = ["--dataset_dir", str(data), *small]
    train = finished(bundle_start(out, "train", *overrides, "--epochs", "2", threads=1))
    if train.returncode:
        return UserRuns(data, out, train)
    entries = json.loads((out / "datalist.json").read_text())["training"]
    image = sorted(entries, key=lambda entry: entry["case"])[0]["image"]
    predictions = root / "predictions"
    where = ["--input_dir", image, "--output_dir", str(predictions)]
    evaluation = bundle_start(out, "evaluate", *overrides, threads=1)
    inference = bundle_start(out, "inference", *where, threads=1)  # the model as trained: the record it carries
    mismatch = None
    if bundle == "cxr_lung_unet":  # one bundle is enough: the check is medseg.pipeline's, shared by all three
        mismatch = finished(bundle_start(out, "inference", *where, "--spatial_size", "[64,64]", threads=1))
    return UserRuns(data, out, train, image, predictions, finished(evaluation), finished(inference), mismatch)


@pytest.fixture(scope="module")
def user_runs(synthetic, tmp_path_factory):
    """``user_runs(bundle) -> UserRuns``. The three bundles' runs all start at the first request, each bundle's
    evaluation and inference as soon as its training ends: a bundle process spends its first seconds importing
    MONAI on one core, so two cores take them in much less time than one after the other."""
    futures = {}
    with ThreadPoolExecutor(max_workers=len(SETUPS)) as pool:

        def get(bundle: str) -> UserRuns:
            if not futures:
                for name, (task, arguments, _) in SETUPS.items():
                    data, out = synthetic(task, **arguments), tmp_path_factory.mktemp(name)
                    futures[name] = pool.submit(_train_evaluate_infer, name, data, out)
            return futures[bundle].result()

        yield get


@pytest.fixture(scope="module")
def trained(user_runs):
    """Each bundle trained two epochs on its synthetic data: ``trained(bundle) -> (data, output_dir, log)``."""

    def get(bundle: str) -> tuple[Path, Path, str]:
        runs = user_runs(bundle)
        return runs.data, runs.out, ok(runs.train)

    return get


@pytest.mark.slow
@pytest.mark.parametrize("bundle", sorted(SETUPS))
def test_train_evaluate_and_infer_as_a_user_types_it(bundle, user_runs):
    runs = user_runs(bundle)
    out, log = runs.out, ok(runs.train)
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"train_loss", "val_mean_dice", "val_mean_iou", "val_kappa", "val_accuracy", "val_hd95"} <= set(history[0])
    assert "val_mean_dice of the trivial predictor" in log and "epoch   2/2" in log
    state = torch.load(out / "models" / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(torch.is_tensor(value) for value in state.values())
    last = torch.load(out / "models" / "last_state.pt", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer", "best_metric", "early_stop", "budget"} <= set(last)
    for figure in ("training_curves.png", "validation_overlays.png"):
        assert (out / figure).stat().st_size > 1000

    ok(runs.evaluation)
    summary = json.loads((out / "eval" / "summary.json").read_text())
    for metric in ("test_mean_dice", "test_mean_iou", "test_kappa", "test_accuracy", "test_hd95"):
        assert summary[metric]["n"] >= 1 and np.isfinite(summary[metric]["mean"])
    assert 0 <= summary["test_mean_dice"]["mean"] <= 1
    assert (out / "eval" / "test_mean_dice_raw.csv").is_file()

    if runs.mismatch is not None:
        assert runs.mismatch.returncode == 1, runs.mismatch.stderr[-2000:]
        expected = "trained with other settings than those given: spatial_size [64, 64] (trained with [32, 32])"
        assert expected in runs.mismatch.stderr
        assert "Traceback" not in runs.mismatch.stderr
    ok(runs.inference)
    [mask] = runs.predictions.glob("*_seg.nii.gz")
    written, source = sitk.ReadImage(str(mask)), sitk_reference(runs.image)
    assert written.GetSize() == source.GetSize()[: written.GetDimension()]
    if written.GetDimension() == 3:  # volumes keep their geometry
        np.testing.assert_allclose(written.GetSpacing(), source.GetSpacing(), rtol=1e-5)
        np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(written.GetDirection(), source.GetDirection(), atol=1e-6)
    assert set(np.unique(sitk.GetArrayFromImage(written))) <= {0, 1}


@pytest.mark.slow
def test_masks_are_cleaned_as_each_bundle_sets_in_every_path(trained, tmp_path):
    """Validation, evaluation, ``inference.json`` and ``medseg infer --bundle`` keep the two largest components and
    fill holes (the bundle's ``keep_largest`` and ``fill_holes``); faces keep one; CT masks stay as thresholded."""
    logits = torch.full((1, 12, 16), -5.0)
    logits[0, 1:11, 1:6] = logits[0, 1:11, 9:15] = 5.0  # two lungs
    logits[0, 5, 3], logits[0, 11, 7] = -5.0, 5.0  # a hole, a speck (no neighbour, diagonals included)
    lungs = torch.zeros_like(logits)
    lungs[0, 1:11, 1:6] = lungs[0, 1:11, 9:15] = 1
    right_lung = torch.zeros_like(logits)  # the faces' bundle keeps one component: the larger (60 pixels against 50)
    right_lung[0, 1:11, 9:15] = 1
    for bundle in SETUPS:
        train = _parsed(bundle, network_name="unet", network_kwargs={})
        masks = [train.get_parsed_content("validate#postprocessing")({"pred": logits})["pred"]]
        evaluation = read_config(BUNDLES / bundle, "evaluate", network_name="unet", network_kwargs={})
        masks.append(evaluation.get_parsed_content("validate#postprocessing")({"pred": logits})["pred"])
        record = tmp_path / bundle / "models"
        train.get_parsed_content("model").save(record)  # what training records, read back by inference.json
        inference = read_config(BUNDLES / bundle, "inference", bundle_root=str(tmp_path / bundle))
        masks.append(inference.get_parsed_content("postprocessing#transforms#0")({"pred": logits})["pred"])
        expected = {
            "cxr_lung_unet": lungs,
            "ct_lung_unet": lungs,
            "lfw_face_fcn": right_lung,
            "luna16_segcaps": (logits > 0).float(),
            "skin_lesion_unet": right_lung,
        }[bundle]
        for mask in masks:
            torch.testing.assert_close(mask.as_tensor(), expected, msg=bundle)
    # medseg infer --bundle applies the model as its record says unless told otherwise
    _, out, _ = trained("cxr_lung_unet")
    image = json.loads((out / "datalist.json").read_text())["training"][0]["image"]
    off = ("--keep-largest", "0", "--fill-holes", "false", "--test-time-shift", "0")
    for flags, recorded in (((), (2, True, 4)), (off, (None, False, 0))):
        output = tmp_path / f"out{len(flags)}"
        assert medseg_main(["infer", "--model-dir", str(out), "--input", image, "--output", str(output), *flags]) == 0
        summary = json.loads((output / "summary.json").read_text())
        cleaning = summary["postprocessing"]
        assert (cleaning["keep_largest"], cleaning["fill_holes"], summary["settings"]["test_time_shift"]) == recorded


@pytest.mark.slow
@pytest.mark.parametrize("bundle", sorted(SETUPS))
def test_metadata_and_network_in_out(bundle, shared_data):
    schema = shared_data.parent / "schema" / "meta_schema_20240725.json"
    if not schema.is_file():
        pytest.skip(f"MONAI bundle schema not found at {schema}")
    root = BUNDLES / bundle
    verify_metadata(meta_file=str(root / "configs" / "metadata.json"), filepath=str(schema))
    metadata = json.loads((root / "configs" / "metadata.json").read_text())
    assert metadata["version"] in metadata["changelog"]
    for name in ("LICENSE", "docs/README.md", "configs/logging.conf", "configs/multi_gpu_train.json",
                 "configs/multi_gpu_evaluate.json", "configs/evaluate.json", "configs/inference.json",
                 "configs/inference_onnx.json"):  # fmt: skip
        assert (root / name).is_file(), name
    overrides = {"network_kwargs#fc_channels": 8} if bundle == "lfw_face_fcn" else {}
    # the network the bundle's settings declare (inference.json builds the one a trained record names)
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=config_files(root, "train"),
        bundle_root=str(root),
        **overrides,
    )


@pytest.mark.slow
@pytest.mark.parametrize("bundle", sorted(SETUPS))
def test_ckpt_export_gives_the_checkpoints_output(bundle, trained, tmp_path):
    _, out, _ = trained(bundle)
    channels = 3 if bundle in ("lfw_face_fcn", "skin_lesion_unet") else 1
    exported = tmp_path / "model.ts"
    # MONAI's function behind `python -m monai.bundle ckpt_export`, called here: a process would import MONAI first;
    # inference.json builds the network the checkpoint's record names (no setting given again)
    configs = BUNDLES / bundle / "configs"
    ckpt_export(
        "network_def", filepath=str(exported), ckpt_file=str(out / "models" / "model.pt"),
        meta_file=str(configs / "metadata.json"), config_file=config_files(BUNDLES / bundle, "inference"),
        bundle_root=str(out), use_trace=True, input_shape=[1, channels, 32, 32],
    )  # fmt: skip
    network = read_config(BUNDLES / bundle, "inference", bundle_root=str(out)).get_parsed_content("network_def")
    network.load_state_dict(torch.load(out / "models" / "model.pt", weights_only=True))
    x = torch.rand(2, channels, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(exported))(x), network.eval()(x), rtol=1e-4, atol=1e-5)


def _parsed(bundle: str, **overrides) -> ConfigParser:
    """The bundle's training configs, parsed as ``python -m monai.bundle run`` parses them."""
    return read_config(BUNDLES / bundle, "train", **overrides)


def _test_time(inferer) -> tuple[tuple[int, ...], int]:
    """The (mirrored axes, shift in pixels) of a bundle's inferer (inside its autocast, which is off by default)."""
    if isinstance(inferer, AutocastInferer):
        assert not inferer.enabled
        inferer = inferer.inferer
    pixels = inferer.pixels if isinstance(inferer, ShiftAveragingInferer) else 0
    inner = inferer.inferer if pixels else inferer
    return tuple(inner.spatial_axes) if isinstance(inner, FlipAveragingInferer) else (), pixels


def test_defaults_are_the_papers(synthetic, tmp_path):
    cxr = _parsed("cxr_lung_unet", dataset_dir=str(synthetic("cxr", n=12)), output_dir=str(tmp_path / "cxr"))
    network = cxr.get_parsed_content("network_def")  # MONAI's UNet 16-256: ~70 epochs in 10 CPU minutes (README)
    assert isinstance(network, PaddedUNet) and tuple(network.channels) == (16, 32, 64, 128, 256)
    loss = cxr.get_parsed_content("loss")  # measured best on real radiographs (README); the study's is focal-Tversky
    assert isinstance(loss, DiceCELoss) and loss.dice.sigmoid and loss.lambda_dice == loss.lambda_ce == 1.0
    assert type(cxr.get_parsed_content("optimizer")) is torch.optim.Adam
    # the caches are built by up to 4 threads (1.6 times as fast on 2 cores, README); batches in the main process,
    # or in workers started once (--num_workers)
    for subset in ("train", "validate"):
        assert cxr.get_parsed_content(f"{subset}#dataset").num_workers == min(4, os.cpu_count() or 1)
        loader = cxr.get_parsed_content(f"{subset}#dataloader")
        assert (loader.num_workers, loader.persistent_workers) == (0, False)
    lfw = _parsed("lfw_face_fcn", dataset_dir=str(synthetic("lfw", n=12)), output_dir=str(tmp_path / "lfw"))
    lfw.update({"network_kwargs#fc_channels": 8})
    network = lfw.get_parsed_content("network_def")
    assert isinstance(network, FCN32s) and network.backbone == "vgg16" and network.in_channels == 3
    assert isinstance(lfw.get_parsed_content("loss"), SoftIoULoss) and lfw.get_parsed_content("loss").sigmoid
    optimizer = lfw.get_parsed_content("optimizer")
    assert type(optimizer) is torch.optim.RMSprop and optimizer.defaults["lr"] == 1e-4
    # faces: mirrored in training, so validation, evaluation and inference average the mirrored face; radiographs:
    # evaluation and inference average copies moved by 4 pixels, validation does not (it would cost epochs) (README)
    for bundle, parser, axes, pixels in (("cxr_lung_unet", cxr, (), 4), ("lfw_face_fcn", lfw, (0,), 0)):
        assert _test_time(parser.get_parsed_content("validate#inferer")) == (axes, 0)
        model = parser.get_parsed_content("model")
        assert (model.test_time_flip_axes, model.test_time_shift) == (axes, pixels)
        model.save(tmp_path / bundle / "models")  # the record inference.json reads
        evaluation = read_config(BUNDLES / bundle, "evaluate").get_parsed_content("validate#inferer")
        inference = read_config(BUNDLES / bundle, "inference", bundle_root=str(tmp_path / bundle))
        for inferer in (evaluation, inference.get_parsed_content("inferer")):
            assert _test_time(inferer) == (axes, pixels), bundle
    volumes = synthetic("luna16", **SETUPS["luna16_segcaps"][1])
    luna = _parsed("luna16_segcaps", dataset_dir=str(volumes), output_dir=str(tmp_path / "luna"))
    assert isinstance(luna.get_parsed_content("network_def"), SegCapsR3)
    loss = luna.get_parsed_content("loss")
    assert isinstance(loss, SegCapsLoss) and loss.recon_weight == pytest.approx(131.072)
    assert isinstance(loss.segmentation_loss, WeightedBCELoss) and not loss.segmentation_loss.sigmoid
    assert loss.segmentation_loss.pos_weight.item() > 1  # SegCaps' negative/positive ratio of the training masks
    assert isinstance(luna.get_parsed_content("train#trainer").prepare_batch, PrepareBatchSegCaps)
    assert tuple(luna.get_parsed_content("optimizer").defaults["betas"]) == (0.99, 0.999)
    # another loss takes its registry defaults: the bundle's loss arguments are weighted BCE's (none)
    luna.update({"loss_name": "iou"})
    iou = luna.get_parsed_content("loss", lazy=False)
    assert isinstance(iou.segmentation_loss, SoftIoULoss) and luna.get_parsed_content("loss_kwargs") == {}


def test_loss_and_network_overrides_change_what_is_trained(synthetic, tmp_path):
    data = str(synthetic("cxr", n=12))
    parser = _parsed("cxr_lung_unet", dataset_dir=data, output_dir=str(tmp_path), loss_name="dice",
                     network_name="basicunet", network_kwargs={})  # fmt: skip
    assert isinstance(parser.get_parsed_content("loss"), DiceLoss) and parser.get_parsed_content("loss").sigmoid
    assert isinstance(parser.get_parsed_content("network_def"), PaddedBasicUNet)
    trainer = parser.get_parsed_content("train#trainer")
    assert trainer.loss_function is parser.get_parsed_content("loss") and trainer.network is parser.get_parsed_content(
        "network"
    )
    # a capsule network outputs probabilities: MONAI's logits-only focal loss is fed logit(p), inside SegCaps' loss
    parser = _parsed("cxr_lung_unet", dataset_dir=data, output_dir=str(tmp_path), loss_name="focal",
                     network_name="segcaps_r1", network_kwargs={})  # fmt: skip
    assert isinstance(parser.get_parsed_content("network_def"), SegCapsR1)
    loss = parser.get_parsed_content("loss")
    assert isinstance(loss, SegCapsLoss) and isinstance(loss.segmentation_loss, ProbabilityInput)
    assert isinstance(loss.segmentation_loss.loss, FocalLoss)


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 300) -> None:
    start = time.monotonic()
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before it could be killed: {process.stdout.read()[-2000:]}")
        if time.monotonic() - start > timeout:
            process.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.2)


@pytest.mark.slow
def test_resume_continues_a_killed_run(synthetic, tmp_path, run_here, capfd):
    data, out = synthetic("cxr", n=12), tmp_path / "out"
    overrides = ["--dataset_dir", str(data), "--output_dir", str(out), "--spatial_size", "[32,32]", "--batch_size", "4"]
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_list("train"), *overrides,
               "--epochs", "40"]  # fmt: skip
    process = subprocess.Popen(command, cwd=BUNDLES / "cxr_lung_unet", stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    last_state, history = out / "models" / "last_state.pt", out / "history.json"

    def saved_epochs() -> int:  # the file is written atomically: it is complete whenever it exists
        trainer = torch.load(last_state, weights_only=True)["trainer"] if last_state.is_file() else None
        return 0 if trainer is None else trainer["iteration"] // trainer["epoch_length"]

    _wait_for(lambda: saved_epochs() >= 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = saved_epochs()
    assert done >= 2
    torch.load(out / "models" / "model.pt", weights_only=True)  # the best checkpoint is complete
    # SIGKILL during a write may leave that write's temporary file: hidden, named after its target, never an output
    # (medseg.files.atomic_path; the next write of the target removes it)
    hidden = [path.name for path in (out / "models").glob(".*")]
    assert all(re.fullmatch(r"\.(model|last_state)\.pt\.\w+\.tmp\.pt", name) for name in hidden), hidden
    run_here("cxr_lung_unet", "train", **as_config(overrides[4:]), dataset_dir=str(data), output_dir=str(out),
             epochs=done + 2, resume=True)  # fmt: skip
    log = capfd.readouterr().out
    rows = json.loads(history.read_text())
    assert [row["epoch"] for row in rows] == list(range(1, done + 3))
    assert f"epoch {done + 1:>3}/{done + 2}" in log and "epoch   1/" not in log


def test_minutes_stop_training_within_the_first_epoch(synthetic, tmp_path, run_here, capfd):
    """A budget spent before the first epoch ends (loading the data counts) stops it after one iteration: the epoch
    is cut short, validated, and its model kept."""
    out = tmp_path / "out"
    run_here("cxr_lung_unet", "train", dataset_dir=str(synthetic("cxr", n=12)), output_dir=str(out),
             spatial_size=[32, 32], batch_size=2, epochs=50, minutes=0.001)  # fmt: skip
    assert "time budget of 0.001 min spent during epoch 1 (after 1 of" in capfd.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and "val_mean_dice" in history[0]
    trainer = torch.load(out / "models" / "last_state.pt", weights_only=True)["trainer"]
    assert trainer["iteration"] == 1 < trainer["epoch_length"]
    assert (out / "models" / "model.pt").is_file()


@pytest.mark.parametrize("selection, average", [("last", 1), ("best", 2)])
def test_model_selection_and_average_choose_the_saved_network(selection, average, synthetic, tmp_path, run_here):
    """``last``: the network of the last validation; ``best`` with ``--model_average 2``: the mean of the weights of
    the two networks of best validation Dice in ``history.json`` (the earlier on a tie). The cosine schedule
    lowers the learning rate from the first step, so the averaging starts at the first validation."""
    out = tmp_path / "out"
    run_here("cxr_lung_unet", "train", dataset_dir=str(synthetic("cxr", n=12)), output_dir=str(out),
             spatial_size=[32, 32], batch_size=4, epochs=3, model_selection=selection, model_average=average,
             lr_schedule="cosine")  # fmt: skip
    model = torch.load(out / "models" / "model.pt", weights_only=True)
    last = torch.load(out / "models" / "last_state.pt", weights_only=True)
    trainer = last["trainer"]
    assert trainer["iteration"] // trainer["epoch_length"] == 3
    members = last["best_saver"]
    if selection == "last":
        assert members["epochs"] == [3]
        expected = last["model"]
    else:
        dice = [row["val_mean_dice"] for row in json.loads((out / "history.json").read_text())]
        assert members["epochs"] == sorted(range(1, 4), key=lambda epoch: -dice[epoch - 1])[:2]
        weights = members["weights"]
        expected = {key: (weights[0][key] + weights[1][key]) / 2 for key in weights[0]}
    assert model.keys() == expected.keys()
    assert all(torch.allclose(model[key], expected[key]) for key in model)


@pytest.mark.slow
def test_multi_gpu_configs_run_two_cpu_processes_with_torchrun(synthetic, tmp_path):
    out = tmp_path / "out"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]
    # 16 cases: the validation subset (2) must have a case per rank, as MONAI's DistributedSampler requires
    log = ok(bundle_run("cxr_lung_unet", "multi_gpu_train", "--dataset_dir",
                        str(synthetic("cxr", n=16)), "--output_dir", str(out), "--spatial_size", "[32,32]",
                        "--batch_size", "2", "--epochs", "2", runner=torchrun))  # fmt: skip
    assert log.count("epoch   2/2") == 1  # one report, from rank 0
    assert len(json.loads((out / "history.json").read_text())) == 2
    state = torch.load(out / "models" / "model.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in state)  # the network, not its DDP wrapper
    # multi_gpu_evaluate.json: the test cases shared between the two processes give the single process's metrics
    data = ["--dataset_dir", str(synthetic("cxr", n=16)), "--output_dir", str(out), "--spatial_size", "[32,32]"]
    ok(bundle_run("cxr_lung_unet", "evaluate", *data))
    single = {path.name: path.read_text() for path in (out / "eval").glob("*_raw.csv")}
    shutil.rmtree(out / "eval")
    log = ok(bundle_run("cxr_lung_unet", "multi_gpu_evaluate", *data,
                        runner=[*torchrun[:-1], "--master_port=29518"]))  # fmt: skip
    assert log.count("test_mean_dice") >= 1 and "wrote" in log
    assert single and "test_mean_dice_raw.csv" in single
    for name, text in single.items():
        cases, two = _per_case(text), _per_case((out / "eval" / name).read_text())
        assert sorted(two) == sorted(cases), name
        for case, values in cases.items():  # the same numbers, as float32 reductions in another order give them
            np.testing.assert_allclose(two[case], values, rtol=1e-5, err_msg=f"{name}: {case}")


def _per_case(csv: str) -> dict[str, list[float]]:
    """A MONAI ``MetricsSaver`` per-case CSV as ``{case file: values}``."""
    rows = [line.split(",") for line in csv.strip().splitlines()[1:]]
    return {row[0]: [float(value) for value in row[1:]] for row in rows}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--loss_name", "jacard"], "unknown loss_name 'jacard'; valid: bce, dice"),
        (["--network_name", "vnet"], "unknown network_name 'vnet'; valid: attentionunet, basicunet"),
        (["--network_name", "basicunet"], "network_kwargs {'channels': [16, 32, 64, 128, 256], 'strides'"),
        (["--dataset_dir", "/nonexistent/cxr"], "--dataset_dir /nonexistent/cxr: no such folder"),
        (["--datalist", "EMPTY"], "no entries under 'training'"),
        (["--model_selection", "final"], "unknown --model_selection 'final'; valid: best, last"),
    ],
)
def test_bad_overrides_fail_at_once_without_a_checkpoint(overrides, message, synthetic, tmp_path, run_here):
    """The first case as a user types it (exit status 1, one line, no traceback); the others in this process, where
    the same ``SettingsError`` ends ``monai.bundle.run`` (wrapped by MONAI's parser): a new process would spend about
    10 s importing MONAI for each. A network named alone keeps the bundle network's arguments, which it refuses."""
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"training": []}))
    out = tmp_path / "out"
    settings = {"--dataset_dir": str(synthetic("cxr", n=12)), "--output_dir": str(out), "--spatial_size": "[32,32]"}
    settings.update(
        {key: str(empty) if value == "EMPTY" else value for key, value in zip(overrides[::2], overrides[1::2])}
    )
    if overrides[0] == "--loss_name":
        process = bundle_run("cxr_lung_unet", "train", *[item for pair in settings.items() for item in pair])
        assert process.returncode == 1
        assert f"medseg bundle: error: {message}" in process.stderr, process.stderr[-2000:]
        assert "Traceback" not in process.stderr
    else:
        given = {key.removeprefix("--"): value for key, value in settings.items()}
        with refused(message):
            run_here("cxr_lung_unet", "train", **{**given, "spatial_size": [32, 32]})
    assert not (out / "models" / "model.pt").exists() and not (out / "models" / "last_state.pt").exists()


@pytest.mark.slow
def test_mlflow_tracking_where_installed(synthetic, tmp_path):
    pytest.importorskip("mlflow", reason="mlflow is an optional extra: pip install 'medseg[mlflow]'")
    out = tmp_path / "out"
    ok(bundle_run("cxr_lung_unet", "train", "--dataset_dir", str(synthetic("cxr", n=12)), "--output_dir",
                  str(out), "--spatial_size", "[32,32]", "--epochs", "1", "--tracking", "mlflow"))  # fmt: skip
    assert (out / "mlruns.db").is_file()


def test_augmentation_runs_untracked_and_validation_keeps_its_metadata():
    """Training batches are plain tensors (no MetaTensor cost); MONAI's tracking flag is restored, also after an
    error, so the validation and inference pipelines keep their metadata (Invertd and MetricsSaver need it)."""
    from monai.data import MetaTensor, get_track_meta
    from monai.transforms import Compose, Lambdad, RandAffined, RandFlipd

    from medseg.transforms import UntrackedCompose

    image = MetaTensor(torch.arange(12.0).reshape(1, 3, 4), meta={"filename_or_obj": "case.png"})
    item = {"image": image, "label": (image > 5).float(), "case": "case"}
    flip = UntrackedCompose([RandFlipd(keys=["image", "label"], prob=1.0, spatial_axis=0)])
    for transform in (flip, UntrackedCompose([RandFlipd(keys="image", prob=0.0)])):  # fired, and not fired
        out = transform(item)
        assert type(out["image"]) is torch.Tensor and type(out["label"]) is torch.Tensor and out["case"] == "case"
        assert get_track_meta()
    torch.testing.assert_close(flip(item)["image"], torch.flip(image.as_tensor(), dims=[1]))
    with pytest.raises(RuntimeError):
        UntrackedCompose([Lambdad("image", lambda x: 1 / 0)])(item)
    assert get_track_meta()
    assert type(RandFlipd(keys="image", prob=1.0, spatial_axis=0)(item)["image"]) is MetaTensor
    # the same random draws give the same augmentation as MONAI's tracked path, to the bit
    tracked, untracked = (
        kind([RandAffined(keys=["image", "label"], prob=1.0, rotate_range=0.3, scale_range=0.2, padding_mode="zeros")])
        for kind in (Compose, UntrackedCompose)
    )
    tracked.set_random_state(seed=3)
    untracked.set_random_state(seed=3)
    for _ in range(3):
        expected, out = tracked(item), untracked(item)
        torch.testing.assert_close(out["image"], expected["image"].as_tensor(), rtol=0, atol=0)
        torch.testing.assert_close(out["label"], expected["label"].as_tensor(), rtol=0, atol=0)


def test_training_pipeline_is_cached_up_to_the_augmentation(tmp_path):
    """The bundles' ``CacheDataset`` loads each image once: the items still come after the files are gone."""
    from monai.data import CacheDataset, MetaTensor
    from monai.transforms import Compose, RandFlipd
    from PIL import Image

    from medseg.pipeline import preprocessing

    rng = np.random.default_rng(0)
    data = []
    for i in range(3):
        image, mask = tmp_path / f"case{i}.png", tmp_path / f"case{i}_mask.png"
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(image)
        Image.fromarray(np.where(rng.random((40, 48)) > 0.5, 255, 0).astype(np.uint8)).save(mask)
        data.append({"image": str(image), "label": str(mask)})
    flip = Compose([RandFlipd(keys=["image", "label"], prob=1.0, spatial_axis=1)])
    model = ModelSettings(task="cxr", network_name="unet", spatial_size=(32, 32))
    dataset = CacheDataset(data, preprocessing(model, with_label=True, augmentation=flip), progress=False)
    validation = CacheDataset(data[:1], preprocessing(model, with_label=True), progress=False)
    assert type(validation[0]["image"]) is MetaTensor  # without augmentation (validation), metadata is kept
    for entry in data:
        os.remove(entry["image"])
        os.remove(entry["label"])
    item = dataset[0]
    assert item["image"].shape == item["label"].shape == (1, 32, 32)
    assert type(item["image"]) is torch.Tensor  # the augmentation runs untracked
    # the augmentation still runs on every access: a flip of the cached item, not a cached flip
    cached = dataset._cache[0]["image"]
    torch.testing.assert_close(torch.as_tensor(item["image"]), torch.flip(torch.as_tensor(cached), dims=[2]))


def test_print_outputs_names_the_evaluation_folder_in_use(tmp_path, capsys):
    """``--eval_dir`` moves the evaluation's outputs; the list printed at the end must point there."""
    for path in (
        tmp_path / "models" / "model.pt",
        tmp_path / "eval" / "summary.json",
        tmp_path / "last" / "summary.json",
    ):
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    assert print_outputs(tmp_path, tmp_path / "last") == [
        tmp_path / "models" / "model.pt",
        tmp_path / "last" / "summary.json",
    ]
    assert f"evaluation summary: {tmp_path / 'last' / 'summary.json'}" in capsys.readouterr().out
    assert print_outputs(tmp_path)[-1] == tmp_path / "eval" / "summary.json"  # the bundles' default eval_dir


@pytest.mark.slow
def test_evaluation_with_other_settings_names_the_overrides(trained, run_here):
    """Evaluation checks the bundle's settings against the checkpoint's record and gives the flags that match it."""
    data, out, _ = trained("cxr_lung_unet")
    with refused("was trained with other settings; pass --spatial_size [32,32]"):
        run_here("cxr_lung_unet", "evaluate", dataset_dir=str(data), output_dir=str(out), spatial_size=[64, 64])
    with refused("pass --network_kwargs#num_res_units 2"):
        run_here("cxr_lung_unet", "evaluate", dataset_dir=str(data), output_dir=str(out), spatial_size=[32, 32],
                 **{"network_kwargs#num_res_units": 1})  # fmt: skip


@pytest.mark.slow
def test_a_refused_override_writes_nothing(trained, run_here, tmp_path):
    """A training run refused for a bad setting leaves a trained run as it was: its record, its checkpoint."""
    data, out, _ = trained("cxr_lung_unet")
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    before = {path: path.read_bytes() for path in (copy / "models").iterdir()}
    datalist = str(copy / "datalist.json")
    for overrides, message in (
        ({"datalist": datalist, "fold": 9}, "--fold 9: "),
        ({"spatial_size": [0, 0]}, "spatial_size must be two positive integers"),
        ({"resume": True, "spatial_size": [48, 48]}, "trained with other settings; pass --spatial_size [32,32]"),
    ):
        with refused(message):
            run_here("cxr_lung_unet", "train", **{"dataset_dir": str(data), "output_dir": str(copy), **overrides})
    assert {path: path.read_bytes() for path in (copy / "models").iterdir()} == before


@pytest.mark.slow
def test_a_checkpoint_beside_another_models_record_is_refused(trained, real_data, tmp_path, capsys):
    """The weights of one bundle copied into another model's folder (the same network, another task): the
    checkpoint carries the fingerprint of the settings it was trained with, and inference checks it."""
    from medseg.pipeline import STAMP_KEY

    _, out, _ = trained("cxr_lung_unet")
    model = torch.load(out / "models" / "model.pt", weights_only=True)
    trained_as = ModelSettings.read(out / "models")
    assert model._metadata[STAMP_KEY]["settings"] == trained_as.to_dict()  # the record travels with the weights
    assert model._metadata[STAMP_KEY]["sha256"] == trained_as.fingerprint()
    other = tmp_path / "ct_run" / "models"
    other.mkdir(parents=True)
    shutil.copy(out / "models" / "model.pt", other / "model.pt")
    ModelSettings(task="ct", network_name="unet", network_kwargs=trained_as.network_kwargs,
                  spatial_size=trained_as.spatial_size).save(other)  # fmt: skip
    scan = str(real_data("ct_cip") / "ct-64.nrrd")
    with pytest.raises(SystemExit) as exit:
        medseg_main(
            ["infer", "--model-dir", str(tmp_path / "ct_run"), "--input", scan, "--output", str(tmp_path / "m")]
        )
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "trained as another model (task 'cxr', network 'unet'" in error and "(task 'ct', network 'unet'" in error
    # the bundle's inference.json checks the same
    inference = read_config(BUNDLES / "luna16_segcaps", "inference", bundle_root=str(tmp_path / "ct_run"))
    with refused("trained as another model"):
        inference.get_parsed_content("model")


@pytest.mark.slow
def test_inference_json_names_outputs_as_medseg_infer(trained, run_here, tmp_path):
    """Two inputs of one file name in different folders: MONAI names an output after its input's file name, so one
    mask would replace the other; the bundle names them as medseg infer does."""
    _, out, _ = trained("cxr_lung_unet")
    image = json.loads((out / "datalist.json").read_text())["training"][0]["image"]
    entries = []
    for folder in ("c1", "c2"):
        (tmp_path / folder).mkdir()
        shutil.copy(image, tmp_path / folder / "x.png")
        entries.append({"image": str(tmp_path / folder / "x.png")})
    datalist = tmp_path / "inputs.json"
    datalist.write_text(json.dumps({"training": entries}))
    run_here("cxr_lung_unet", "inference", datalist=str(datalist), output_dir=str(tmp_path / "masks"),
             bundle_root=str(out), spatial_size=[32, 32])  # fmt: skip
    assert sorted(path.name for path in (tmp_path / "masks").iterdir()) == ["c1_x_seg.nii.gz", "c2_x_seg.nii.gz"]


@pytest.mark.slow
def test_model_card_and_verify_pass_when_trained_and_fail_when_perturbed(user_runs, tmp_path, capsys):
    runs = user_runs("cxr_lung_unet")
    ok(runs.evaluation)
    bundle = tmp_path / "bundle"
    shutil.copytree(runs.out, bundle)
    assert medseg_main(["card", "--model-dir", str(bundle)]) == 0
    card = (bundle / "docs" / "model_card.md").read_text()
    summary = json.loads((bundle / "eval" / "summary.json").read_text())
    assert f"| test_mean_dice | {summary['test_mean_dice']['mean']:.4f} |" in card  # the evaluation's own figures
    golden = json.loads((bundle / "golden" / "golden.json").read_text())
    assert len(golden) == 3 and all((bundle / case["expected"]).is_file() for case in golden)
    assert [case["test_dice"] for case in golden] == sorted(case["test_dice"] for case in golden)  # low, mid, high
    assert medseg_main(["infer", "--model-dir", str(bundle), "--verify"]) == 0
    assert medseg_main(["export", "--model-dir", str(bundle)]) == 0  # the same golden masks from ONNX Runtime
    assert medseg_main(["infer", "--model-dir", str(bundle), "--verify", "--runtime", "onnxruntime"]) == 0
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    noisy = {key: value + value.float().std() * torch.randn(value.shape, generator=generator)
             if value.is_floating_point() and value.numel() > 1 else value for key, value in state.items()}  # fmt: skip
    torch.save(noisy, bundle / "models" / "model.pt")
    capsys.readouterr()
    assert medseg_main(["infer", "--model-dir", str(bundle), "--verify"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("bundle", sorted(SETUPS))
def test_inference_json_runs_alone_on_a_model_file(bundle, trained, run_here, tmp_path):
    """A fresh copy of the bundle with nothing but the trained ``models/model.pt`` (no ``settings.json``, no
    training outputs): ``configs/inference.json`` alone segments an image, and ``verify_net_in_out`` passes on it,
    with the network the checkpoint's record names."""
    _, out, _ = trained(bundle)
    folder = copied_alone(bundle, tmp_path)
    (folder / "models").mkdir()
    shutil.copy(out / "models" / "model.pt", folder / "models" / "model.pt")
    image = sorted(json.loads((out / "datalist.json").read_text())["training"], key=lambda e: e["case"])[0]["image"]
    run_here(folder, "inference", input_dir=image, output_dir=str(tmp_path / "masks"))
    [mask] = (tmp_path / "masks").glob("*_seg.nii.gz")
    written = sitk.ReadImage(str(mask))
    assert written.GetSize() == sitk_reference(image).GetSize()[: written.GetDimension()]
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(folder / "configs" / "metadata.json"),
        config_file=str(folder / "configs" / "inference.json"),
        bundle_root=str(folder),
    )
