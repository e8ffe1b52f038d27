"""The chest X-ray data set: layout, labels, patient ids, patient-level splits, summary.

    python -m study.data ROOT [--resolution 200] [--json] [--strict]

prints the per-split class counts, patients and image sizes of a data set (ROOT: the Kaggle
download as it comes, or its chest_xray/ folder, or an s3:// (gs://...) prefix holding it, copied
once to the image cache); with no ROOT, the bundled sample.

Layout: ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg, also when ROOT is the Kaggle zip's
doubly nested chest_xray/chest_xray/; __MACOSX/, .DS_Store and hidden files are ignored.
Labels from file names: NORMAL -> normal; PNEUMONIA/personN_bacteria_M -> bacteria,
personN_virus_M -> virus. Patient ids: personN, IM-XXXX, NORMAL2-IM-XXXX.

Training code calls `prepare()`, which never reads test/: only `load_test()` does, and only the
analysis calls that, once, after selection.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from study import checks
from study.augment import STRESS, stress_images
from study.cache import IMAGE_SUFFIXES, load_or_build
from study.config import TrainConfig, UserError
from study.fetch import local_data

CLASSES = ("normal", "bacteria", "virus")  # label3 index; binary label = label3 > 0
SPLITS = ("train", "val", "test")
CLASS_DIRS = ("NORMAL", "PNEUMONIA")
SAMPLE_ROOT = Path(__file__).resolve().parent / "sample" / "chest_xray"
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
_PERSON = re.compile(r"^(person\d+)_(bacteria|virus)", re.I)
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)", re.I)
# The fewest readable images a class folder may hold (an unreadable file is skipped, not counted);
# after the patient-level carve, train and validation must also each hold every class of the task.
MIN_IMAGES_PER_CLASS = 1


@dataclass(frozen=True)
class Item:
    path: Path
    label3: int      # index into CLASSES
    patient: str


@dataclass
class Split:
    """Decoded images of one split, skipped files removed."""
    images: np.ndarray      # uint8 [N, R, R]
    labels3: np.ndarray     # int64 [N]
    patients: np.ndarray    # str [N]
    paths: list[str]
    sizes: list[tuple[int, int]]
    skipped: list[dict] = field(default_factory=list)

    def take(self, idx: np.ndarray) -> "Split":
        return Split(self.images[idx], self.labels3[idx], self.patients[idx],
                     [self.paths[i] for i in idx], [self.sizes[i] for i in idx])


@dataclass
class TrainData:
    """What every trial of a study trains on; built once, shared through Ray's object store."""
    train: Split
    val: Split
    stress: Split     # val under every change of study.augment.STRESS (fixed, seeded by split_seed)
    data_key: tuple
    description: str
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"} of every file left out, all splits read


def stressed(val: Split, seed: int) -> Split:
    """The stress validation set: each validation image once per acquisition-style change in
    study.augment.STRESS, drawn from `seed`; labels and patients repeat in the same order."""
    k = len(STRESS)
    return Split(stress_images(val.images, seed), np.tile(val.labels3, k), np.tile(val.patients, k),
                 [f"{p} [{name}]" for name in STRESS for p in val.paths], list(val.sizes) * k)


def binary(labels3: np.ndarray) -> np.ndarray:
    return (labels3 > 0).astype(np.int64)


def targets(labels3: np.ndarray, num_classes: int) -> np.ndarray:
    return binary(labels3) if num_classes == 2 else labels3.astype(np.int64)


# ---- reading the layout ----------------------------------------------------------------------
def find_root(root: str | Path) -> Path:
    """The folder that holds train/ val/ test/, looking through chest_xray/chest_xray/ nesting; a URI
    (s3://BUCKET/chest_xray) is copied to this machine's cache first (study.fetch.local_data)."""
    root = Path(local_data(root)).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; give the data set folder (the Kaggle download's chest_xray/)")
    here = root
    for _ in range(4):
        if any((here / s).is_dir() for s in SPLITS):
            return here
        if (here / "chest_xray").is_dir():
            here = here / "chest_xray"
            continue
        break
    raise UserError(f"{root}: not a chest X-ray data set; expected {root}/train/{{NORMAL,PNEUMONIA}}/*.jpeg "
                    f"(or the Kaggle download's chest_xray/ folder)")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".") and p.name not in IGNORED


