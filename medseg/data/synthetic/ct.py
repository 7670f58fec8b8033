"""Synthetic chest CT: a phantom in Hounsfield units with LUNA16 lung labels, as LUNA16 files or a DICOM series.

- :func:`make_luna16`: LUNA16 ``subset0/<seriesuid>.mhd/.raw`` CT volumes and ``seg-lungs-LUNA16/<seriesuid>.mhd``
  masks with LUNA16's label values (3 left lung, 4 right lung, 5 trachea), anisotropic spacing and a
  non-identity origin.
- :func:`make_dicom_ct`: one CT DICOM series per case and the case's lung mask as NIfTI on the same grid.

Patient orientation follows DICOM/LPS, as ITK reads LUNA16: array index ``x`` grows towards the patient's left
and ``y`` towards the patient's back, so the left lung lies at larger ``x``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.transforms.masks import LUNA16_LABELS

from .dicom import uid, write_dicom
from .shapes import ellipse, smooth_noise

__all__ = ["LUNA16_UID_PREFIX", "CTPhantom", "ct_phantom", "make_dicom_ct", "make_luna16"]

#: DICOM UID root of the LIDC/LUNA16 series UIDs, so synthetic series UIDs look like real ones.
LUNA16_UID_PREFIX = "1.3.6.1.4.1.14519.5.2.1.6279.6001."


@dataclass
class CTPhantom:
    """A synthetic chest CT: ``hu`` and ``labels`` are ``(z, y, x)`` arrays; geometry is ITK's (x, y, z)."""

    hu: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]


def ct_phantom(rng: np.random.Generator, shape: tuple[int, int, int] = (40, 96, 96)) -> CTPhantom:
    """Draw a chest CT volume in Hounsfield units with LUNA16-style lung labels.

    Air outside the body is -1000 HU, the body is soft tissue (0-80 HU) under a thin fat layer
    (about -100 HU), the lungs are around -850 HU with a few vessels, the trachea is air, and the
    spine and ribs are bone (400-1500 HU). ``labels`` holds 3 (left lung), 4 (right lung) and
    5 (trachea), as the LUNA16 lung masks do.
    """
    nz, ny, nx = shape
    zz = np.arange(nz)[:, None, None] / (nz - 1)
    body = np.zeros(shape, bool)
    body_ry, body_rx = ny * rng.uniform(0.30, 0.36), nx * rng.uniform(0.40, 0.46)
    body_cy = ny * rng.uniform(0.48, 0.54)
    body[:] = ellipse((ny, nx), (body_cy, nx / 2), (body_ry, body_rx))
    inner = np.broadcast_to(ellipse((ny, nx), (body_cy, nx / 2), (body_ry - 2.5, body_rx - 2.5)), shape)

    hu = np.full(shape, -1000.0)
    hu[body] = -100.0  # subcutaneous fat
    hu[inner] = 40.0 + 15.0 * smooth_noise(rng, shape, 2.0)[inner]  # soft tissue, mostly within 0..80

    labels = np.zeros(shape, np.uint8)
    apex = rng.uniform(0.10, 0.25)  # lung apex, as a fraction of the z extent from the top
    for side, label in ((-1, LUNA16_LABELS["right_lung"]), (1, LUNA16_LABELS["left_lung"])):
        cx = nx / 2 + side * body_rx * rng.uniform(0.42, 0.52)
        cy = body_cy - body_ry * rng.uniform(0.0, 0.12)
        rx, ry = body_rx * rng.uniform(0.28, 0.36), body_ry * rng.uniform(0.55, 0.75)
        # lungs widen from the apex down to the diaphragm dome; the dome differs per side
        base = rng.uniform(0.80, 0.95)
        taper = np.clip((zz - apex) / (base - apex), 0.0, 1.0) ** 0.5
        ys = np.arange(ny)[None, :, None]
        xs = np.arange(nx)[None, None, :]
        lung = ((ys - cy) / (ry * taper + 1e-6)) ** 2 + ((xs - cx) / (rx * taper + 1e-6)) ** 2 <= 1.0
        lung &= (zz >= apex) & (zz <= base) & inner
        labels[lung] = label
    lungs = labels > 0
    hu[lungs] = -850.0 + 40.0 * smooth_noise(rng, shape, 1.0)[lungs]
    vessels = lungs & (smooth_noise(rng, shape, 1.2) > 2.2)
    hu[vessels] = rng.uniform(-150, 40)

    # trachea: an air tube from the top of the volume down to just below the lung apices
    trachea_r = max(1.5, nx * rng.uniform(0.025, 0.035))
    trachea_y = body_cy - body_ry * rng.uniform(0.35, 0.45)
    tube = np.broadcast_to(ellipse((ny, nx), (trachea_y, nx / 2), (trachea_r, trachea_r)), shape)
    tube = tube & (zz <= apex + rng.uniform(0.05, 0.12))
    hu[tube] = -1000.0 + 15.0 * rng.standard_normal(int(tube.sum()))
    labels[tube] = LUNA16_LABELS["trachea"]

    # bone: a vertebral body behind the heart, and ribs as a broken ring inside the body wall
    spine_y = body_cy + body_ry * rng.uniform(0.55, 0.65)
    spine = np.broadcast_to(ellipse((ny, nx), (spine_y, nx / 2), (ny * 0.06, nx * 0.05)), shape)
    ribs_outer = ellipse((ny, nx), (body_cy, nx / 2), (body_ry - 3.0, body_rx - 3.0))
    ribs_inner = ellipse((ny, nx), (body_cy, nx / 2), (body_ry - 5.0, body_rx - 5.0))
    rib_slices = (np.sin(zz * np.pi * rng.uniform(8, 12)) > 0.3) & (zz > apex * 0.5)
    ribs = (ribs_outer & ~ribs_inner)[None] & rib_slices & ~spine
    bone = spine | ribs
    hu[bone] = rng.uniform(400, 700) + 500 * np.clip(smooth_noise(rng, shape, 1.0)[bone], 0, 1.6)

    hu += rng.normal(0.0, 12.0, shape)  # scanner noise
    hu = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    spacing = (round(rng.uniform(2.6, 3.0), 4),) * 2 + (round(rng.uniform(4.5, 6.0), 4),)
    origin = tuple(
        round(float(v), 3)
        for v in (
            -nx * spacing[0] / 2 + rng.uniform(-20, 20),
            -ny * spacing[1] / 2 + rng.uniform(-40, 0),
            rng.uniform(-350, -150),
        )
    )
    return CTPhantom(hu=hu, labels=labels, spacing=spacing, origin=origin)


