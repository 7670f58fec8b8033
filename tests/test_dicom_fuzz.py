"""Fuzzing ``medseg prepare`` with mutants of the real DICOM series of ``ct_cip`` (:mod:`support.dicom_mutants`).

Every mutant (a deleted or wrong-VR header element, a truncated file, wrong Rows/Columns/BitsAllocated, a lying
transfer syntax, a slice of another series, a missing or moved slice) goes through ``medseg prepare`` in this
process. Each one must end in one of two ways:

- refused: exit status 1, the message names the mutated file (or, for a missing slice, its neighbours; for a
  missing end slice, the series folder, whose size then differs from its mask's), and nothing is written;
- accepted, only when the mutation leaves the series readable (``Mutant.must_fail`` false): the datalist is
  written and the volume read from the mutant equals, voxel for voxel and with the same affine, the original.

Never an uncaught exception. ``make test`` runs 100 mutants (about half a minute); ``MEDSEG_FUZZ_MUTANTS=N``
runs N, ``MEDSEG_FUZZ_SEED`` changes the draws, and ``MEDSEG_FUZZ_REPORT=path.json`` writes the counts. The
mutants start from a 20-slice run of the series (IMG0030-IMG0049, with the mask cut to the same slices), which
keeps a mutant to a fraction of a second.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.dicom_mutants import MUTATIONS, mutate_series

from medseg.cli import main
from medseg.transforms import ct_image_transforms

N_MUTANTS = int(os.environ.get("MEDSEG_FUZZ_MUTANTS", "100"))
SEED = int(os.environ.get("MEDSEG_FUZZ_SEED", "0"))
FIRST, LAST = 30, 49  # IMG0030.dcm ... IMG0049.dcm, slices 29 ... 48 of the mask

#: The failure a message describes (first match), for the counts.
ERROR_KINDS = {
    "ITK cannot read": r"ITK cannot read",
    "no pixel data": r"no PixelData",
    "pixel data size": r"pixel data of \d+ bytes|truncated pixel data",
    "transfer syntax": r"transfer syntax|not encoded as",
    "truncated file": r"truncated file",
    "missing slice": r"missing slice",
    "uneven spacing": r"uneven slice spacing",
    "same position": r"same slice position",
    "several series": r"series in one folder",
    "differs from the series": r"differs from the series",
    "missing element": r": no \w+",
    "invalid value": r"invalid \w+|value\(s\), expected|is not 1, 8|exceeds|outside the|not two orthogonal",
    "not DICOM": r"not a DICOM file",
    "unparsable DICOM": r"unreadable DICOM file",
    "size mismatch with the mask": r"size mismatch",
}


@pytest.fixture(scope="module")
def series(real_data, tmp_path_factory) -> Path:
    """A data root with IMG0030-IMG0049 of ``ct-64Dicom`` and the whole-lung mask cut to those slices."""
    source = real_data("ct_cip")
    root = tmp_path_factory.mktemp("fuzz-source")
    (root / "ct-64Dicom").mkdir()
    for k in range(FIRST, LAST + 1):
        shutil.copyfile(source / "ct-64Dicom" / f"IMG{k:04d}.dcm", root / "ct-64Dicom" / f"IMG{k:04d}.dcm")
    mask = sitk.ReadImage(str(source / "wholeLung-64.nrrd"))
    sitk.WriteImage(mask[:, :, FIRST - 1 : LAST], str(root / "wholeLung-64.nrrd"))
    return root


def _prepare(root: Path, out: Path) -> tuple[object, str]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["prepare", "--task", "ct", "--data-root", str(root), "--out", str(out), "--folds", "0",
                         "--image-pattern", "ct-{id}Dicom", "--mask-pattern", "wholeLung-{id}.nrrd"])  # fmt: skip
    except SystemExit as exit:
        code = exit.code
    except Exception as error:  # the one outcome that must never happen
        code = f"uncaught {type(error).__name__}: {error}"
    return code, err.getvalue()


def _error_kind(message: str) -> str:
    # past "medseg prepare: error: <root>: no valid ct pair among 1 found (<pair>: unreadable: ..."
    reason = message.split("unreadable: ", 1)[-1] if "unreadable: " in message else message.split(" found (", 1)[-1]
    return next((kind for kind, pattern in ERROR_KINDS.items() if re.search(pattern, reason)), "other")


@pytest.mark.slow
def test_mutated_real_series_through_prepare(series, tmp_path):
    reference = ct_image_transforms()({"image": str(series / "ct-64Dicom")})["image"]
    assert reference.shape == (1, 64, 64, LAST - FIRST + 1)
    outcomes: Counter = Counter()
    problems = []
    for index in range(N_MUTANTS):
        root = tmp_path / f"mutant{index}"
        root.mkdir()
        mutant = mutate_series(series / "ct-64Dicom", root / "ct-64Dicom", random.Random(f"{SEED}-{index}"))
        shutil.copyfile(series / "wholeLung-64.nrrd", root / "wholeLung-64.nrrd")
        out = tmp_path / f"out{index}" / "datalist.json"
        out.parent.mkdir()
        code, err = _prepare(root, out)
        what = f"mutant {index} ({mutant.detail})"
        if code == 0:
            outcomes[(mutant.kind, "accepted")] += 1
            image = ct_image_transforms()({"image": str(root / "ct-64Dicom")})["image"]
            if mutant.must_fail:
                problems.append(f"{what}: accepted")
            elif not (image.shape == reference.shape and bool((image == reference).all())) or not np.allclose(
                image.affine, reference.affine
            ):
                problems.append(f"{what}: accepted, but the volume differs from the original")
        elif code == 1:
            message = err.strip()
            outcomes[(mutant.kind, _error_kind(message))] += 1
            if len(message.splitlines()) != 1 or not any(name in message for name in mutant.names):
                problems.append(f"{what}: the message does not name {mutant.names}: {message!r}")
            if list(out.parent.iterdir()):
                problems.append(f"{what}: output left behind: {sorted(p.name for p in out.parent.iterdir())}")
        else:
            problems.append(f"{what}: exit {code}: {err!r}")
        shutil.rmtree(root)
    report = {
        "mutants": N_MUTANTS,
        "seed": SEED,
        "outcomes": {f"{kind}: {outcome}": count for (kind, outcome), count in sorted(outcomes.items())},
    }
    if os.environ.get("MEDSEG_FUZZ_REPORT"):
        path = Path(os.environ["MEDSEG_FUZZ_REPORT"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    assert not problems, "\n".join(problems)
    assert sum(outcomes.values()) == N_MUTANTS
    if N_MUTANTS >= 100:  # the seeded draw covers every mutation
        assert {kind for kind, _ in outcomes} == set(MUTATIONS)
