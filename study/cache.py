"""Decode each image once and keep it as a uint8 array on disk.

Resize policy: every image is read as 8-bit grayscale (RGB/RGBA/palette -> luminance, alpha dropped;
16-bit -> min-max scaled to 0..255) and resized to a square `resolution` x `resolution` without
keeping the aspect ratio, as the seed did (cv2.resize to 200x200). Large JPEG originals (up to
~3000 px) are first shrunk in the DCT domain (PIL `draft`) to no less than twice the target, then
resized with PIL's antialiased bilinear filter.

A cache entry is keyed by the split's file list, sizes and mtimes, the resolution and CACHE_VERSION,
so editing, adding or removing an image rebuilds it; nothing else does.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

CACHE_VERSION = 1
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def default_cache_dir() -> Path:
    return Path(os.environ.get("PNEUMONIA_CACHE", Path.home() / ".cache" / "pneumonia-tune"))


class BadImage(Exception):
    """One unreadable file; the caller skips it and records the reason."""


def decode(path: str | Path, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """-> (uint8 array resolution x resolution, original (width, height)); raises BadImage."""
    try:
        with Image.open(path) as im:
            size = im.size
            if im.format == "JPEG":
                im.draft("L", (2 * resolution, 2 * resolution))
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                a = np.asarray(im, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
                im = Image.fromarray(a.round().astype(np.uint8), mode="L")
            elif im.mode != "L":
                im = im.convert("L")
            out = im.resize((resolution, resolution), Image.Resampling.BILINEAR)
            return np.asarray(out, dtype=np.uint8).copy(), size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        if Path(path).stat().st_size == 0:
            raise BadImage("empty file (0 bytes)") from None
        if isinstance(e, UnidentifiedImageError):
            raise BadImage("not an image (unrecognised format)") from None
        raise BadImage(f"unreadable image: {e}") from None


def _decode_one(args: tuple[str, int]):
    path, resolution = args
    try:
        arr, size = decode(path, resolution)
        return arr, size, None
    except BadImage as e:
        return None, None, str(e)


def content_key(paths: list[Path], resolution: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}:{resolution}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_or_build(paths: list[Path], resolution: int, name: str, cache_dir: Path | None = None,
                  progress: bool = True) -> dict:
    """Images for `paths` at `resolution`, from the cache when its key matches, else decoded now.

    Returns {"images": uint8 [N, R, R] for the readable files, "ok": bool [len(paths)],
    "sizes": [(w, h) or None], "errors": [reason or None], "built": bool}.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    key = content_key(paths, resolution)
    stem = cache_dir / f"{name}-{resolution}px-{key}"
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            images = np.load(npy)
        except (OSError, ValueError, EOFError):  # a damaged entry (JSONDecodeError is a ValueError): rebuild
            pass
        else:
            return {"images": images, "ok": np.array(meta["ok"], dtype=bool), "sizes": meta["sizes"],
                    "errors": meta["errors"], "built": False}

    jobs = [(str(p), resolution) for p in paths]
    workers = min(os.cpu_count() or 1, max(1, len(jobs) // 200))
    bar = dict(total=len(jobs), desc=f"decoding {name} at {resolution}px", unit="img",
               disable=None if progress else True, leave=False)  # None: no bar when stderr is not a terminal
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(_decode_one, jobs, chunksize=64), **bar))
    else:
        results = [_decode_one(j) for j in tqdm(jobs, **bar)]
    images = np.stack([r[0] for r in results if r[0] is not None]) if any(r[0] is not None for r in results) \
        else np.zeros((0, resolution, resolution), np.uint8)
    meta = {"ok": [r[0] is not None for r in results], "sizes": [r[1] for r in results],
            "errors": [r[2] for r in results], "files": [str(p) for p in paths], "resolution": resolution}
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Each file goes to a temp name and is renamed (atomic), the .json first and the .npy last: an
    # entry counts only when both exist, so a killed or concurrent build never leaves half of one.
    tmp_meta = stem.with_suffix(f".tmp{os.getpid()}.json")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    tmp = stem.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, images)
    os.replace(tmp, npy)
    return {"images": images, "ok": np.array(meta["ok"], dtype=bool), "sizes": meta["sizes"],
            "errors": meta["errors"], "built": True}