def _to_sitk(array: np.ndarray, phantom: CTPhantom):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(phantom.spacing)
    image.SetOrigin(phantom.origin)
    return image


def make_luna16(
    out_dir: str | Path, n: int = 2, seed: int = 0, shape: tuple[int, int, int] = (40, 96, 96)
) -> list[Path]:
    """Write ``n`` LUNA16-style scans and lung masks; return the written scan paths.

    Layout: ``subset0/<seriesuid>.mhd`` (+ ``.raw``, int16 HU) and ``seg-lungs-LUNA16/<seriesuid>.mhd``
    (uint8, 3 left lung, 4 right lung, 5 trachea) on the same grid.
    """
    import SimpleITK as sitk

    out = Path(out_dir)
    (out / "subset0").mkdir(parents=True, exist_ok=True)
    (out / "seg-lungs-LUNA16").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scans = []
    for case in range(n):
        phantom = ct_phantom(rng, shape)
        series_uid = uid(LUNA16_UID_PREFIX, seed, "luna16", case)
        scan = out / "subset0" / f"{series_uid}.mhd"
        sitk.WriteImage(_to_sitk(phantom.hu, phantom), str(scan))
        sitk.WriteImage(_to_sitk(phantom.labels, phantom), str(out / "seg-lungs-LUNA16" / f"{series_uid}.mhd"))
        scans.append(scan)
    return scans


def _write_dicom_series(series_dir: Path, phantom: CTPhantom, patient_id: str, seed: int) -> list[Path]:
    """Write ``phantom.hu`` as one CT Image Storage file per axial slice (uint16, intercept -1024)."""
    from pydicom.uid import PYDICOM_ROOT_UID, CTImageStorage

    series_dir.mkdir(parents=True, exist_ok=True)
    sx, sy, sz = phantom.spacing
    ox, oy, oz = phantom.origin
    date = datetime.date(2020, 1, 1).strftime("%Y%m%d")
    series = {
        "PatientName": f"Synthetic^{patient_id}",
        "PatientID": patient_id,
        "StudyInstanceUID": uid(PYDICOM_ROOT_UID, seed, patient_id, "study"),
        "SeriesInstanceUID": uid(PYDICOM_ROOT_UID, seed, patient_id, "series"),
        "FrameOfReferenceUID": uid(PYDICOM_ROOT_UID, seed, patient_id, "frame"),
        "StudyDate": date,
        "SeriesDate": date,
        "ContentDate": date,
        "StudyID": "1",
        "SeriesNumber": 1,
        "Modality": "CT",
        "Manufacturer": "medseg synthetic",
        "BodyPartExamined": "CHEST",
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "PatientPosition": "HFS",
        "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
        "PixelSpacing": [sy, sx],  # row spacing (between rows, i.e. along y), then column spacing
        "SliceThickness": sz,
        "SpacingBetweenSlices": sz,
        "RescaleIntercept": -1024,
        "RescaleSlope": 1,
        "RescaleType": "HU",
        "WindowCenter": -600,
        "WindowWidth": 1500,
    }
    paths = []
    for k, plane in enumerate(phantom.hu):
        z = round(oz + k * sz, 4)
        path = write_dicom(
            series_dir / f"IMG{k + 1:04d}.dcm",
            plane.astype(np.int32) + 1024,
            CTImageStorage,
            uid(PYDICOM_ROOT_UID, seed, patient_id, "sop", k),
            bits_stored=16,
            InstanceNumber=k + 1,
            ImagePositionPatient=[ox, oy, z],
            SliceLocation=z,
            **series,
        )
        paths.append(path)
    return paths


def make_dicom_ct(
    out_dir: str | Path, n: int = 1, seed: int = 0, shape: tuple[int, int, int] = (32, 64, 64)
) -> list[Path]:
    """Write ``n`` CT DICOM series and their lung masks; return the series folders.

    Layout: ``images/<case>/IMG0001.dcm ...`` (one series per folder, consistent Study/Series/Frame
    of Reference UIDs, ImagePositionPatient, PixelSpacing, SliceThickness, RescaleSlope/Intercept)
    and ``labels/<case>.nii.gz``, the lung mask (1 lungs, 0 elsewhere) on the same physical grid.
    """
    import SimpleITK as sitk

    out = Path(out_dir)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    series = []
    for case in range(n):
        name = f"case{case:03d}"
        phantom = ct_phantom(rng, shape)
        _write_dicom_series(out / "images" / name, phantom, patient_id=f"SYNTH{seed:03d}{case:03d}", seed=seed)
        lungs = np.isin(phantom.labels, [LUNA16_LABELS["left_lung"], LUNA16_LABELS["right_lung"]]).astype(np.uint8)
        sitk.WriteImage(_to_sitk(lungs, phantom), str(out / "labels" / f"{name}.nii.gz"))
        series.append(out / "images" / name)
    return series
