"""An ONNX export quantized to 8 bits with ONNX Runtime's own tools, for faster inference on a CPU.

:func:`quantize_onnx` runs ``onnxruntime.quantization``: the graph is pre-processed (``quant_pre_process``: ONNX
Runtime's graph optimisations and shape inference), then quantized statically in the QDQ format (``quantize_static``:
weights as signed 8-bit integers per output channel, activations as unsigned 8-bit integers with ranges calibrated
on real inputs), so that ONNX Runtime runs its integer convolution kernels. The calibration batches are the ones the
network sees in the model's own pipeline (:func:`calibration_batches`: test-time shifts and flips, sliding windows or
slices, as :class:`medseg.inference.Predictor` feeds them). The quantized file keeps the export's stamps (settings,
weights digest), records its own graph's digest and adds :data:`medseg.inference.QUANTIZED_KEY`, so that
``medseg infer`` records its runtime as ``onnxruntime-int8``.

A quantized network gives masks close to, not equal to, full precision's: whether they are close enough is measured
by the caller (``scripts/ship_model.py`` keeps the file only when every golden mask keeps Dice ≥ 0.99 against full
precision).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from medseg.files import atomic_path
from medseg.inference import QUANTIZED_KEY, OnnxNetwork, Predictor
from medseg.inference.onnx_network import stamp_graph

from .onnx import ExportError

__all__ = ["QUANTIZATION", "calibration_batches", "quantize_onnx"]

#: How :func:`quantize_onnx` quantizes (recorded in the file under :data:`medseg.inference.QUANTIZED_KEY`).
QUANTIZATION = {
    "tool": "onnxruntime.quantization.quantize_static",
    "format": "QDQ",
    "weights": "int8, per channel",
    "activations": "uint8, calibrated (min-max)",
    "full precision": "the nodes computing the output",
}


def calibration_batches(predictor: Predictor, inputs: Sequence[str | Path]) -> list[np.ndarray]:
    """The batches ``predictor``'s network is given when it segments ``inputs`` (the pipeline's test-time copies,
    windows or slices), as ``float32`` arrays."""
    batches: list[np.ndarray] = []
    hook = predictor.network.register_forward_pre_hook(
        lambda module, args: batches.append(np.ascontiguousarray(args[0].detach().cpu().numpy(), dtype=np.float32))
    )
    try:
        for path in inputs:
            predictor.predict(predictor.load(path))
    finally:
        hook.remove()
    return batches


class _Batches:
    """``onnxruntime.quantization.CalibrationDataReader``'s interface over a list of batches."""

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter([{name: batch} for batch in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


#: Operators that only move or select values: the nodes between the last computing node and the output.
_DATA_MOVEMENT = {"Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Gather", "Pad"}


def _output_nodes(model: object) -> list[str]:
    """The nodes that compute the graph's outputs, back to the last one that computes (the output convolution):
    kept in full precision, since the output is thresholded (a logit quantized over its whole range, hundreds wide
    where the network is sure, loses its sign near 0)."""
    producer = {output: node for node in model.graph.node for output in node.output}
    names, pending = [], [output.name for output in model.graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in names:
            continue
        names.append(node.name)
        if node.op_type in _DATA_MOVEMENT and node.input:
            pending.append(node.input[0])
    return names


def quantize_onnx(onnx_file: str | Path, out: str | Path, calibration: Sequence[np.ndarray]) -> Path:
    """Write ``onnx_file`` quantized to 8 bits (:data:`QUANTIZATION`) to ``out``, its activation ranges calibrated on
    ``calibration`` (batches of the network's input, :func:`calibration_batches`); return ``out``.

    Raises:
        ExportError: naming the file, when ONNX Runtime's tools cannot quantize it or ONNX Runtime cannot run the
            result (nothing is written then).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    source, target = Path(onnx_file), Path(out)
    if not calibration:
        raise ExportError(f"{source}: no calibration batches to quantize it with")
    name = OnnxNetwork(source).input_name
    metadata = {entry.key: entry.value for entry in onnx.load(str(source), load_external_data=False).metadata_props}
    with tempfile.TemporaryDirectory(prefix="medseg-quantize-") as folder:
        prepared, quantized = Path(folder) / "prepared.onnx", Path(folder) / "quantized.onnx"
        try:
            # symbolic shape inference needs fixed spatial sizes; ONNX's own shape inference runs all the same
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared), str(quantized), _Batches(name, calibration), quant_format=QuantFormat.QDQ,
                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                nodes_to_exclude=_output_nodes(onnx.load(str(prepared))),
            )  # fmt: skip
        except Exception as error:  # the tools raise many classes
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ExportError(f"{source}: ONNX Runtime's quantization failed: {first[:300]}") from None
        model = onnx.load(str(quantized))
        kept = {**metadata, QUANTIZED_KEY: json.dumps(QUANTIZATION)}
        del model.metadata_props[:]
        for key, value in kept.items():
            model.metadata_props.add(key=key, value=value)
        stamp_graph(model)  # the quantized graph's own digest, in place of the export's

        def runs(temporary: Path) -> None:
            network = OnnxNetwork(temporary)
            try:
                network.session.run(None, {name: calibration[0]})
            except Exception as error:
                raise ExportError(f"{target}: ONNX Runtime cannot run the quantized network: {error}") from None

        with atomic_path(target, verify=runs) as temporary:
            onnx.save(model, str(temporary))
    return target
