"""What ``medseg infer`` writes for a case, each file through :func:`medseg.files.atomic_path`.

- ``<case>_seg.nii.gz``: the mask (uint8, 1 = foreground) with exactly the input's geometry (size, spacing, origin,
  direction; :meth:`Geometry.of_file`: a NIfTI's by the NIfTI rule, a photograph's as displayed): a mask that
  overlays on the input in 3D Slicer, ITK-SNAP or a PACS;
- ``<case>_prob.nii.gz``: the foreground probability (float32), same geometry;
- ``<case>_seg.dcm``: a DICOM Segmentation (highdicom) referencing the source images' Study, Series and SOP
  Instance UIDs and Frame of Reference, for DICOM inputs;
- ``<case>_overlay.png``: the image with the mask's outline; three orthogonal middle slices for a volume.

An image is read back before it takes its name (complete, of the input's size): on a full disk ITK writes a short
file without raising.

Array order: medseg's readers (MONAI) give images as (x, y[, z]); SimpleITK's arrays are (z, y, x), so masks are
transposed on the way out.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.dicom import SeriesInfo, is_dicom_file
from medseg.files import IncompleteWriteError, atomic_path
from medseg.transforms import ImageFileError, check_volume_file, displayed_size, nifti_geometry

__all__ = [
    "LABEL_COLOURS",
    "MAX_CONTOURS",
    "DicomSegError",
    "Geometry",
    "segment_concept",
    "write_dicom_seg",
    "write_image",
    "write_overlay",
    "write_rtstruct",
]

#: Type 2 attributes of the patient and study modules a DICOM SEG copies from its sources: present, possibly empty.
#: Sources often lack them (radiographs without a birth date, anonymised files); they are filled in empty.
SEG_TYPE_2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip
#: What a DICOM SEG must reference in each source: without one of these it cannot be made.
SEG_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
#: The most contours an RT Structure Set is written with (all its ROIs and slices): rt-utils takes about a
#: millisecond a contour; a lung mask has a few a slice, a mask in thousands of pieces (noise) tens of thousands.
MAX_CONTOURS = 10_000


class DicomSegError(ValueError):
    """A DICOM SEG that cannot be made from its sources; the message names the file and the attribute."""


@dataclass(frozen=True)
class Geometry:
    """The grid of an input image as medseg reads it: size (x, y[, z]), spacing, origin, direction, and whether the
    spacing is physical (mm) or a pixel's 1 (a PNG or JPEG, a DICOM image without a pixel spacing)."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    physical: bool = True

    @classmethod
    def of_file(cls, path: str | Path) -> Geometry:
        """The grid of an image file from its header (no pixel data read).

        A PNG, JPEG or BMP, read with Pillow as displayed (:func:`medseg.transforms.displayed`: turned by its EXIF
        orientation), has its displayed size and pixels of 1, not physical (a DPI is a printing resolution). Other
        files are SimpleITK's header, a NIfTI's on the grid of the NIfTI rule (:func:`medseg.transforms.nifti_geometry`:
        the sform when its code is above 0), and a DICOM image's spacing is physical when it comes from its
        ``PixelSpacing`` or ``ImagerPixelSpacing`` (:func:`_dicom_spacing_is_physical`).
        """
        path = Path(path)
        if path.suffix.lower() in PICTURE_SUFFIXES and not is_dicom_file(path):
            return cls(displayed_size(path), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0), physical=False)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        spacing, origin, direction = reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()
        nifti = nifti_geometry(path)
        if nifti is not None:
            spacing, origin, direction = nifti[0], nifti[1], tuple(float(v) for v in nifti[2].ravel())
        physical = _dicom_spacing_is_physical(path, spacing) if is_dicom_file(path) else True
        return cls(reader.GetSize(), spacing, origin, direction, physical)

    @classmethod
    def of_series(cls, series: SeriesInfo) -> Geometry:
        """The grid of a checked DICOM series, as SimpleITK's series reader builds it from the slices.

        SimpleITK (GDCM) spaces the slices evenly by the distance from the first to the last over the gaps, which
        can differ from the median gap in the last digits when the scanner rounds positions.
        """
        row, column = np.asarray(series.orientation[:3]), np.asarray(series.orientation[3:])
        normal = np.cross(row, column)
        direction = np.stack([row, column, normal], axis=1)  # columns: the x, y and z axes in patient space
        positions = series.positions
        z = (positions[-1] - positions[0]) / (len(positions) - 1) if len(positions) > 1 else series.spacing[2]
        spacing = (*series.spacing[:2], float(z))
        return cls(series.size, spacing, series.origin, tuple(float(v) for v in direction.ravel()))

    @property
    def voxel_volume(self) -> float:
        """mm³ per voxel (mm² per pixel for a 2D image; 1 where the spacing is not :attr:`physical`)."""
        return float(np.prod(self.spacing))

    def image(self, array: np.ndarray, components: bool = False) -> sitk.Image:
        """``array`` in medseg's (x, y[, z]) order as a SimpleITK image on this grid; with ``components``, an array
        with one more, first, axis (the probabilities of several labels) as a vector image of as many components."""
        array = np.asarray(array)
        values = np.moveaxis(array, 0, -1) if components else array[..., None]  # components last, as SimpleITK has
        if values.ndim - 1 == len(self.size) - 1 and self.size[-1] == 1:  # a 2D result for a one-slice 3D header
            values = values[..., None, :]
        if tuple(values.shape[:-1]) != tuple(self.size):
            raise ValueError(f"result of shape {tuple(array.shape)} does not fit the input's grid {tuple(self.size)}")
        spatial = list(range(values.ndim - 1))[::-1]
        values = values.transpose(*spatial, values.ndim - 1)
        image = sitk.GetImageFromArray(
            np.ascontiguousarray(values if components else values[..., 0]), isVector=components
        )
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


