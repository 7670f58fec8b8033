"""A trained model's network as ONNX, beside the record of the pipeline around it.

:func:`export_onnx` writes ``<out>/models/model.onnx`` and the model's ``settings.json`` (its pre-processing,
inferer, threshold and mask cleaning, :class:`medseg.pipeline.ModelSettings`), so that ``medseg infer --backend
onnxruntime`` and a bundle's ``configs/inference_onnx.json`` run the same pipeline with ONNX Runtime in place of
PyTorch's forward pass (:class:`medseg.inference.OnnxNetwork`).

It extends PyTorch's exporter rather than MONAI's ``monai.networks.convert_to_onnx``, which drives the TorchScript
exporter: ``torch.onnx.export(..., dynamo=True)`` traces with ``torch.export``, so a network whose control flow
depends on its input is refused with the reason instead of being silently frozen on the example. The batch axis is
always dynamic (the inferers batch windows and slices) and the spatial axes are where the network allows
(``Dim.AUTO``: PyTorch finds the sizes the network takes; where it cannot, the export falls back to the recorded
``spatial_size``, the only size the sliding-window and slice inferers feed). The written file is read back by ONNX
Runtime and its output compared with PyTorch's before it replaces anything, and it carries the settings stamp, the
digest of the weights it was exported from and the digest of its own graph, so that a file copied beside another
model, left behind by a retraining, edited, stripped of its stamps or separated from its weights is refused
(:meth:`medseg.inference.OnnxNetwork.check_origin`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from medseg.files import atomic_path, content_digest
from medseg.inference import ONNX_FILE, WEIGHTS_KEY, CheckpointError, OnnxNetwork, load_weights, model_settings
from medseg.inference.onnx_network import stamp_graph
from medseg.pipeline import SETTINGS_FILE, STAMP_KEY, ModelSettings, build_network

__all__ = ["WEIGHTS_KEY", "ExportError", "OnnxExport", "check_exported_from", "export_onnx"]
#: Largest difference of a foreground probability between ONNX Runtime and PyTorch that an export accepts.
TOLERANCE = 1e-3
#: Batch of the example the network is traced and checked with (2, so that the batch axis is not specialised to 1).
EXAMPLE_BATCH = 2


class ExportError(ValueError):
    """A model that cannot be exported, or whose export does not compute what the network does; names the file."""


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and checked."""

    path: Path
    settings_path: Path
    dynamic_spatial: bool
    max_difference: float
    seconds: float
    megabytes: float


def check_exported_from(network: OnnxNetwork, checkpoint: str | Path) -> None:
    """Refuse an ONNX file that cannot prove it was exported from the ``checkpoint`` beside it: without its stamps,
    edited since, without the checkpoint, or exported from other weights (a model retrained since);
    :meth:`medseg.inference.OnnxNetwork.check_origin`.

    Raises:
        OnnxModelError: naming the file, and saying how to export again.
    """
    network.check_origin(checkpoint)


def _probabilities(output: torch.Tensor, settings: ModelSettings) -> torch.Tensor:
    return torch.sigmoid(output) if settings.network_output == "logits" else output


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's own log (its progress, operators of packages not installed) kept to errors."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _for_runtime(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` in which each ``nn.PReLU`` with one slope is an ``nn.LeakyReLU`` of that slope: the same
    function (``max(0, x) + a·min(0, x)``), which the exporter writes as ``LeakyRelu``, a vectorised element-wise
    kernel of ONNX Runtime, instead of ``PRelu``, whose broadcasting kernel took 40 % of ONNX Runtime's time in
    MONAI's residual U-Net (256x256, 2 threads, ``scripts/benchmark_onnx.py``). The export is compared with the
    original network (:func:`_check_same_outputs`)."""
    copied = copy.deepcopy(network)
    for name, module in list(copied.named_modules()):
        if name and isinstance(module, torch.nn.PReLU) and module.num_parameters == 1:
            parent, _, attribute = name.rpartition(".")
            slope = float(module.weight.detach().reshape(()))
            setattr(copied.get_submodule(parent), attribute, torch.nn.LeakyReLU(slope))
    return copied


def _trace(network: torch.nn.Module, example: torch.Tensor) -> tuple[torch.onnx.ONNXProgram, bool]:
    """The ONNX program of ``network``: batch and spatial axes dynamic if it allows, else the batch alone."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    spatial = {axis: torch.export.Dim.AUTO for axis in range(2, example.ndim)}
    errors = []
    for dynamic_spatial, axes in ((True, {0: batch, **spatial}), (False, {0: batch})):
        try:
            with warnings.catch_warnings(), _quiet_exporter():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    network, (example,), dynamo=True, input_names=["image"], output_names=["output"],
                    dynamic_shapes=(axes,), verbose=False,
                )  # fmt: skip
            return program, dynamic_spatial
        except Exception as error:  # torch.export raises many classes (UserError, GuardOnDataDependent, ...)
            errors.append(_first_line(error))
    raise ExportError(f"cannot be traced by torch.export: {errors[-1]}")