def class_files(cdir: Path) -> tuple[list[Path], list[dict]]:
    """Every visible file under `cdir`, entering symlinked folders (each real folder once, so a link
    loop ends); a dangling link is returned as skipped with its reason, never dropped."""
    files, skipped, seen = [], [], set()
    for dirpath, dirnames, filenames in os.walk(cdir, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        for name in filenames:
            p = Path(dirpath) / name
            if not _visible(p):
                continue
            if p.is_symlink() and not p.exists():
                skipped.append({"file": str(p), "reason": f"dangling symbolic link (its target {os.readlink(p)} does not exist)"})
            elif p.is_file():
                files.append(p)
    return sorted(files), skipped


def scan_split(root: Path, split: str) -> tuple[list[Item], list[dict]]:
    """File names only (no decoding): items and the files skipped for their name or type."""
    d = root / split
    if not d.is_dir():
        raise UserError(f"{d}: missing; expected {d}/{{NORMAL,PNEUMONIA}}/*.jpeg")
    sub = sorted(p for p in d.iterdir() if _visible(p))
    for p in sub:
        if p.is_dir() and p.name.upper() not in CLASS_DIRS:
            raise UserError(f"{p}: unknown class folder {p.name!r}; expected only NORMAL/ and PNEUMONIA/ in {d}")
    items, skipped = [], []
    for cls in CLASS_DIRS:
        cdir = next((p for p in sub if p.is_dir() and p.name.upper() == cls), None)
        if cdir is None:
            raise UserError(f"{d}: no {cls}/ folder; expected {d}/{cls}/*.jpeg")
        files, dangling = class_files(cdir)
        if not files and not dangling:
            raise UserError(f"{cdir}: empty class folder; expected .jpeg images of {cls.lower()} chest X-rays")
        skipped += dangling
        for f in files:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append({"file": str(f), "reason": f"not an image file name (expected {', '.join(IMAGE_SUFFIXES)})"})
                continue
            item = _label(f, cls)
            if item is None:
                skipped.append({"file": str(f), "reason": "PNEUMONIA file name says neither bacteria nor virus "
                                "(expected personN_bacteria_M.jpeg or personN_virus_M.jpeg)"})
            else:
                items.append(item)
    return items, skipped


def _label(f: Path, cls: str) -> Item | None:
    if cls == "NORMAL":
        m = _NORMAL.match(f.name)
        return Item(f, 0, m.group(1).upper() if m else f"file:{f.stem}")
    m = _PERSON.match(f.name)
    if not m:
        return None
    return Item(f, CLASSES.index(m.group(2).lower()), m.group(1).lower())


def load_split(root: Path, split: str, resolution: int, strict: bool = False,
               cache_dir: Path | None = None, progress: bool = True) -> Split:
    items, skipped = scan_split(root, split)
    got = load_or_build([it.path for it in items], resolution, f"{split}", cache_dir, progress)
    for it, err in zip(items, got["errors"]):
        if err:
            skipped.append({"file": str(it.path), "reason": err})
    if strict and skipped:
        s = skipped[0]
        raise UserError(f"{s['file']}: {s['reason']} (--strict; {len(skipped)} file(s) in {root / split} unreadable)")
    ok = got["ok"]
    kept = [it for it, k in zip(items, ok) if k]
    check_class_counts(root / split, kept, skipped)
    return Split(got["images"], np.array([it.label3 for it in kept], np.int64),
                 np.array([it.patient for it in kept]), [str(it.path) for it in kept],
                 [tuple(s) for s, k in zip(got["sizes"], ok) if k], skipped)


def check_class_counts(split_dir: Path, kept: list[Item], skipped: list[dict]) -> None:
    """Each class folder keeps at least MIN_IMAGES_PER_CLASS readable images; else a UserError
    naming the folder, how many files were skipped there and the first reasons."""
    for cls in CLASS_DIRS:
        n = sum(1 for it in kept if (it.label3 > 0) == (cls == "PNEUMONIA"))
        if n >= MIN_IMAGES_PER_CLASS:
            continue
        cdir = next(p for p in split_dir.iterdir() if p.is_dir() and p.name.upper() == cls)
        bad = [s for s in skipped if Path(s["file"]).is_relative_to(cdir)]
        first = "; ".join(f"{Path(b['file']).name}: {b['reason']}" for b in bad[:2])
        have = "no readable" if n == 0 else f"only {n} readable"
        raise UserError(f"{cdir}: {have} {cls} image (at least {MIN_IMAGES_PER_CLASS} needed; {len(bad)} skipped, "
                        f"first: {first}); replace the files or see python -m study.data for the full list")


def skipped_note(n: int, where) -> str:
    """The line study.train and study.run print when files were left out."""
    return (f"{n} file(s) skipped (unreadable, misnamed or dangling links; --strict makes them an error); "
            f"the list with reasons: {where}")


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
    return TrainData(train, val, stressed(val, cfg.split_seed), cfg.data_key(), desc, skipped)


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


# ---- summary CLI -----------------------------------------------------------------------------
def summarize(root: str | Path | None, resolution: int = 200, strict: bool = False,
              cache_dir: Path | None = None) -> dict:
    top = find_root(root or SAMPLE_ROOT)
    out: dict = {"root": str(top), "splits": {}, "skipped": []}
    present = [s for s in SPLITS if (top / s).is_dir()]
    if "train" not in present:
        raise UserError(f"{top}/train: missing; expected {top}/train/{{NORMAL,PNEUMONIA}}/*.jpeg")
    for s in present:
        sp = load_split(top, s, resolution, strict=strict, cache_dir=cache_dir)
        counts = {c: int((sp.labels3 == i).sum()) for i, c in enumerate(CLASSES)}
        sides = [v for wh in sp.sizes for v in wh]
        out["splits"][s] = {**counts, "patients": int(len(set(sp.patients))),
                            "min_side": int(min(sides)), "max_side": int(max(sides))}
        out["skipped"] += sp.skipped
    return out


def main(argv: list[str] | None = None) -> int:
    ap = checks.Parser(prog="python -m study.data", description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=None, help="data set folder (default: the bundled sample)")
    ap.add_argument("--resolution", type=int, default=200, help="px side of the cached images (default 200)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--strict", action="store_true", help="an unreadable file is an error, not a skip")
    args = ap.parse_args(argv)
    try:
        s = summarize(args.root, args.resolution, args.strict)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(s))
        return 0
    print(f"data set: {s['root']}")
    for name, c in s["splits"].items():
        print(f"  {name:5s}  normal {c['normal']:5d}  bacteria {c['bacteria']:5d}  virus {c['virus']:5d}  "
              f"patients {c['patients']:5d}  sides {c['min_side']}-{c['max_side']} px")
    for sk in s["skipped"]:
        print(f"  skipped {sk['file']}: {sk['reason']}")
    print(f"  {len(s['skipped'])} file(s) skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