#: Files read with Pillow (:func:`medseg.transforms.image_readers_2d`), which carry no physical spacing.
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _dicom_spacing_is_physical(path: Path, spacing: Sequence[float]) -> bool:
    """Whether the in-plane spacing SimpleITK reads from a DICOM file is one of its pixel spacings (``PixelSpacing``,
    ``ImagerPixelSpacing``: row then column spacing), rather than the 1 it gives a file without one it takes."""
    import pydicom

    dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PixelSpacing", "ImagerPixelSpacing"])
    found = [dataset.get(keyword) for keyword in ("PixelSpacing", "ImagerPixelSpacing")]
    return any(
        value is not None and len(value) == 2 and np.allclose([value[1], value[0]], spacing[:2], rtol=1e-4)
        for value in found
    )


def _squeezed(size: Sequence[int]) -> tuple[int, ...]:
    """``size`` without its trailing axes of one voxel."""
    size = tuple(size)
    while len(size) > 2 and size[-1] == 1:
        size = size[:-1]
    return size


def _written(path: Path, geometry: Geometry) -> None:
    """Raise :class:`medseg.files.IncompleteWriteError` unless ``path`` holds a complete image of ``geometry``'s size:
    ITK reports a short write (a full disk) without raising, and reads a truncated file without complaint."""
    try:
        check_volume_file(path)
        written = Geometry.of_file(path)
    except (ImageFileError, RuntimeError) as error:
        raise IncompleteWriteError(f"the file written is incomplete: {error} (is the disk full?)") from None
    if _squeezed(written.size) != _squeezed(geometry.size):  # a vector NIfTI of one slice reads back 2D
        raise IncompleteWriteError(f"the file written holds {written.size}, not {geometry.size} (is the disk full?)")


def write_image(array: np.ndarray, geometry: Geometry, path: Path, components: bool = False) -> Path:
    """``array`` on ``geometry`` to ``path`` (NIfTI, NRRD, ...), compressed, atomically, read back before it takes
    its name; ``components``: the first axis of ``array`` as the components of a vector image."""
    with atomic_path(path, verify=lambda temporary: _written(temporary, geometry)) as temporary:
        sitk.WriteImage(geometry.image(array, components), str(temporary), useCompression=True)
    return path


