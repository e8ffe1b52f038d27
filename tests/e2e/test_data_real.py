"""The real data set (train + val, 224 px): counts and patient-level splits. Skipped with a reason
where ../shared/data/chest_xray (or $PNEUMONIA_REAL_DATA) is absent.

    .venv/bin/python -m pytest -q tests/e2e/test_data_real.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.common import counts
from study.config import TrainConfig
from study.data.layout import load_split, summarize
from study.data.splits import load_test, prepare

RES = 32  # px; small so every decode is cheap


# ---- the real data set (train + val, 224 px) -------------------------------------------------
@pytest.fixture(scope="module")
def real_train(real_root):
    """Decodes the real train set once per session at RES px (into the session cache)."""
    return load_split(real_root, "train", RES, progress=False)


@pytest.fixture(scope="module")
def real_default(real_root):
    """prepare() and load_test() with the default data fields (split_seed 0), once per module:
    each patient-level carve of the 5216 images takes a few seconds (StratifiedGroupKFold)."""
    cfg = _cfg()
    return cfg, prepare(real_root, cfg, progress=False), load_test(real_root, cfg)


def _cfg(**kw) -> TrainConfig:
    return TrainConfig.from_overrides({"resolution": RES, **kw})


def _shares(labels3: np.ndarray) -> np.ndarray:
    return np.bincount(labels3, minlength=3) / len(labels3)


def _assert_patient_split(full, train, val, held, val_fraction, holdout_fraction, tol):
    n = len(full.paths)
    # every train image in exactly one of train / val / holdout
    parts = [set(train.paths), set(val.paths), set(held.paths)]
    assert sum(len(p) for p in parts) == n
    assert set().union(*parts) == set(full.paths)
    # no patient in two parts
    pt, pv, ph = set(train.patients), set(val.patients), set(held.patients)
    assert not (pt & pv) and not (pt & ph) and not (pv & ph)
    # roughly the requested fractions, of images and of patients
    n_pat = len(set(full.patients))
    assert abs(len(val.paths) / n - val_fraction) < tol
    assert abs(len(held.paths) / n - holdout_fraction) < tol
    assert abs(len(pv) / n_pat - val_fraction) < tol
    assert abs(len(ph) / n_pat - holdout_fraction) < tol
    # stratified: class shares within 3 points of the whole train set's
    whole = _shares(full.labels3)
    for part in (train, val, held):
        assert np.abs(_shares(part.labels3) - whole).max() < 0.03, (_shares(part.labels3), whole)


@pytest.mark.slow
def test_real_counts(real_root, real_train):
    s = summarize(real_root, RES)
    assert set(s["splits"]) == {"train", "val"}
    assert counts(s) == (1341, 2530, 1345) and sum(counts(s)) == 5216
    assert counts(s, "val") == (8, 8, 0)
    assert s["skipped"] == []
    assert s["splits"]["train"]["min_side"] == s["splits"]["train"]["max_side"] == 224
    assert real_train.images.shape == (5216, RES, RES)


@pytest.mark.slow
def test_real_patient_split(real_root, real_train, real_default):
    cfg, data, (held, how) = real_default
    assert "hold-out" in how
    # prepare() and load_test() carve separately; that they partition train shows they agree
    _assert_patient_split(real_train, data.train, data.val, held,
                          cfg.val_fraction, cfg.holdout_fraction, tol=0.02)

    # images line up with labels: each row is the cached image of its path
    full_index = {p: i for i, p in enumerate(real_train.paths)}
    for part in (data.train, data.val, held):
        idx = [full_index[p] for p in part.paths]
        np.testing.assert_array_equal(part.images, real_train.images[idx])
        np.testing.assert_array_equal(part.labels3, real_train.labels3[idx])
        np.testing.assert_array_equal(part.patients, real_train.patients[idx])

    # deterministic for the same split_seed, different for another
    again = prepare(real_root, cfg, progress=False)
    assert again.train.paths == data.train.paths and again.val.paths == data.val.paths
    other = prepare(real_root, _cfg(split_seed=1), progress=False)
    assert other.val.paths != data.val.paths


@pytest.mark.slow
def test_real_other_fractions(real_root, real_train):
    cfg = _cfg(val_fraction=0.2, holdout_fraction=0.15, split_seed=3)
    data = prepare(real_root, cfg, progress=False)
    held, _ = load_test(real_root, cfg)
    _assert_patient_split(real_train, data.train, data.val, held, 0.2, 0.15, tol=0.03)


@pytest.mark.slow
def test_real_official_val(real_root, real_train):
    cfg = _cfg(val_source="official")
    data = prepare(real_root, cfg, progress=False)
    held, _ = load_test(real_root, cfg)
    assert len(data.val.paths) == 16
    assert all(Path(p).parent.parent == real_root / "val" for p in data.val.paths)
    assert np.bincount(data.val.labels3, minlength=3).tolist() == [8, 8, 0]
    # train is the official train minus the hold-out; nothing of the hold-out leaks in
    assert len(data.train.paths) + len(held.paths) == len(real_train.paths)
    assert not (set(data.train.paths) & set(held.paths))
    assert not (set(data.train.patients) & set(held.patients))
    assert not (set(data.train.patients) & set(data.val.patients))


@pytest.mark.slow
def test_real_max_train_images(real_root, real_default):
    _, full, _ = real_default
    a = prepare(real_root, _cfg(max_train_images=500), progress=False)
    b = prepare(real_root, _cfg(max_train_images=500), progress=False)
    assert len(a.train.paths) == 500 and a.train.images.shape == (500, RES, RES)
    assert a.train.paths == b.train.paths
    np.testing.assert_array_equal(a.train.images, b.train.images)
    assert set(a.train.paths) <= set(full.train.paths)
    assert a.val.paths == full.val.paths  # the subset touches train only
    assert np.abs(_shares(a.train.labels3) - _shares(full.train.labels3)).max() < 0.02
