"""SliceDataset: axial slices cut from cached volumes, each volume file read once, empty slices skipped for training."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import DataLoader, ITKReader

from medseg.data import SliceDataset, SliceSampler, luna16_datalist
from medseg.tasks import get_task, prepare_datalist
from medseg.transforms import segcaps_augmentation


@pytest.fixture()
def reads(monkeypatch) -> Counter:
    """Counts the files ITK reads (every CT volume and mask goes through ``ITKReader.read``)."""
    counter: Counter = Counter()
    original = ITKReader.read

    def spy(self, data, **kwargs):
        for name in (data,) if isinstance(data, (str, Path)) else data:
            counter[str(name)] += 1
        return original(self, data, **kwargs)

    monkeypatch.setattr(ITKReader, "read", spy)
    return counter


@pytest.fixture(scope="module")
def luna16(synthetic):
    root = synthetic("luna16", n=2)
    datalist = luna16_datalist(root)
    references = []
    for entry in datalist:  # independent reference: SimpleITK arrays (z, y, x)
        hu = sitk.GetArrayFromImage(sitk.ReadImage(entry["image"])).astype(float)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(entry["label"]))
        references.append(((np.clip(hu, -1024, 3072) + 1024) / 4096, np.isin(labels, (3, 4))))
    return datalist, references


def test_each_volume_file_is_read_once(luna16, reads):
    datalist, _ = luna16
    dataset = SliceDataset(datalist, get_task("luna16").pair_transforms(None))
    for _ in range(2):  # two epochs
        for index in range(len(dataset)):
            dataset[index]
    names = [e[k] for e in datalist for k in ("image", "label")]
    assert reads == Counter(names) and set(reads.values()) == {1}


def test_training_slices_skip_empty_masks_testing_keeps_all(luna16):
    datalist, references = luna16
    train = SliceDataset(datalist, get_task("luna16").pair_transforms(None))
    test = SliceDataset(datalist, get_task("luna16").pair_transforms(None), skip_empty=False)
    lungs_per_slice = [mask.any(axis=(1, 2)) for _, mask in references]
    assert len(train) == sum(int(s.sum()) for s in lungs_per_slice)
    assert len(test) == sum(len(s) for s in lungs_per_slice)
    assert sum(s.all() for s in lungs_per_slice) == 0  # the phantoms have slices without lungs
    for dataset in (train, test):
        for index in np.linspace(0, len(dataset) - 1, 7).astype(int):
            item = dataset[int(index)]
            volume = next(i for i, e in enumerate(datalist) if e["case"] == item["case"])
            hu, mask = references[volume]
            z = item["slice"]
            assert item["image"].shape == item["label"].shape == (1, hu.shape[2], hu.shape[1])  # (x, y)
            np.testing.assert_allclose(item["image"][0].numpy(), hu[z].T, atol=1e-6)
            np.testing.assert_array_equal(item["label"][0].numpy(), mask[z].T)
            if dataset is train:
                assert item["label"].sum() > 0


def test_slice_affine_is_the_in_plane_grid(luna16):
    datalist, _ = luna16
    dataset = SliceDataset(datalist[:1], get_task("luna16").pair_transforms(None), skip_empty=False)
    scan = sitk.ReadImage(datalist[0]["image"])
    origin, spacing = np.array(scan.GetOrigin()), np.array(scan.GetSpacing())
    item = dataset[7]
    assert item["slice"] == 7
    # a 2D (x, y) affine; MONAI stores RAS, so x and y of ITK's LPS geometry are negated
    expected = np.array([[-spacing[0], 0, -origin[0]], [0, -spacing[1], -origin[1]], [0, 0, 1]])
    np.testing.assert_allclose(np.asarray(item["image"].affine), expected, atol=1e-4)
    np.testing.assert_allclose(np.asarray(item["label"].affine), expected, atol=1e-4)


def test_prepared_datalist_spares_the_indexing_pass_and_a_bounded_cache_reads_once_per_epoch(
    synthetic, tmp_path, reads
):
    root = synthetic("luna16", n=3, seed=2)
    entries = prepare_datalist("luna16", root, tmp_path / "luna16.json", n_folds=0).datalist
    reads.clear()
    dataset = SliceDataset(entries, get_task("luna16").pair_transforms(None), cache_size=1)
    assert not reads  # slice indices came from the datalist
    assert len(dataset) == sum(len(e["foreground_slices"]) for e in entries)
    sampler = SliceSampler(dataset, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(len(dataset)))
    volumes = [dataset.index[i][0] for i in order]
    assert sum(a != b for a, b in itertools.pairwise(volumes)) == 2  # volumes visited one after another
    for index in order:
        dataset[index]
    assert set(reads.values()) == {1} and len(reads) == 6
    sampler.set_epoch(1)
    assert list(sampler) != order
    # the volumes' slice lists (of different lengths) stay out of the items, so that slices batch together
    assert len({len(e["foreground_slices"]) for e in entries}) > 1
    batch = next(iter(DataLoader(dataset, batch_size=len(dataset), sampler=sampler)))
    assert batch["image"].shape[0] == len(dataset) and "foreground_slices" not in batch


def test_slices_feed_the_augmentation_and_a_data_loader(luna16):
    datalist, _ = luna16
    dataset = SliceDataset(datalist, get_task("luna16").pair_transforms(None), transform=segcaps_augmentation((96, 96)))
    batch = next(iter(DataLoader(dataset, batch_size=4, shuffle=True)))
    assert batch["image"].shape == (4, 1, 96, 96) and batch["label"].dtype == torch.float32
    assert set(torch.unique(batch["label"]).tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        SliceDataset(datalist, get_task("luna16").pair_transforms(None), cache_size=0)