def write_dicom_seg(
    mask: np.ndarray,
    sources: Sequence[Path],
    path: Path,
    labels: Sequence[str] = ("foreground",),
    fractional: bool = False,
) -> Path:
    """A binary DICOM Segmentation of ``mask`` (medseg's (x, y[, z]) order; a label map, values 1 to
    ``len(labels)``) over the ``sources`` (slice order), one segment per label, named after it and coded by its
    concept where SNOMED CT has one (:func:`segment_concept`: lung, left and right lung, lesion, hair, skin, face);
    or with ``fractional`` a FRACTIONAL one (type PROBABILITY) of probabilities in [0, 1] (one map, or one per class
    with the background first for several labels), which highdicom stores in 255 steps.

    The frames follow the source images one to one; highdicom copies the patient and study, and references
    each source image's SOP Instance UID and the Frame of Reference. Patient and study attributes of type 2 that a
    source lacks are written empty, as the standard allows.

    Raises:
        DicomSegError: when a source lacks what the SEG must reference (its SOP Class, its UIDs), or highdicom
            refuses the sources; the message names the file and the attribute.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    datasets = [_seg_source(pydicom.dcmread(source), source) for source in sources]
    values = np.asarray(mask)
    if fractional:  # one probability map per segment, segments last
        maps = values[1:] if len(labels) > 1 else values[None]
        frames = np.clip(np.moveaxis(maps, 0, -1).astype(np.float32), 0, 1)
    else:
        frames = np.stack([values == value for value in range(1, len(labels) + 1)], axis=-1)
    frames = frames[..., None, :] if frames.ndim == 3 else frames  # (x, y, z, segments)
    frames = np.ascontiguousarray(frames.transpose(2, 1, 0, 3))  # (slices, rows, columns, segments)
    if frames.shape[0] != len(datasets):
        raise ValueError(f"mask of {frames.shape[0]} slice(s) for {len(datasets)} source image(s)")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="medseg", version="0.1", family=codes.DCM.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=segment_concept(label)[0],
            segmented_property_type=segment_concept(label)[1],
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, label in enumerate(labels, start=1)
    ]
    try:
        segmentation = _segmentation(hd, datasets, frames if fractional else frames.astype(np.uint8), descriptions,
                                     fractional)  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError) as error:  # highdicom's checks of the sources
        raise DicomSegError(f"{sources[0]}: no DICOM SEG: highdicom refused the sources ({error})") from None
    with atomic_path(path, verify=_readable_dicom) as temporary:
        segmentation.save_as(temporary)
    return path


def segment_concept(label: str) -> tuple:
    """The SNOMED CT (category, type) of a label's segment: its own concept where there is one (lung, left and right
    lung, lesion, hair, skin, face), else a generic organ."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    concepts = {
        "lungs": (codes.SCT.Organ, codes.SCT.Lung),
        "lung": (codes.SCT.Organ, codes.SCT.Lung),
        "left_lung": (codes.SCT.Organ, Code("44029006", "SCT", "Left lung")),
        "right_lung": (codes.SCT.Organ, Code("3341006", "SCT", "Right lung")),
        "lesion": (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.SkinLesion),
        "hair": (codes.SCT.AnatomicalStructure, codes.SCT.Hair),
        "skin": (codes.SCT.AnatomicalStructure, codes.SCT.Skin),
        "face": (codes.SCT.AnatomicalStructure, codes.SCT.Face),
    }
    return concepts.get(label, (codes.SCT.Organ, codes.SCT.Organ))


