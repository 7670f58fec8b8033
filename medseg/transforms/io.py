"""Image loading with explicitly chosen MONAI readers.

MONAI's ``LoadImage`` always instantiates its default reader list, whose optional nvImageCodec DICOM
reader warns (twice) on machines without that library, even when the caller names the readers.
:func:`load_imaged` builds a ``LoadImaged`` with the given readers, silencing only that notice.
Readers named by the caller are tried last-to-first, so ``(PILReader(), PydicomReader())`` reads
DICOM files with pydicom, which rejects any other file at once (no ``DICM`` preamble), and PNG/JPEG
with Pillow (which, tried first, would warn about a DICOM file's "EXIF data" before failing).

A file that cannot be read is described, not left to MONAI's generic "cannot find a suitable reader":
:class:`CheckedLoadImaged` (which :func:`load_imaged` builds) raises :class:`ImageFileError` saying "empty file",
"truncated PNG image", "not an image: ..." (:mod:`medseg.transforms.file_checks`), or
:class:`medseg.dicom.DicomError` for a broken DICOM file or series. :class:`VolumeReader` checks a DICOM series
folder before ITK reads it (:func:`medseg.dicom.check_dicom_series`) and has ITK read exactly the checked files:
MONAI's ``ITKReader`` lets GDCM leave out a slice it cannot parse (a truncated file gives a volume one slice short,
without an error). A volume file is checked to be complete first (:func:`check_volume_file`): ITK reads a
``.nii.gz`` cut short without an error, zero-filling what is missing.

What is read: images as displayed (:func:`displayed`: the EXIF orientation) in the colours shown (:func:`colours`),
grey DICOM images through the DICOM display pipeline (:class:`RadiographReader`), NIfTI volumes on the grid of the
NIfTI rule (:mod:`medseg.transforms.nifti`).

Axis convention: ``PILReader`` (``reverse_indexing=True``), ``PydicomReader`` (``swap_ij=True``) and
``ITKReader`` (``reverse_indexing=True``) all return spatial axes as (x, y[, z]), i.e. the transpose
of the (row, column) arrays of Pillow, pydicom and SimpleITK, so images and masks read by different
readers stay aligned.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import itk
import numpy as np
import torch
from monai.config import KeysCollection, PathLike
from monai.data import ImageReader, ITKReader, PILReader, PydicomReader
from monai.transforms import LoadImaged
from monai.utils import ensure_tuple
from PIL import ExifTags, Image, ImageOps

from medseg.dicom import DicomError, check_dicom_series

from .file_checks import ImageFileError, check_image_file, check_volume_file
from .nifti import nifti_geometry

__all__ = [
    "CheckedLoadImaged",
    "RadiographReader",
    "VolumeReader",
    "colours",
    "display_range",
    "displayed",
    "displayed_size",
    "grey_levels",
    "image_readers_2d",
    "load_imaged",
    "mask_reader_2d",
    "volume_reader",
]


class RadiographReader(PydicomReader):
    """MONAI's ``PydicomReader`` for single 2D DICOM images: grey images as the DICOM display pipeline shows them,
    colour images (a photograph or dermoscopy image stored as DICOM) with their samples as channels.

    MONAI's reader applies only the rescale (``RescaleSlope``/``RescaleIntercept``). This reader extends it with the
    rest of the grey-scale pipeline of PS3.4 (N.2), through pydicom: the modality LUT (:func:`apply_modality_lut`:
    the rescale, or a Modality LUT Sequence), the VOI LUT (:func:`apply_voi_lut`: a VOI LUT Sequence, or the first
    ``WindowCenter``/``WindowWidth``, so that a narrow window is shown as the file asks), then, for ``MONOCHROME1``
    (lowest value shown white, common for computed radiography), the inversion over the pipeline's output range
    (:func:`display_range`: the stored bit range, ``BitsStored``, through the rescale; a LUT's own range), not over
    the image's own minimum and maximum, which would brighten an under-exposed film. The grey levels shown black and
    white are recorded as ``meta["grey_range"]`` for :class:`~medseg.transforms.ScaleGreyLevels`: the output range when
    a VOI LUT applies or at most 8 bits are stored, else the image's own range (12- and 16-bit films without a
    window, whose bits stored vary by device, as before).

    MONAI's reader returns a colour image's ``(x, y, 3)`` samples without saying that the last axis is channels
    (so it reads as a volume of three slices); this reader says so, as ``PILReader`` does for a JPEG.
    """

    def _get_array_data(self, img, filename):
        if int(getattr(img, "SamplesPerPixel", 1)) > 1 or "PixelData" not in img:
            return super()._get_array_data(img, filename)
        from pydicom.pixels import apply_modality_lut, apply_voi_lut

        shown = apply_voi_lut(apply_modality_lut(img.pixel_array, img), img)
        if img.get("PhotometricInterpretation") == "MONOCHROME1":
            low, high = display_range(img)
            shown = low + high - shown
        return np.asarray(shown, dtype=np.float32)

    def get_data(self, data) -> tuple[np.ndarray, dict]:
        array, meta = super().get_data(data)
        datasets = data if isinstance(data, (list, tuple)) else [data]
        if any(int(getattr(ds, "SamplesPerPixel", 1)) > 1 for ds in datasets):
            meta["original_channel_dim"] = -1
            meta["spatial_shape"] = np.asarray(array.shape[:-1])
        elif len(datasets) == 1:
            ds = datasets[0]
            windowed = "VOILUTSequence" in ds or "WindowCenter" in ds
            if windowed or int(getattr(ds, "BitsStored", 8)) <= 8:
                meta["grey_range"] = np.asarray(display_range(ds), dtype=np.float64)
            else:
                meta["grey_range"] = np.asarray([array.min(), array.max()], dtype=np.float64)
        return array, meta


def display_range(ds) -> tuple[float, float]:
    """The range of grey levels a grey DICOM image's display pipeline puts out, as pydicom's ``apply_windowing``
    defines it: a VOI LUT Sequence's (``0 .. 2**bits - 1``, ``bits`` its descriptor's third value), else a Modality
    LUT Sequence's, else the stored bit range (``BitsStored``, signed or not) through the rescale."""
    for sequence in ("VOILUTSequence", "ModalityLUTSequence"):
        if sequence in ds:
            return 0.0, float(2 ** int(ds[sequence][0].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    low, high = (0, 2**bits - 1) if int(ds.PixelRepresentation) == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def itk_message(error: BaseException, limit: int = 240) -> str:
    """What an ITK exception says, on one line: without the source file and line ITK puts first and the
    ``itk::ERROR: Class(0x...):`` prefix; of a stack of NRRD (teem) messages, the innermost, which names the
    problem."""
    import re

    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not re.match(r"^/\S+\.(cxx|h|hxx|cpp):\d+:?$", line)]
    lines = [re.sub(r"^(itk::|ITK )ERROR: \w+\(0x[0-9a-f]+\):\s*", "", line) for line in lines]
    teem = [line for line in lines if line.startswith("[")]
    text = " ".join([lines[0], teem[-1]] if teem and lines[0] != teem[-1] else lines[:2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(error: BaseException, limit: int = 200) -> str:
    """An error message on one line, cut to ``limit`` characters (ITK's span several lines)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VolumeReader(ITKReader):
    """MONAI's ``ITKReader`` for volume files; a folder is a DICOM series, checked first and read in slice order.

    :func:`medseg.dicom.check_dicom_series` checks the folder (every file readable and complete, one series, one
    geometry, evenly spaced slices; a :class:`~medseg.dicom.DicomError` names the bad file) and ITK reads exactly
    the files it returns, in slice order, instead of the files GDCM's series grouping keeps. Should ITK still
    fail, each file is read alone to name the one it cannot read. ``series_name`` does not apply (a folder holds
    one series). A file is checked to be complete first (:func:`check_volume_file`). A NIfTI file gets the grid of
    the NIfTI rule, the sform when its code is above 0 (:mod:`medseg.transforms.nifti`), where ITK takes the qform.
    """

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs):
        names = ensure_tuple(data)
        images = []
        for name in names:  # a loop: super() without arguments fails inside a comprehension before Python 3.12
            if Path(name).is_dir():
                images.append(self._read_series(name, **kwargs))
                continue
            check_volume_file(name)
            try:
                image = super().read(name, **kwargs)
            except RuntimeError as error:  # ITK's message starts with a line of its own source code
                raise ImageFileError(f"{name}: ITK cannot read it: {itk_message(error)}") from error
            images.append(_with_nifti_geometry(image, name))
        return images if len(names) > 1 else images[0]

    def _read_series(self, folder: PathLike, **kwargs):
        files = [str(path) for path in check_dicom_series(folder).files]
        kwargs = {**self.kwargs, **kwargs}
        try:
            return itk.imread(files if len(files) > 1 else files[0], **kwargs)
        except RuntimeError as error:  # a file pydicom accepts but GDCM does not: find it and name it
            for name in files:
                try:
                    itk.imread(name, **kwargs)
                except RuntimeError as file_error:
                    raise DicomError(f"{name}: ITK cannot read it: {itk_message(file_error)}") from error
            raise DicomError(f"{folder}: ITK cannot read the series: {itk_message(error)}") from error


def _with_nifti_geometry(image, path: PathLike):
    """The ITK image of ``path`` on the grid the NIfTI rule gives (:func:`~medseg.transforms.nifti.nifti_geometry`:
    the sform when its code is above 0, where ITK takes the qform); other files unchanged."""
    geometry = nifti_geometry(path)
    if geometry is not None:
        spacing, origin, direction = geometry
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(direction)))
    return image


class CheckedLoadImaged(LoadImaged):
    """MONAI's ``LoadImaged`` with only the readers it is given, saying what is wrong with a file it cannot read.

    MONAI's ``LoadImage`` registers its default readers before the given ones and falls back on them when the given
    ones fail: a DICOM series that :class:`VolumeReader` rejects would then be read by MONAI's own ``ITKReader``,
    one slice short. Here only the given readers are registered. With one reader, its own error propagates (MONAI
    folds it into "cannot find a suitable reader"); any other failure is described by :func:`check_image_file`
    (empty, truncated, not an image), chained to the original error, or re-raised as it is when the file shows
    nothing wrong. An image read with NaN or infinite values raises :class:`ImageFileError`.

    Args:
        keys: the keys to load.
        reader: the reader instance(s), tried last to first as MONAI does.
        kwargs: ``LoadImaged``'s other arguments.
    """

    def __init__(self, keys: KeysCollection, reader: ImageReader | Sequence[ImageReader], **kwargs) -> None:
        readers = list(ensure_tuple(reader))
        super().__init__(keys, reader=readers, **kwargs)
        self._loader.readers = readers

    def __call__(self, data, reader: ImageReader | None = None):
        readers = self._loader.readers
        if reader is None and len(readers) == 1:
            reader = readers[0]
        for key in self.key_iterator(dict(data)):
            for path in ensure_tuple(data[key]):
                _check_regular(path)
        try:
            loaded = super().__call__(data, reader)
        except (ImageFileError, DicomError):
            raise
        except Exception as error:
            for key in self.key_iterator(dict(data)):
                for path in ensure_tuple(data[key]):
                    try:
                        check_image_file(path)
                    except (ImageFileError, DicomError) as problem:
                        raise problem from error
            raise
        for key in self.key_iterator(loaded):
            _check_finite(loaded[key], data[key])
        return loaded


def _check_regular(path: PathLike) -> None:
    """Raise :class:`ImageFileError` for a path that is neither a file nor a folder (a FIFO would block a reader)."""
    if isinstance(path, (str, Path)) and Path(path).exists() and not (Path(path).is_file() or Path(path).is_dir()):
        raise ImageFileError(f"{path}: not a regular file (a FIFO, a socket or a device); it is not opened")


def _check_finite(array, source) -> None:
    """Raise :class:`ImageFileError` when a floating-point image holds NaN or infinite values (a network's output
    would then change silently)."""
    values = torch.as_tensor(array)
    if not values.is_floating_point():
        return
    bad = values.numel() - int(torch.isfinite(values).sum())
    if bad:
        raise ImageFileError(f"{source}: {bad} voxel(s) NaN or infinite of {values.numel()}; the image is refused")


def displayed(image: Image.Image) -> Image.Image:
    """A Pillow image as viewers display it: turned by its EXIF ``Orientation`` tag (Pillow's
    ``ImageOps.exif_transpose``; a camera or phone stores a photograph of a film sideways and tags how to turn it).
    The mask is then written on this displayed grid (:meth:`medseg.inference.Geometry.of_file` takes its size from
    :func:`displayed_size`)."""
    return ImageOps.exif_transpose(image)


def displayed_size(path: PathLike) -> tuple[int, int]:
    """The (width, height) of an image file as :func:`displayed` turns it, from its header: Pillow's size, swapped
    when the EXIF ``Orientation`` (Pillow's ``ExifTags.Base.Orientation``) is a transposition (5 to 8)."""
    with Image.open(path) as image:
        width, height = image.size
        turned = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def colours(image: Image.Image) -> Image.Image:
    """A Pillow image in the colours it shows, as displayed (:func:`displayed`): a palette image (mode ``P``, ``PA``:
    each pixel an index into a colour table) as RGB, CMYK (print JPEGs) as RGB by Pillow's conversion, grey with alpha
    (``LA``) and bilevel images (``1``: black and white) as 8-bit grey. MONAI's ``PILReader`` returns a palette image's
    indices, which a network would take for intensities, a CMYK image's four inks, whose first three would be taken for
    red, green and blue, and a bilevel image's 0 and 1 (``x / 255``: all black)."""
    image = displayed(image)
    if image.mode in ("P", "PA", "CMYK"):
        return image.convert("RGB")
    if image.mode in ("LA", "1"):
        return image.convert("L")
    return image


def grey_levels(image: Image.Image) -> Image.Image:
    """A Pillow image of a mask as 8-bit grey levels, as displayed (:func:`displayed`): a 1-bit image (0/1) as 0/255,
    colour or palette images by their luminance, so that PNG, JPEG and 1- or 24-bit BMP masks of one drawing read alike
    (16-bit images unchanged)."""
    image = displayed(image)
    return image if image.mode in ("L", "I", "I;16", "F") else image.convert("L")


def image_readers_2d() -> tuple[ImageReader, ...]:
    """Readers for 2D images: Pillow (PNG, JPEG, PPM; as displayed, in their colours: :func:`colours`), then
    pydicom (single-frame DICOM, through the display pipeline: :class:`RadiographReader`).

    ``LoadImage`` tries a given list of readers last first and logs each one that fails, so the common case
    (PNG, JPEG) is last in the list: it is read by the first reader tried. Masks keep their palette indices
    (:func:`mask_reader_2d`): in a palette label image the index is the label.
    """
    return (RadiographReader(), PILReader(converter=colours))


def mask_reader_2d(grey: bool = False) -> ImageReader:
    """Reader for 2D masks and label images (PNG, PPM, BMP, JPEG): Pillow, as displayed (:func:`displayed`, as their
    images are read); ``grey``: as 8-bit grey levels (:func:`grey_levels`), for binary masks stored in any of these
    formats."""
    return PILReader(converter=grey_levels if grey else displayed)


def volume_reader() -> ImageReader:
    """Reader for CT volumes (NIfTI, NRRD, MHA/MHD) and checked DICOM series folders: ITK, as SegCaps read LUNA16."""
    return VolumeReader()


def load_imaged(keys: KeysCollection, reader: ImageReader | Sequence[ImageReader], **kwargs) -> LoadImaged:
    """``CheckedLoadImaged(keys, reader, image_only=True, ensure_channel_first=True, **kwargs)``, built quietly.

    Only the construction is quiet: read errors still raise, naming the file and, where it can be told, the problem.
    """
    kwargs = {"image_only": True, "ensure_channel_first": True, **kwargs}
    plugin_logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
            return CheckedLoadImaged(keys, reader=reader, **kwargs)
    finally:
        plugin_logger.setLevel(level)
