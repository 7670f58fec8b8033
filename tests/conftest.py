"""Shared fixtures: the real data beside the repository and cached synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import shared_data_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests using it skip, saying where it was looked for, when it is absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set MEDSEG_SHARED_DATA to its folder)")
    return root


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """``synthetic(task, n=..., seed=..., **options)`` writes a synthetic dataset once per session and returns its
    root (``options`` go to the generator, e.g. ``shape`` for LUNA16)."""
    from medseg.tasks import synthesize

    cache: dict[tuple, Path] = {}

    def make(task: str, n: int = 4, seed: int = 0, **options) -> Path:
        key = (task, n, seed, *sorted(options.items()))
        if key not in cache:
            root = tmp_path_factory.mktemp(f"synth-{task}-{n}-{seed}")
            synthesize(task, root, n=n, seed=seed, **options)
            cache[key] = root
        return cache[key]

    return make


@pytest.fixture(scope="session")
def real_data(shared_data):
    """``real_data(name)``: a real data folder (``cxr_openist``, ``lfw_parts``, ``ct_cip``), or a skip naming it."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_dir():
            pytest.skip(f"real data subset {name} not found at {path}")
        return path

    return get