def write_rtstruct(
    mask: np.ndarray, sources: Sequence[Path], path: Path, labels: Sequence[str] = ("foreground",)
) -> Path:
    """An RT Structure Set of ``mask`` (medseg's (x, y, z) order, one slice per source in ``sources``' order; a label
    map, values 1 to ``len(labels)``) with the contours of each slice on its source image, one ROI per label named
    after it, for planning systems that read contours, not SEGs.

    rt-utils draws the contours (OpenCV's ``findContours``: the centres of the border pixels, holes as contours
    of their own) and fills the RT Structure Set's references to the study, the series and each image; it reads
    the series from a folder, so the sources are linked into a temporary one.

    Each slice's contours are placed on its own image by its SOP Instance UID, so the sources must have them, all
    distinct, and a Study, Series and Frame of Reference UID: an anonymised series whose UIDs were emptied is
    refused, as the DICOM SEG refuses it (made up UIDs would reference images that do not exist, and one empty UID
    shared by every slice would put one slice's contours on all). A mask in more than :data:`MAX_CONTOURS`
    contours (noise, a mask of thousands of pieces) is refused at once: rt-utils takes about a millisecond per
    contour, minutes for such a mask, and a planning system cannot use it.

    Raises:
        DicomSegError: for sources that are not one DICOM image series (one file: a radiograph has no planes to
            contour on), that lack a UID or share one, for a mask of more than :data:`MAX_CONTOURS` contours, or for
            sources that rt-utils refuses; the message names the file.
    """
    from rt_utils import RTStructBuilder

    frames = np.asarray(mask)
    if frames.ndim != 3 or len(sources) < 2:
        raise DicomSegError(f"{sources[0]}: no RT Structure Set: it contours a series of slices, not one image")
    if frames.shape[-1] != len(sources):
        raise ValueError(f"mask of {frames.shape[-1]} slice(s) for {len(sources)} source image(s)")
    uids = _rtstruct_references(sources)
    _check_contour_count(frames, len(labels), sources[0])
    by_uid = {uid: frames[..., index].T for index, uid in enumerate(uids)}  # (rows, columns)
    with tempfile.TemporaryDirectory(prefix=".rtstruct.") as folder:
        for index, source in enumerate(sources):
            os.symlink(Path(source).resolve(), Path(folder) / f"{index:05d}.dcm")
        try:
            structure = RTStructBuilder.create_new(dicom_series_path=folder)
            ordered = np.stack([by_uid[image.SOPInstanceUID] for image in structure.series_data], axis=-1)
            for value, (label, colour) in enumerate(zip(labels, LABEL_COLOURS), start=1):
                if (ordered == value).any():
                    structure.add_roi(mask=ordered == value, name=label, color=_rgb(colour), approximate_contours=False)
        except Exception as error:  # rt-utils raises plain Exceptions for what it cannot use
            raise DicomSegError(f"{sources[0]}: no RT Structure Set: rt-utils refused the series ({error})") from None
    structure.ds.SeriesDescription = "medseg contours"
    with atomic_path(path, verify=_readable_dicom) as temporary:
        structure.ds.save_as(temporary, enforce_file_format=True)
    return path


def _rtstruct_references(sources: Sequence[Path]) -> list[str]:
    """The SOP Instance UID of each source, once every source has the UIDs an RT Structure Set references and no two
    share an image's; else a :class:`DicomSegError` naming the file and the UID."""
    import pydicom

    uids: list[str] = []
    seen: dict[str, Path] = {}
    for source in sources:
        dataset = pydicom.dcmread(source, stop_before_pixels=True)
        for keyword in (*SEG_REQUIRED, "FrameOfReferenceUID"):
            if not str(getattr(dataset, keyword, "") or "").strip():
                raise DicomSegError(
                    f"{source}: no RT Structure Set: the source has no {keyword} for the contours to reference "
                    "(anonymised? the mask is written as NIfTI)"
                )
        uid = str(dataset.SOPInstanceUID).strip()
        if uid in seen:
            raise DicomSegError(
                f"{source}: no RT Structure Set: its SOPInstanceUID {uid} is also {seen[uid]}'s, so the contours of "
                "one slice could not be told from another's"
            )
        seen[uid] = source
        uids.append(uid)
    return uids


def _check_contour_count(frames: np.ndarray, labels: int, source: Path) -> None:
    """Raise :class:`DicomSegError` when the label map ``frames`` (x, y, z) has more than :data:`MAX_CONTOURS`
    contours, counted as rt-utils finds them (OpenCV's ``findContours``, every border and every hole)."""
    import cv2

    counts = np.zeros(frames.shape[-1], dtype=np.int64)
    for value in range(1, labels + 1):
        for index in range(frames.shape[-1]):
            plane = np.ascontiguousarray(frames[..., index].T == value, dtype=np.uint8)
            if plane.any():
                counts[index] += len(cv2.findContours(plane, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)[0])
    if counts.sum() > MAX_CONTOURS:
        worst = int(np.argmax(counts))
        raise DicomSegError(
            f"{source}: no RT Structure Set: the mask has {counts.sum():,} contours ({counts[worst]:,} on slice "
            f"{worst + 1}), more than the {MAX_CONTOURS:,} an RT Structure Set is written with (a mask in so many "
            "pieces is not a structure to plan on, and writing it takes minutes); the NIfTI mask and the DICOM SEG "
            "hold it"
        )


