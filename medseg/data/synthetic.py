"""Synthetic datasets written in the on-disk layouts of the real ones.

Each generator draws random, learnable anatomy (shapes, sizes and positions vary from case to case)
and writes it exactly as the public dataset is laid out, so that every adapter, transform, bundle
and script can be exercised end to end without downloading anything:

- :func:`make_luna16`: LUNA16 ``subset0/<seriesuid>.mhd/.raw`` CT volumes in Hounsfield units and
  ``seg-lungs-LUNA16/<seriesuid>.mhd`` masks with LUNA16's label values (3 left lung, 4 right lung,
  5 trachea), anisotropic spacing and a non-identity origin.
- :func:`make_cxr`: the Montgomery County chest X-ray layout, ``CXR_png/MCUCXR_NNNN_0.png`` with
  ``ManualMask/leftMask/`` and ``ManualMask/rightMask/``.
- :func:`make_lfw`: LFW Part Labels, ``lfw_funneled/<Person>/<Person>_NNNN.jpg`` and
  ``parts_lfw_funneled_gt_images/<Person>_NNNN.ppm`` (red hair, green skin, blue background) with
  the official ``parts_{train,validation,test}.txt`` split lists.
- :func:`make_dicom_ct`: one CT DICOM series per case written with pydicom, and the case's lung
  mask as NIfTI on the same grid.
- :func:`make_shenzhen`: the Shenzhen chest X-ray layout, ``CXR_png/CHNCXR_NNNN_D.png`` with
  ``masks/CHNCXR_NNNN_D_mask.png``.
- :func:`make_cxr_dicom`: a generic ``images/`` + ``masks/`` folder pair of single-frame DICOM
  radiographs (12-bit, Digital X-Ray storage) and PNG lung masks.
- :func:`make_helen`: HELEN's face-parsing layout, ``images/<id>.jpg`` with 11 soft label images
  ``labels/<id>/<id>_lblNN.png`` and the ``exemplars``/``tuning``/``testing`` split lists.

No library writes such phantoms, so this module is written from scratch on NumPy, SciPy,
SimpleITK, Pillow and pydicom. All generators are deterministic for a given ``seed``.

Patient orientation follows DICOM/LPS, as ITK reads LUNA16: array index ``x`` grows towards the
patient's left and ``y`` towards the patient's back, so the left lung lies at larger ``x``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.transforms.masks import HELEN_CLASSES, LFW_COLOURS, LUNA16_LABELS

__all__ = [
    "LFW_COLOURS",
    "LUNA16_LABELS",
    "SYNTH_TASKS",
    "ct_phantom",
    "make_cxr",
    "make_cxr_dicom",
    "make_dicom_ct",
    "make_helen",
    "make_lfw",
    "make_luna16",
    "make_shenzhen",
    "synthesize",
]

#: DICOM UID root of the LIDC/LUNA16 series UIDs, so synthetic series UIDs look like real ones.
LUNA16_UID_PREFIX = "1.3.6.1.4.1.14519.5.2.1.6279.6001."


# --------------------------------------------------------------------------------------------------
# shape primitives


def ellipse(
    shape: tuple[int, ...], center: tuple[float, ...], radii: tuple[float, ...], angle: float = 0.0
) -> np.ndarray:
    """Boolean mask of an ellipse (2D, rotated by ``angle`` radians) or an axis-aligned ellipsoid (3D).

    ``center`` and ``radii`` are in voxels, in the array's axis order.
    """
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    offsets = [g - c for g, c in zip(grids, center)]
    if len(shape) == 2 and angle:
        cos, sin = np.cos(angle), np.sin(angle)
        offsets = [cos * offsets[0] + sin * offsets[1], -sin * offsets[0] + cos * offsets[1]]
    return sum((o / r) ** 2 for o, r in zip(offsets, radii)) <= 1.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise low-pass filtered with ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-12)


# --------------------------------------------------------------------------------------------------
# CT phantom (shared by LUNA16 and DICOM)


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
    hu[inner] = 40.0 + 15.0 * _smooth_noise(rng, shape, 2.0)[inner]  # soft tissue, mostly within 0..80

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
    hu[lungs] = -850.0 + 40.0 * _smooth_noise(rng, shape, 1.0)[lungs]
    vessels = lungs & (_smooth_noise(rng, shape, 1.2) > 2.2)
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
    hu[bone] = rng.uniform(400, 700) + 500 * np.clip(_smooth_noise(rng, shape, 1.0)[bone], 0, 1.6)

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


def _series_uid(prefix: str, seed: int, *parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=prefix, entropy_srcs=[str(seed), *map(str, parts)]))


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
        uid = _series_uid(LUNA16_UID_PREFIX, seed, "luna16", case)
        scan = out / "subset0" / f"{uid}.mhd"
        sitk.WriteImage(_to_sitk(phantom.hu, phantom), str(scan))
        sitk.WriteImage(_to_sitk(phantom.labels, phantom), str(out / "seg-lungs-LUNA16" / f"{uid}.mhd"))
        scans.append(scan)
    return scans


# --------------------------------------------------------------------------------------------------
# DICOM CT series


def _write_dicom_series(series_dir: Path, phantom: CTPhantom, patient_id: str, seed: int) -> list[Path]:
    """Write ``phantom.hu`` as one CT Image Storage file per axial slice (uint16, intercept -1024)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_ROOT_UID, CTImageStorage, ExplicitVRLittleEndian

    series_dir.mkdir(parents=True, exist_ok=True)
    study_uid = _series_uid(PYDICOM_ROOT_UID, seed, patient_id, "study")
    series_uid = _series_uid(PYDICOM_ROOT_UID, seed, patient_id, "series")
    frame_uid = _series_uid(PYDICOM_ROOT_UID, seed, patient_id, "frame")
    sx, sy, sz = phantom.spacing
    ox, oy, oz = phantom.origin
    date = datetime.date(2020, 1, 1).strftime("%Y%m%d")
    paths = []
    for k, plane in enumerate(phantom.hu):
        sop_uid = _series_uid(PYDICOM_ROOT_UID, seed, patient_id, "sop", k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.PatientName, ds.PatientID = f"Synthetic^{patient_id}", patient_id
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
        ds.Modality, ds.Manufacturer, ds.BodyPartExamined = "CT", "medseg synthetic", "CHEST"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [ox, oy, round(oz + k * sz, 4)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = round(oz + k * sz, 4)
        ds.PixelSpacing = [sy, sx]  # row spacing (between rows, i.e. along y), then column spacing
        ds.SliceThickness = ds.SpacingBetweenSlices = sz
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = -600, 1500
        ds.PixelData = (plane.astype(np.int32) + 1024).astype(np.uint16).tobytes()
        path = series_dir / f"IMG{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
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


# --------------------------------------------------------------------------------------------------
# chest X-ray (Montgomery layout)


def _cxr_case(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a radiograph (uint8) and the patient's left and right lung masks (bool)."""
    h, w = shape
    img = np.full(shape, 0.06)
    body = ellipse(shape, (h * rng.uniform(0.52, 0.6), w / 2), (h * 0.62, w * rng.uniform(0.42, 0.48)))
    img[body] = 0.55
    lungs = {}
    for side, name in ((-1, "right"), (1, "left")):  # radiological view: patient's right on image left
        cy = h * rng.uniform(0.40, 0.50)
        cx = w / 2 + side * w * rng.uniform(0.15, 0.21)
        ry, rx = h * rng.uniform(0.22, 0.31), w * rng.uniform(0.09, 0.14)
        lung = ellipse(shape, (cy, cx), (ry, rx), side * rng.uniform(0.0, 0.25))
        lung |= ellipse(
            shape, (cy + ry * 0.35, cx + side * rx * 0.15), (ry * 0.7, rx * 1.12), side * rng.uniform(-0.1, 0.2)
        )
        lungs[name] = lung & body
    heart = ellipse(
        shape,
        (h * rng.uniform(0.62, 0.7), w * rng.uniform(0.52, 0.58)),
        (h * rng.uniform(0.1, 0.15), w * rng.uniform(0.1, 0.15)),
    )
    lungs["left"] &= ~heart
    both = lungs["left"] | lungs["right"]
    rows = np.arange(h)[:, None] / h
    # lungs darken towards the apex and brighten towards the diaphragm, with vessel markings
    img[both] = (rng.uniform(0.22, 0.34) + 0.15 * rows * np.ones((1, w)))[both]
    img += 0.05 * _smooth_noise(rng, shape, 2.0) * both
    ribs = np.sin(
        rows * np.pi * rng.uniform(16, 24) + rng.uniform(0, np.pi) + 0.8 * np.abs(np.arange(w)[None, :] / w - 0.5)
    )
    thorax = ndimage.binary_dilation(both, iterations=max(1, int(w * 0.05))) & body
    img += rng.uniform(0.06, 0.12) * (ribs > 0.3) * thorax
    img[heart & body] = rng.uniform(0.5, 0.62)
    spine = (np.abs(np.arange(w)[None, :] - w / 2) < w * 0.035) & body
    img[spine] = 0.7
    img = ndimage.gaussian_filter(img, rng.uniform(1.0, 2.5))
    img += 0.08 * _smooth_noise(rng, shape, min(h, w) / 6) + rng.normal(0, 0.035, shape)  # bias field, noise
    img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)  # exposure differs between radiographs
    return (img * 255).astype(np.uint8), lungs["left"], lungs["right"]


def make_cxr(out_dir: str | Path, n: int = 8, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` chest radiographs in the Montgomery layout; return the image paths.

    Layout: ``CXR_png/MCUCXR_NNNN_0.png`` (8-bit grey, height and width drawn in ``size``) with the
    patient's left and right lungs in ``ManualMask/leftMask/`` and ``ManualMask/rightMask/`` under
    the same file name (0 background, 255 lung).
    """
    from PIL import Image

    out = Path(out_dir)
    dirs = {
        name: out / sub
        for name, sub in (("image", "CXR_png"), ("left", "ManualMask/leftMask"), ("right", "ManualMask/rightMask"))
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for case in range(n):
        shape = (int(rng.integers(size[0], size[1] + 1)), int(rng.integers(size[0] - 32, size[1] - 31)))
        img, left, right = _cxr_case(rng, shape)
        name = f"MCUCXR_{case:04d}_0.png"
        Image.fromarray(img, mode="L").save(dirs["image"] / name)
        Image.fromarray(left.astype(np.uint8) * 255, mode="L").save(dirs["left"] / name)
        Image.fromarray(right.astype(np.uint8) * 255, mode="L").save(dirs["right"] / name)
        images.append(dirs["image"] / name)
    return images


def _cxr_shape(rng: np.random.Generator, size: tuple[int, int]) -> tuple[int, int]:
    return int(rng.integers(size[0], size[1] + 1)), int(rng.integers(size[0] - 32, size[1] - 31))


def make_shenzhen(out_dir: str | Path, n: int = 8, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` chest radiographs in the Shenzhen layout; return the image paths.

    Layout: ``CXR_png/CHNCXR_NNNN_D.png`` (8-bit grey; D is 0 for normal, 1 for abnormal) with one
    mask of both lungs (0/255) per image in ``masks/CHNCXR_NNNN_D_mask.png``.
    """
    from PIL import Image

    out = Path(out_dir)
    (out / "CXR_png").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for case in range(n):
        img, left, right = _cxr_case(rng, _cxr_shape(rng, size))
        stem = f"CHNCXR_{case + 1:04d}_{int(rng.random() < 0.5)}"
        Image.fromarray(img, mode="L").save(out / "CXR_png" / f"{stem}.png")
        Image.fromarray((left | right).astype(np.uint8) * 255, mode="L").save(out / "masks" / f"{stem}_mask.png")
        images.append(out / "CXR_png" / f"{stem}.png")
    return images


def make_cxr_dicom(out_dir: str | Path, n: int = 4, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` single-frame DICOM chest radiographs and PNG lung masks; return the image paths.

    Layout: ``images/CXR_NNNN.dcm`` (Digital X-Ray Image Storage, MONOCHROME2, 12 bits stored in
    16, values 0-4095) and ``masks/CXR_NNNN.png`` (both lungs, 0/255) of the same size.
    """
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_ROOT_UID, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for case in range(n):
        img, left, right = _cxr_case(rng, _cxr_shape(rng, size))
        stem = f"CXR_{case:04d}"
        sop_uid = _series_uid(PYDICOM_ROOT_UID, seed, "cxr", case)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = DigitalXRayImageStorageForPresentation, sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = DigitalXRayImageStorageForPresentation, sop_uid
        ds.PatientID, ds.PatientName, ds.Modality = f"SYNTH{seed:03d}{case:03d}", f"Synthetic^{case}", "DX"
        ds.StudyInstanceUID = _series_uid(PYDICOM_ROOT_UID, seed, "cxr-study", case)
        ds.SeriesInstanceUID = _series_uid(PYDICOM_ROOT_UID, seed, "cxr-series", case)
        ds.Rows, ds.Columns = img.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.ImagerPixelSpacing = ds.PixelSpacing = [0.35, 0.35]
        ds.PixelData = (img.astype(np.uint16) * 16 + rng.integers(0, 16, img.shape, dtype=np.uint16)).tobytes()
        ds.save_as(out / "images" / f"{stem}.dcm", enforce_file_format=True)
        Image.fromarray((left | right).astype(np.uint8) * 255, mode="L").save(out / "masks" / f"{stem}.png")
        images.append(out / "images" / f"{stem}.dcm")
    return images


# --------------------------------------------------------------------------------------------------
# faces (LFW Part Labels layout)

_FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Radia",
    "Ken",
    "Margaret",
    "Tim",
]


def _lfw_case(
    rng: np.random.Generator, size: int = 250
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Draw a face photo (RGB uint8), its class map (0 background, 1 skin, 2 hair) and the face ellipse (cy, cx, ry, rx)."""
    shape = (size, size)
    rows, cols = np.mgrid[0:size, 0:size] / size
    bg = rng.uniform(30, 220, 3)
    img = (
        bg[None, None]
        + 40 * (rows[..., None] - 0.5) * rng.uniform(-1, 1, 3)
        + 10 * _smooth_noise(rng, shape, 6)[..., None]
    )
    cy, cx = size * rng.uniform(0.46, 0.54), size * rng.uniform(0.45, 0.55)
    fy, fx = size * rng.uniform(0.20, 0.26), size * rng.uniform(0.15, 0.19)
    face = ellipse(shape, (cy, cx), (fy, fx), rng.uniform(-0.15, 0.15))
    neck = (np.abs(cols * size - cx) < fx * 0.55) & (rows * size > cy) & (rows * size < cy + fy * 1.6)
    shirt = rows * size > cy + fy * 1.45
    classes = np.zeros(shape, np.uint8)
    if rng.random() > 0.15:  # a few faces have no hair, as in LFW
        hair = ellipse(
            shape, (cy - fy * rng.uniform(0.15, 0.3), cx), (fy * rng.uniform(1.05, 1.2), fx * rng.uniform(1.15, 1.35))
        )
        hair &= rows * size < cy + fy * rng.uniform(-0.2, 0.4)
        classes[hair] = 2
        hair_colour = rng.choice([[25, 20, 18], [80, 50, 30], [200, 170, 110], [150, 150, 150]]) + rng.normal(0, 8, 3)
        img[hair] = hair_colour + 15 * _smooth_noise(rng, shape, 1.0)[hair][:, None]
    skin = face | neck
    classes[skin] = 1
    tone = rng.choice([[240, 200, 170], [200, 150, 110], [140, 95, 65], [95, 65, 45]]) + rng.normal(0, 8, 3)
    img[skin] = tone * (1 - 0.15 * rows[skin][:, None])
    shirt &= ~skin & ~(classes == 2)
    img[shirt] = rng.uniform(10, 240, 3)
    for dx in (-0.4, 0.4):  # eyes and mouth are part of the face class
        img[ellipse(shape, (cy - fy * 0.2, cx + dx * fx), (fy * 0.06, fx * 0.16))] = 40
    img[ellipse(shape, (cy + fy * 0.45, cx), (fy * 0.07, fx * 0.35))] = (150, 60, 60)
    img = ndimage.gaussian_filter(img, (1.0, 1.0, 0)) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), classes, (cy, cx, fy, fx)


def make_lfw(out_dir: str | Path, n: int = 12, seed: int = 0) -> list[Path]:
    """Write ``n`` faces in the LFW Part Labels layout; return the image paths.

    Layout: ``lfw_funneled/<Person>/<Person>_NNNN.jpg`` (250x250 RGB),
    ``parts_lfw_funneled_gt_images/<Person>_NNNN.ppm`` ((255,0,0) hair, (0,255,0) skin,
    (0,0,255) background) and the official split lists ``parts_train.txt``,
    ``parts_validation.txt`` and ``parts_test.txt`` (one ``<Person> <number>`` a line, about
    60/20/20 %).
    """
    from PIL import Image

    out = Path(out_dir)
    gt_dir = out / "parts_lfw_funneled_gt_images"
    gt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = np.array([LFW_COLOURS["background"], LFW_COLOURS["skin"], LFW_COLOURS["hair"]], np.uint8)
    counts: dict[str, int] = {}
    entries, images = [], []
    for case in range(n):
        person = f"{_FIRST_NAMES[case % len(_FIRST_NAMES)]}_Synth{case // len(_FIRST_NAMES) + 2 * (case % 3)}"
        counts[person] = number = counts.get(person, 0) + 1
        stem = f"{person}_{number:04d}"
        img, classes, _ = _lfw_case(rng)
        (out / "lfw_funneled" / person).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="RGB").save(out / "lfw_funneled" / person / f"{stem}.jpg", quality=92)
        Image.fromarray(palette[classes], mode="RGB").save(gt_dir / f"{stem}.ppm")
        entries.append(f"{person} {number}")
        images.append(out / "lfw_funneled" / person / f"{stem}.jpg")
    n_train, n_val = round(0.6 * n), round(0.2 * n)
    splits = {
        "train": entries[:n_train],
        "validation": entries[n_train : n_train + n_val],
        "test": entries[n_train + n_val :],
    }
    for split, lines in splits.items():
        (out / f"parts_{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    return images


def _helen_classes(
    rng: np.random.Generator, classes: np.ndarray, face: tuple[float, float, float, float]
) -> np.ndarray:
    """HELEN class map (see ``HELEN_CLASSES``) from a face's skin/hair map: brows, eyes, nose and lips drawn on the skin."""
    cy, cx, fy, fx = face
    shape = classes.shape
    helen = np.zeros(shape, np.uint8)
    helen[classes == 1] = HELEN_CLASSES.index("face_skin")
    helen[classes == 2] = HELEN_CLASSES.index("hair")
    # the subject's left is on the image's right
    for side, brow, eye in ((1, "left_eyebrow", "left_eye"), (-1, "right_eyebrow", "right_eye")):
        x = cx + side * 0.4 * fx
        helen[ellipse(shape, (cy - fy * rng.uniform(0.36, 0.42), x), (fy * 0.05, fx * 0.2))] = HELEN_CLASSES.index(brow)
        helen[ellipse(shape, (cy - fy * 0.2, x), (fy * 0.07, fx * 0.16))] = HELEN_CLASSES.index(eye)
    helen[ellipse(shape, (cy + fy * 0.1, cx), (fy * 0.17, fx * 0.1))] = HELEN_CLASSES.index("nose")
    mouth_y, mouth_rx = cy + fy * 0.45, fx * rng.uniform(0.3, 0.4)
    helen[ellipse(shape, (mouth_y - fy * 0.04, cx), (fy * 0.05, mouth_rx))] = HELEN_CLASSES.index("upper_lip")
    helen[ellipse(shape, (mouth_y + fy * 0.05, cx), (fy * 0.06, mouth_rx * 0.9))] = HELEN_CLASSES.index("lower_lip")
    helen[ellipse(shape, (mouth_y, cx), (fy * 0.02, mouth_rx * 0.8))] = HELEN_CLASSES.index("inner_mouth")
    return helen


def make_helen(out_dir: str | Path, n: int = 6, seed: int = 0, sizes: tuple[int, int] = (200, 300)) -> list[Path]:
    """Write ``n`` faces in HELEN's face-parsing layout (Smith et al. 2013); return the image paths.

    Layout: ``images/<photo>_<face>.jpg`` (RGB, square, side drawn in ``sizes``), one soft label
    image per class ``labels/<id>/<id>_lbl00.png ... _lbl10.png`` (grey levels 0-255, anti-aliased
    edges, so that the class of a pixel is the argmax over the 11 images), and the split lists
    ``exemplars.txt``, ``tuning.txt``, ``testing.txt`` (``<n> , <id>`` lines, about 60/20/20 %).
    """
    from PIL import Image

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids, images = [], []
    for case in range(n):
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        img, classes, face = _lfw_case(rng, size)
        helen = _helen_classes(rng, classes, face)
        face_id = f"{int(rng.integers(10**8, 10**9))}_{case % 3 + 1}"
        Image.fromarray(img, mode="RGB").save(out / "images" / f"{face_id}.jpg", quality=92)
        (out / "labels" / face_id).mkdir(parents=True, exist_ok=True)
        for c in range(len(HELEN_CLASSES)):
            soft = ndimage.gaussian_filter((helen == c).astype(float), 0.8) * 255
            Image.fromarray(np.round(soft).astype(np.uint8), mode="L").save(
                out / "labels" / face_id / f"{face_id}_lbl{c:02d}.png"
            )
        ids.append(face_id)
        images.append(out / "images" / f"{face_id}.jpg")
    n_train, n_val = round(0.6 * n), round(0.2 * n)
    lists = {
        "exemplars.txt": ids[:n_train],
        "tuning.txt": ids[n_train : n_train + n_val],
        "testing.txt": ids[n_train + n_val :],
    }
    for name, members in lists.items():
        (out / name).write_text("".join(f"{i + 1} , {face_id}\n" for i, face_id in enumerate(members)))
    return images


# --------------------------------------------------------------------------------------------------

#: ``medseg synth --task`` names and their generators.
SYNTH_TASKS: dict[str, Callable[..., list[Path]]] = {
    "luna16": make_luna16,
    "cxr": make_cxr,
    "lfw": make_lfw,
    "dicom-ct": make_dicom_ct,
    "shenzhen": make_shenzhen,
    "cxr-dicom": make_cxr_dicom,
    "helen": make_helen,
}


def synthesize(task: str, out_dir: str | Path, n: int, seed: int = 0) -> list[Path]:
    """Write ``n`` synthetic cases of ``task`` (one of :data:`SYNTH_TASKS`) under ``out_dir``."""
    if task not in SYNTH_TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; choose one of {sorted(SYNTH_TASKS)}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return SYNTH_TASKS[task](out_dir, n=n, seed=seed)
