"""Building a bundle's training cache with one thread against ``cache_workers`` threads, side by side in one run.

Before the first epoch, MONAI's ``CacheDataset`` runs the deterministic part of the bundle's pre-processing
(reading, grey levels, area resampling to ``spatial_size``) once per image, in a pool of ``num_workers`` threads;
the bundles set it to their ``cache_workers`` (the CPU cores, at most 4). With full-size radiographs (Montgomery's
are 4020 x 4892) it takes about a second per radiograph on one thread. The script writes radiographs of that size in
the Montgomery layout (``medseg.data.synthetic.make_cxr`` at its own size, then enlarged with Pillow: bicubic for
the images, nearest neighbour for the masks; drawing them at full size is slow), takes the bundle's training
subset and pre-processing from its training configs, and builds the cache with 1 thread and with ``cache_workers``
threads, alternating, ``--rounds`` times each. It prints the median seconds per image of each and their ratio.

    python scripts/benchmark_caching.py [--cases 12] [--size 4892 4020] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from monai.data import CacheDataset
from PIL import Image

from medseg.bundle import read_config
from medseg.data.synthetic import make_cxr

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "cxr_lung_unet"


def full_size_radiographs(folder: Path, cases: int, size: tuple[int, int]) -> None:
    """``cases`` synthetic Montgomery-layout radiographs and masks in ``folder``, enlarged to ``size`` (h, w)."""
    make_cxr(folder, n=cases, seed=0)
    for path in folder.rglob("*.png"):
        resample = Image.Resampling.BICUBIC if path.parent.name == "CXR_png" else Image.Resampling.NEAREST
        Image.open(path).resize(size[::-1], resample).save(path)


def seconds_per_image(data: list[dict], transform, threads: int) -> float:
    """Seconds per image to build a ``CacheDataset`` of ``data`` with ``threads`` threads."""
    start = time.perf_counter()
    CacheDataset(data, transform, cache_rate=1.0, num_workers=threads, progress=False)
    return (time.perf_counter() - start) / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=12, help="synthetic radiographs (default 12)")
    parser.add_argument("--size", type=int, nargs=2, default=(4892, 4020), help="height and width")
    parser.add_argument("--rounds", type=int, default=2, help="cache builds of each (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        full_size_radiographs(Path(folder) / "data", args.cases, tuple(args.size))
        config = read_config(
            BUNDLE, "train", dataset_dir=str(Path(folder) / "data"), output_dir=str(Path(folder) / "out")
        )
        data = config.get_parsed_content("subsets")["train"]
        transform = config.get_parsed_content("train#preprocessing")
        workers = config.get_parsed_content("cache_workers")
        times: dict[int, list[float]] = {1: [], workers: []}
        for _ in range(args.rounds):
            for threads in times:
                times[threads].append(seconds_per_image(data, transform, threads))
    print(
        f"cxr_lung_unet: {len(data)} training radiographs, {args.size[1]} wide and {args.size[0]} tall, "
        f"{args.rounds} rounds"
    )
    print("\n| cache threads | median seconds per image | ratio to 1 thread |")
    print("|---:|---:|---:|")
    one = statistics.median(times[1])
    for threads, values in times.items():
        print(f"| {threads} | {statistics.median(values):.3f} | {statistics.median(values) / one:.2f} |")


if __name__ == "__main__":
    main()
