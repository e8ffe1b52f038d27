"""The chest X-ray data set as it is downloaded: layout, labels, patient ids, decoding a split.

Layout: ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg, also when ROOT is the Kaggle zip's
doubly nested chest_xray/chest_xray/; __MACOSX/, .DS_Store and hidden files are ignored.
Labels from file names: NORMAL -> normal; PNEUMONIA/personN_bacteria_M -> bacteria,
personN_virus_M -> virus. Patient ids: personN, IM-XXXX, NORMAL2-IM-XXXX. `load_split` decodes one
split through the image cache (study/data/cache.py); `python -m study.inspect data ROOT` prints
`summarize`'s counts. The patient-level splits a run trains on are study/data/splits.py.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.data.cache import IMAGE_SUFFIXES, load_or_build
from study.data.fetch import local_data
from study.errors import UserError

CLASSES = ("normal", "bacteria", "virus")  # label3 index; binary label = label3 > 0
SPLITS = ("train", "val", "test")
CLASS_DIRS = ("NORMAL", "PNEUMONIA")
SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "sample" / "chest_xray"
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


def binary(labels3: np.ndarray) -> np.ndarray:
    return (labels3 > 0).astype(np.int64)


def targets(labels3: np.ndarray, num_classes: int) -> np.ndarray:
    return binary(labels3) if num_classes == 2 else labels3.astype(np.int64)


# ---- reading the layout ----------------------------------------------------------------------
def find_root(root: str | Path) -> Path:
    """The folder that holds train/ val/ test/, looking through chest_xray/chest_xray/ nesting; a URI
    (s3://BUCKET/chest_xray) is copied to this machine's cache first (study.data.fetch.local_data)."""
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
                        f"first: {first}); replace the files or see python -m study.inspect data for the full list")


def skipped_note(n: int, where) -> str:
    """The line study.train and study.run print when files were left out."""
    return (f"{n} file(s) skipped (unreadable, misnamed or dangling links; --strict makes them an error); "
            f"the list with reasons: {where}")


# ---- summary ---------------------------------------------------------------------------------
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