def _seg_source(dataset, path: Path):
    """``dataset`` with the type 2 attributes a DICOM SEG copies filled in empty where missing; a
    :class:`DicomSegError` naming the attribute when it lacks one the SEG must reference."""
    for keyword in SEG_REQUIRED:
        if not str(getattr(dataset, keyword, "") or "").strip():
            raise DicomSegError(f"{path}: no DICOM SEG: the source has no {keyword} for the SEG to reference")
    for keyword in SEG_TYPE_2:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def _readable_dicom(path: Path) -> None:
    import pydicom

    try:
        pydicom.dcmread(path)
    except Exception as error:
        raise IncompleteWriteError(f"the DICOM SEG written cannot be read back: {error} (is the disk full?)") from None


def _pixel_measures(hd, dataset):
    """The SEG's pixel measures for a projection image (a radiograph has pixel spacing but no slice thickness,
    without which highdicom writes a SEG it cannot read back): its spacing, a nominal thickness of 1 mm; ``None``
    (taken from the source) for a slice of a volume."""
    if "SliceThickness" in dataset:
        return None
    spacing = getattr(dataset, "PixelSpacing", None) or getattr(dataset, "ImagerPixelSpacing", None)
    if spacing is None:
        return None
    return hd.PixelMeasuresSequence(pixel_spacing=[float(s) for s in spacing], slice_thickness=1.0)


def _segmentation(hd, datasets: list, frames: np.ndarray, descriptions: list, fractional: bool = False):
    """highdicom's binary (or fractional, probability) Segmentation of ``frames`` (slices, rows, columns, segments)
    over ``datasets``."""
    kind = hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
    extra = {"fractional_type": hd.seg.SegmentationFractionalTypeValues.PROBABILITY} if fractional else {}
    return hd.seg.Segmentation(
        pixel_measures=_pixel_measures(hd, datasets[0]),
        source_images=datasets,
        pixel_array=frames,
        segmentation_type=kind,
        **extra,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medseg",
        manufacturer_model_name="medseg infer",
        software_versions="0.1",
        device_serial_number="0",
    )


#: The colours of the labels' outlines (overlays) and contours (RT Structure Sets), in label order.
LABEL_COLOURS = ("red", "deepskyblue", "yellow", "lime", "magenta", "orange", "cyan", "white")


def _rgb(colour: str) -> list[int]:
    import matplotlib.colors

    return [round(255 * channel) for channel in matplotlib.colors.to_rgb(colour)]


def _outline(axis, mask: np.ndarray, labels: Sequence[str]) -> None:
    for value, colour in zip(range(1, len(labels) + 1), LABEL_COLOURS):
        label = mask == value
        if label.any() and not label.all():
            axis.contour(label, levels=[0.5], colors=colour, linewidths=0.8)


def write_overlay(
    image: np.ndarray, mask: np.ndarray, path: Path, title: str = "", labels: Sequence[str] = ("foreground",)
) -> Path:
    """The image (grey, or RGB for three channels first) with the outline of the mask (a label map: one colour per
    label, :data:`LABEL_COLOURS`, with a legend when there are several), as a PNG; for a volume, its three middle
    planes. ``image`` is channel-first in medseg's (x, y[, z]) order, ``mask`` (x, y[, z])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    image = np.asarray(image, dtype=np.float32)
    planes = []
    if mask.ndim == 2:
        picture = np.moveaxis(image, 0, -1) if image.shape[0] == 3 else image[0]
        planes.append(("", np.swapaxes(picture, 0, 1), mask.T))
    else:
        volume = image[0]
        x, y, z = (s // 2 for s in mask.shape)
        planes = [
            ("axial", volume[:, :, z].T, mask[:, :, z].T),
            ("coronal", volume[:, y, :].T[::-1], mask[:, y, :].T[::-1]),
            ("sagittal", volume[x, :, :].T[::-1], mask[x, :, :].T[::-1]),
        ]
    fig, axes = plt.subplots(1, len(planes), figsize=(4 * len(planes), 4.2), squeeze=False)
    for axis, (name, picture, outline) in zip(axes[0], planes):
        low, high = np.percentile(picture, [1, 99]) if picture.ndim == 2 else (0.0, 1.0)
        axis.imshow(np.clip((picture - low) / max(high - low, 1e-6), 0, 1), cmap="gray")
        _outline(axis, outline, labels)
        axis.set_title(name)
        axis.set_axis_off()
    if len(labels) > 1:
        handles = [Line2D([0], [0], color=colour, lw=2) for colour in LABEL_COLOURS[: len(labels)]]
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if len(labels) > 1 else 0, 1, 1))
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=100)
    plt.close(fig)
    return path
