"""Weights stored in half precision: a shipped model's files half as large, computing in single precision as before.

- :func:`half_precision_checkpoint`: a state dict with its ``float32`` tensors stored as ``float16`` (its settings
  stamp kept); :func:`medseg.inference.read_state_dict` gives them back as ``float32``, so that the network computes
  as it did, with weights rounded to half precision. Whether the masks stay the same is the caller's to measure
  (``scripts/ship_model.py`` keeps it only when the golden masks do).
- :func:`half_precision_initializers`: an ONNX file's ``float32`` weights that are exact ``float16`` values (those of
  a network exported from a half-precision checkpoint) stored as ``float16``, each read through a ``Cast`` to
  ``float32``, which ONNX Runtime folds into a constant when the session starts: the same graph, the same outputs,
  half the bytes. It is lossless by construction, and checked: ONNX Runtime's outputs of both files on a random
  batch must be equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medseg.files import atomic_path
from medseg.inference import OnnxNetwork, read_state_dict
from medseg.inference.onnx_network import stamp_graph

from .onnx import ExportError

__all__ = ["half_precision_checkpoint", "half_precision_initializers"]

#: Suffix of the name of an initializer stored in half precision, before its ``Cast``.
HALF_SUFFIX = "__float16"


def half_precision_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write ``checkpoint``'s state dict to ``out`` with each ``float32`` tensor stored as ``float16``; other tensors
    (integer counters) and the state dict's metadata (the settings stamp) as they are. Return ``out``.

    Raises:
        CheckpointError: for a file :func:`medseg.inference.read_state_dict` refuses.
    """
    state = read_state_dict(checkpoint)
    for name, value in state.items():  # in place: the metadata stays
        if value.dtype == torch.float32:
            state[name] = value.to(torch.float16)
    with atomic_path(out) as temporary:
        torch.save(state, temporary)
    return Path(out)


def _exact_half(array: np.ndarray) -> bool:
    return array.dtype == np.float32 and np.array_equal(array.astype(np.float16).astype(np.float32), array)


def half_precision_initializers(onnx_file: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite ``onnx_file`` (into ``out``, default in place) with each ``float32`` initializer whose values are all
    exact ``float16`` numbers stored as ``float16`` behind a ``Cast`` to ``float32`` (its old name); metadata kept,
    the graph's digest recorded anew. Return the path written.

    Raises:
        ExportError: when ONNX Runtime's outputs of the rewritten file differ from the original's (nothing is
            written then).
    """
    import onnx
    from onnx import helper, numpy_helper

    source, target = Path(onnx_file), Path(out or onnx_file)
    model = onnx.load(str(source))
    graph = model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        array = numpy_helper.to_array(initializer)
        if not (_exact_half(array) and array.size > 1):
            kept.append(initializer)
            continue
        name = initializer.name + HALF_SUFFIX
        kept.append(numpy_helper.from_array(array.astype(np.float16), name))
        casts.append(helper.make_node("Cast", [name], [initializer.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    _check_same(source, model, target)
    stamp_graph(model)  # its graph changed: the digest of the new one
    with atomic_path(target) as temporary:
        onnx.save(model, str(temporary))
    return target


def _check_same(source: Path, model: object, target: Path) -> None:
    """Refuse the rewritten ``model`` unless ONNX Runtime gives exactly ``source``'s outputs on a random batch."""
    import onnxruntime

    reference = OnnxNetwork(source)
    declared = reference.session.get_inputs()[0].shape  # (batch, channels, *spatial): ints, or names where dynamic
    recorded = (reference.stamp or {}).get("settings", {}).get("spatial_size") or [64] * (len(declared) - 2)
    spatial = [size if isinstance(size, int) else fallback for size, fallback in zip(declared[2:], recorded)]
    batch = np.random.default_rng(0).standard_normal([2, declared[1], *spatial]).astype(np.float32)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    rewritten = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (expected,) = reference.session.run(None, {reference.input_name: batch})
    (got,) = rewritten.run(None, {reference.input_name: batch})
    if not np.array_equal(expected, got):
        raise ExportError(
            f"{target}: its half-precision initializers change ONNX Runtime's outputs (by up to "
            f"{float(np.abs(expected - got).max()):.2g}): were the weights not half-precision values?"
        )
