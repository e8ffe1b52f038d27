"""The image cache (hits, invalidation, damaged entries) and augmentation.

    .venv/bin/python -m pytest -q tests/unit/test_cache.py
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.common import SAMPLE_NORMAL, truncate
from study.config import TrainConfig
from study.data.cache import decode, load_or_build
from study.data.layout import load_split, scan_split, summarize
from study.data.splits import prepare
from study.errors import UserError

RES = 32  # px; small so every decode is cheap


# ---- the image cache -------------------------------------------------------------------------
def _train_paths(root: Path) -> list[Path]:
    return [it.path for it in scan_split(root, "train")[0]]


def test_cache_hit_returns_equal_arrays(root, cache):
    paths = _train_paths(root)
    first = load_or_build(paths, RES, "train", cache_dir=cache, progress=False)
    second = load_or_build(paths, RES, "train", cache_dir=cache, progress=False)
    assert first["built"] is True and second["built"] is False
    assert first["images"].shape == (7, RES, RES) and first["images"].dtype == np.uint8
    np.testing.assert_array_equal(first["images"], second["images"])
    np.testing.assert_array_equal(first["ok"], second["ok"])
    assert [tuple(s) for s in second["sizes"]] == [tuple(s) for s in first["sizes"]]
    assert second["errors"] == first["errors"] == [None] * 7
    assert len(list(cache.glob("*.npy"))) == 1


def test_cache_dir_from_env(root, tmp_path, monkeypatch):
    env_cache = tmp_path / "env-cache"
    monkeypatch.setenv("PNEUMONIA_CACHE", str(env_cache))
    split = load_split(root, "train", RES, progress=False)
    assert len(split.paths) == 7
    assert len(list(env_cache.glob(f"train-{RES}px-*.npy"))) == 1
    assert load_or_build(_train_paths(root), RES, "train", progress=False)["built"] is False


def test_cache_invalidation(root, cache):
    normal = root / "train" / "NORMAL"

    def load() -> dict:
        return load_or_build(_train_paths(root), RES, "train", cache_dir=cache, progress=False)

    assert load()["built"] is True
    assert load()["built"] is False

    # touch: same bytes, new mtime
    f = normal / "IM-0001-0001.jpeg"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert load()["built"] is True
    assert load()["built"] is False

    # new content (another real image in place of this one): rebuilt, and the arrays show it
    shutil.copyfile(SAMPLE_NORMAL[10], f)
    got = load()
    assert got["built"] is True
    i = _train_paths(root).index(f)
    np.testing.assert_array_equal(got["images"][i], decode(SAMPLE_NORMAL[10], RES)[0])
    assert load()["built"] is False

    # a file added
    added = normal / "IM-0040-0001.jpeg"
    shutil.copyfile(SAMPLE_NORMAL[11], added)
    got = load()
    assert got["built"] is True and got["images"].shape[0] == 8
    assert load()["built"] is False

    # a file removed
    added.unlink()
    got = load()
    # (the 7-file entry of before the touch is keyed by the old mtime; this is a fresh key)
    assert got["images"].shape[0] == 7
    assert load()["built"] is False

    # another resolution is another entry; the first stays valid
    other = load_or_build(_train_paths(root), RES * 2, "train", cache_dir=cache, progress=False)
    assert other["built"] is True and other["images"].shape == (7, 2 * RES, 2 * RES)
    assert load()["built"] is False


def test_removed_file_rebuilds(root, cache):
    paths = _train_paths(root)
    assert load_or_build(paths, RES, "train", cache_dir=cache, progress=False)["built"] is True
    paths[-1].unlink()
    got = load_or_build(_train_paths(root), RES, "train", cache_dir=cache, progress=False)
    assert got["built"] is True and got["images"].shape[0] == 6


def test_cached_skips_survive_a_cache_hit(root, cache):
    bad = root / "train" / "PNEUMONIA" / "person8_virus_8.jpeg"
    truncate(bad)
    first = summarize(root, RES, cache_dir=cache)
    again = summarize(root, RES, cache_dir=cache)
    assert again == first and len(first["skipped"]) == 1
    assert load_or_build(_train_paths(root), RES, "train", cache_dir=cache, progress=False)["built"] is False


# ---- robustness: damaged cache entries, too-small subsets ----------------------------------------
def test_half_written_cache_entry_is_rebuilt(root, cache):
    paths = _train_paths(root)
    load_or_build(paths, RES, "train", cache_dir=cache, progress=False)
    meta = next(cache.glob("*.json"))
    meta.write_text(meta.read_text()[:50])  # what a kill during write_text leaves
    got = load_or_build(paths, RES, "train", cache_dir=cache, progress=False)
    assert got["built"] is True and got["images"].shape == (7, RES, RES)


def test_too_small_max_train_images_is_a_user_error(cache):
    with pytest.raises(UserError):
        prepare(None, TrainConfig(resolution=RES, max_train_images=2), cache_dir=cache, progress=False)
