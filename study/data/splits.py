"""The patient-level splits a run trains and is evaluated on, and the stress validation.

From train/ we carve, by patient and stratified by class, a hold-out (holdout_fraction of the
patients: our own test split when the data set has no test/) and then a validation split
(val_fraction); no patient is in two of them. `prepare` gives training code the train and validation
images and the stress validation (study/data/stress.py) and never reads test/: only `load_test` does,
and only the analysis calls that, once, after selection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from study.config import TrainConfig
from study.data.cache import load_or_build
from study.data.layout import CLASSES, SAMPLE_ROOT, Split, find_root, load_split, targets
from study.data.stress import STRESS, film_px, stress_images
from study.errors import UserError


@dataclass
class TrainData:
    """What every trial of a study trains on; built once, shared through Ray's object store."""
    train: Split
    val: Split
    stress: Split     # val under every change of study.data.stress.STRESS (fixed, seeded by split_seed)
    data_key: tuple
    description: str
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"} of every file left out, all splits read
    # validation then stress-validation images in one array, made once here: every epoch evaluates them in one
    # pass, and a reused worker finds this array's device copy kept (study.engine.device.on_device)
    eval_images: np.ndarray | None = None

    def __post_init__(self):
        if self.eval_images is None:
            self.eval_images = np.concatenate([self.val.images, self.stress.images])


def stressed(val: Split, resolution: int, seed: int, cache_dir: Path | None = None, progress: bool = True) -> Split:
    """The stress validation set: each validation film once per acquisition-style change in
    study.data.stress.STRESS, made in the film frame (study.data.stress.film_px) and resized to
    `resolution`, drawn from `seed`; labels and patients repeat in the same order."""
    k = len(STRESS)
    got = load_or_build([Path(p) for p in val.paths], film_px(resolution), "val-film", cache_dir, progress)
    if not got["ok"].all():  # these files decoded a moment ago at `resolution`
        raise UserError(f"{val.paths[int(np.argmin(got['ok']))]}: unreadable when decoded for the stress validation")
    return Split(stress_images(got["images"], resolution, seed), np.tile(val.labels3, k), np.tile(val.patients, k),
                 [f"{p} [{name}]" for name in STRESS for p in val.paths], list(val.sizes) * k)


def check_task_classes(split: Split, what: str, num_classes: int) -> None:
    """After the carve: `split` holds every class the task predicts, or a UserError naming the class."""
    names = ("NORMAL", "PNEUMONIA") if num_classes == 2 else tuple(c.upper() for c in CLASSES)
    present = set(np.unique(targets(split.labels3, num_classes)).tolist())
    missing = [names[i] for i in range(num_classes) if i not in present]
    if missing:
        raise UserError(f"{what}: no {' or '.join(missing)} image among its {len(split.labels3)} images of "
                        f"{len(set(split.patients))} patients; the data set needs more readable images of that class")


# ---- patient-level splits --------------------------------------------------------------------
def carve(labels3: np.ndarray, patients: np.ndarray, fraction: float, seed: int,
          name: str = "fraction") -> tuple[np.ndarray, np.ndarray]:
    """(rest, carved) indices: about `fraction` of the patients, stratified by class, no patient in both.
    `name`: the config field `fraction` comes from, for the error when it is less than one patient."""
    n_patients = len(set(patients.tolist()))
    limit = min(n_patients, int(np.bincount(labels3).max()))  # a fold needs a patient, and a class that fills it
    if not math.isfinite(1.0 / fraction) or round(1.0 / fraction) > limit:
        raise UserError(f"{name}={fraction:g} is less than one of the {n_patients} patients; use at least "
                        f"{1.0 / limit:.3g} (or more images)")
    n_splits = max(2, round(1.0 / fraction))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, carved = next(folds.split(np.zeros(len(labels3)), labels3, groups=patients))
    return np.sort(rest), np.sort(carved)


def _train_pool(root: Path, cfg: TrainConfig, cache_dir, progress, strict: bool = False) -> tuple[Split, Split | None]:
    """Official train minus our hold-out (the patients `load_test` returns when there is no test/)."""
    full = load_split(root, "train", cfg.resolution, strict=strict, cache_dir=cache_dir, progress=progress)
    if cfg.holdout_fraction == 0:
        return full, None
    rest, held = carve(full.labels3, full.patients, cfg.holdout_fraction, cfg.split_seed, "holdout_fraction")
    rest_split = full.take(rest)
    rest_split.skipped = full.skipped
    return rest_split, full.take(held)


def prepare(root: str | Path | None, cfg: TrainConfig, cache_dir: Path | None = None,
            progress: bool = True, strict: bool = False) -> TrainData:
    """Train and validation images for `cfg`'s data fields. Never reads test/. `strict`: any
    unreadable or misnamed file is a UserError; else they are skipped and listed in .skipped."""
    root = find_root(root or SAMPLE_ROOT)
    pool, _ = _train_pool(root, cfg, cache_dir, progress, strict)
    skipped = list(pool.skipped)
    if cfg.val_source == "official":
        train, val = pool, load_split(root, "val", cfg.resolution, strict=strict, cache_dir=cache_dir, progress=progress)
        skipped += val.skipped
    else:
        frac = cfg.val_fraction / (1.0 - cfg.holdout_fraction)
        rest, v = carve(pool.labels3, pool.patients, frac, cfg.split_seed + 1, "val_fraction")
        train, val = pool.take(rest), pool.take(v)
    n_classes = len(np.unique(train.labels3))
    if 0 < cfg.max_train_images < n_classes:
        raise UserError(f"config: max_train_images={cfg.max_train_images}; expected 0 (all) or at least "
                        f"{n_classes} (one image per class)")
    if cfg.max_train_images and cfg.max_train_images < len(train.labels3):
        # stratifying needs two images per class, and one per class on both sides
        per_class = np.unique(train.labels3, return_counts=True)[1]
        can_stratify = len(train.labels3) - cfg.max_train_images >= n_classes and per_class.min() >= 2
        idx, _ = train_test_split(np.arange(len(train.labels3)), train_size=cfg.max_train_images,
                                  stratify=train.labels3 if can_stratify else None, random_state=cfg.split_seed)
        train = train.take(np.sort(idx))
    check_task_classes(train, f"{root}: the training split", cfg.num_classes)
    check_task_classes(val, f"{root}: the validation split ({cfg.val_source})", cfg.num_classes)
    desc = (f"{root}: train {len(train.labels3)} images / {len(set(train.patients))} patients, "
            f"val ({cfg.val_source}) {len(val.labels3)} / {len(set(val.patients))} (+{len(STRESS)}x stressed), "
            f"{cfg.resolution}px")
    return TrainData(train, val, stressed(val, cfg.resolution, cfg.split_seed, cache_dir, progress), cfg.data_key(), desc,
                     skipped)


def load_test(root: str | Path | None, cfg: TrainConfig, cache_dir: Path | None = None) -> tuple[Split, str]:
    """The evaluation split, for the analysis only: the official test/ when the data set has one,
    else the patient-level hold-out carved from train (never seen by training or selection)."""
    root = find_root(root or SAMPLE_ROOT)
    if (root / "test").is_dir():
        return load_split(root, "test", cfg.resolution, cache_dir=cache_dir), f"official test split ({root / 'test'})"
    _, held = _train_pool(root, cfg, cache_dir, progress=False)
    if held is None:
        raise UserError(f"{root}: no test/ split and holdout_fraction=0; nothing to evaluate on")
    return held, f"patient-level hold-out of train ({cfg.holdout_fraction:.0%} of patients, split_seed={cfg.split_seed})"