def _check_same_outputs(
    path: Path, network: torch.nn.Module, settings: ModelSettings, dynamic_spatial: bool, name: Path
) -> float:
    """The largest probability difference between ONNX Runtime on ``path`` (to become ``name``) and PyTorch, over
    a larger batch than the example's, a single image and (for dynamic axes) a larger one; raise when it exceeds
    :data:`TOLERANCE`."""
    generator = torch.Generator().manual_seed(0)
    size = tuple(settings.spatial_size)
    shapes = [(EXAMPLE_BATCH + 1, *size), (1, *size)]
    if dynamic_spatial:
        shapes.append((1, *(2 * side for side in size)))
    runtime = OnnxNetwork(path, settings)
    difference = 0.0
    for batch, *spatial in shapes:
        image = torch.randn(batch, settings.in_channels, *spatial, generator=generator)
        with torch.no_grad():
            expected = _probabilities(network(image), settings)
        try:
            got = _probabilities(runtime(image), settings)
        except Exception as error:  # onnxruntime's own classes
            raise ExportError(
                f"{name}: ONNX Runtime cannot run it on {tuple(image.shape)}: {_first_line(error)}"
            ) from None
        if got.shape != expected.shape:
            raise ExportError(
                f"{name}: ONNX Runtime gives {tuple(got.shape)} where PyTorch gives {tuple(expected.shape)}"
            )
        difference = max(difference, float((got - expected).abs().max()))
    if difference > TOLERANCE:
        raise ExportError(
            f"{name}: ONNX Runtime's probabilities differ from PyTorch's by {difference:.2g} (> {TOLERANCE})"
        )
    return difference


def _stamp_graph_file(path: Path) -> None:
    """Record the digest of the saved file's graph in its metadata (:func:`medseg.inference.onnx_network.stamp_graph`),
    the last of its stamps: it can only be computed once the graph is written."""
    import onnx

    onnx.save(stamp_graph(onnx.load(str(path))), str(path))


def export_onnx(model_dir: str | Path, out: str | Path | None = None) -> OnnxExport:
    """Export the trained network of ``model_dir`` (its ``models/model.pt`` and the record it carries) to
    ``<out>/models/model.onnx``, which carries the record too, beside a copy of the settings (``out`` defaults to
    ``model_dir`` itself).

    Raises:
        SettingsFileError: for a checkpoint without a readable record.
        CheckpointError: for a missing checkpoint, or one that is not the weights the settings describe.
        ExportError: for a network ``torch.export`` cannot trace, or an export whose outputs differ from PyTorch's;
            nothing is written then.
    """
    start = time.perf_counter()
    models = Path(model_dir) / "models"
    checkpoint = models / "model.pt"
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: no trained weights to export (train the model first)")
    settings = model_settings(checkpoint)
    network = build_network(settings).eval()
    load_weights(network, checkpoint, "cpu", settings)
    example = torch.randn(EXAMPLE_BATCH, settings.in_channels, *settings.spatial_size)
    try:
        program, dynamic_spatial = _trace(_for_runtime(network), example)
    except ExportError as error:
        raise ExportError(f"{checkpoint}: the network {settings.network_name!r} {error}") from None
    program.model.metadata_props[STAMP_KEY] = json.dumps(settings.stamp())
    program.model.metadata_props[WEIGHTS_KEY] = content_digest(checkpoint)
    target = Path(out or model_dir) / "models" / ONNX_FILE
    difference = 0.0

    def verify(temporary: Path) -> None:
        nonlocal difference
        difference = _check_same_outputs(temporary, network, settings, dynamic_spatial, target)

    with atomic_path(target, verify=verify) as temporary:
        program.save(temporary, external_data=False)
        _stamp_graph_file(temporary)
    settings_path = target.parent / SETTINGS_FILE
    if settings_path.resolve() != (models / SETTINGS_FILE).resolve():
        settings.save(target.parent)
    return OnnxExport(
        path=target,
        settings_path=settings_path,
        dynamic_spatial=dynamic_spatial,
        max_difference=difference,
        seconds=time.perf_counter() - start,
        megabytes=target.stat().st_size / 2**20,
    )
