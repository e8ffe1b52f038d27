"""Decode each image once and keep it as a uint8 array on disk.

Resize policy: the EXIF orientation tag is applied first (a phone photo of a film or an exported JPEG
may be stored sideways with a tag saying so); an image with a side below MIN_SIDE px is skipped with
its reason. Every image is read as 8-bit grayscale (RGB/RGBA/palette -> luminance, alpha dropped;
16-bit -> min-max scaled to 0..255) and resized to a square `resolution` x `resolution` without
keeping the aspect ratio, as the seed did (cv2.resize to 200x200). Large JPEG originals (up to
~3000 px) are first shrunk in the DCT domain (PIL `draft`) to no less than twice the target, then
resized with PIL's antialiased bilinear filter.

A cache entry is keyed by the split's file list, sizes, mtimes and ctimes, the resolution and
CACHE_VERSION, so editing, adding or removing an image rebuilds it (also an edit that keeps the size
and restores the mtime: the ctime still moves); nothing else does. Only decode errors of bytes that
were read are remembered: a file that could not be read (an OSError: an NFS hiccup, a permission)
is skipped for this run and read again by the next one, never cached as unreadable.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

ORIENTATION = 0x0112  # the EXIF tag
CACHE_VERSION = 3  # 3: EXIF orientation applied, images below MIN_SIDE skipped
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# The shortest side (px) an image may have: the originals are 384 to 2916 px a side, and a film far
# below the model's resolution (a thumbnail, a 1x1 placeholder) would be upscaled into a confident label.
MIN_SIDE = 64


def default_cache_dir() -> Path:
    return Path(os.environ.get("PNEUMONIA_CACHE", Path.home() / ".cache" / "pneumonia-tune"))


class BadImage(Exception):
    """One unreadable file; the caller skips it and records the reason."""


class ReadFailed(BadImage):
    """The file's bytes could not be read (an OSError): maybe transient, so never cached."""


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ReadFailed(f"cannot read the file ({type(e).__name__}: {e.strerror or e}); it is read again next time") from None


def decode(path: str | Path, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """-> (uint8 array resolution x resolution, original (width, height)); raises BadImage for bytes
    that do not decode, ReadFailed (a BadImage) when the bytes cannot be read."""
    data = read_bytes(path)
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im) if im.getexif().get(ORIENTATION, 1) != 1 else im
            size = im.size
            if min(size) < MIN_SIDE:
                raise BadImage(f"too small: {size[0]}x{size[1]} px, below the {MIN_SIDE} px a side an X-ray needs here")
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
        if isinstance(e, UnidentifiedImageError):
            raise BadImage("not an image (unrecognised format)") from None
        raise BadImage(f"unreadable image: {e}") from None


def _decode_one(args: tuple[str, int]):
    """-> (array, size, reason, transient): transient when the bytes could not be read."""
    path, resolution = args
    try:
        arr, size = decode(path, resolution)
        return arr, size, None, False
    except BadImage as e:
        return None, None, str(e), isinstance(e, ReadFailed)


def content_key(paths: list[Path], resolution: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}:{resolution}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_or_build(paths: list[Path], resolution: int, name: str, cache_dir: Path | None = None,
                  progress: bool = True) -> dict:
    """Images for `paths` at `resolution`, from the cache when its key matches, else decoded now.
    Files whose bytes could not be read last time are read again, even on a cache hit.

    Returns {"images": uint8 [N, R, R] for the readable files, "ok": bool [len(paths)],
    "sizes": [(w, h) or None], "errors": [reason or None], "built": bool}.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    key = content_key(paths, resolution)
    stem = cache_dir / f"{name}-{resolution}px-{key}"
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    results = None
    if npy.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            images = np.load(npy)
            if len(images) != sum(meta["ok"]):
                raise ValueError("the .npy and .json of the entry disagree")
        except (OSError, ValueError, EOFError, KeyError, TypeError):  # a damaged entry: rebuild
            pass
        else:
            retry = [i for i, t in enumerate(meta.get("transient") or ()) if t]
            if not retry:
                return {"images": images, "ok": np.array(meta["ok"], dtype=bool), "sizes": meta["sizes"],
                        "errors": meta["errors"], "built": False}
            kept = iter(images)
            results = [(next(kept), size, None, False) if ok else (None, None, err, False)
                       for ok, size, err in zip(meta["ok"], meta["sizes"], meta["errors"])]
            for i in retry:
                results[i] = _decode_one((str(paths[i]), resolution))

    if results is None:
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
            "errors": [r[2] for r in results], "transient": [r[3] for r in results],
            "files": [str(p) for p in paths], "resolution": resolution}
    _store(stem, meta, images)
    return {"images": images, "ok": np.array(meta["ok"], dtype=bool), "sizes": meta["sizes"],
            "errors": meta["errors"], "built": True}


def _store(stem: Path, meta: dict, images: np.ndarray) -> None:
    """Write one cache entry; a cache folder that cannot be written (read-only, a file in the way, disk full)
    is one warning line, and the run goes on with the images decoded in memory."""
    # Each file goes to a temp name and is renamed (atomic), the .json first and the .npy last: an
    # entry counts only when both exist and agree, so a killed or concurrent build never leaves half of one.
    tmp_meta, tmp = stem.with_suffix(f".tmp{os.getpid()}.json"), stem.with_suffix(f".tmp{os.getpid()}.npy")
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, stem.with_suffix(".json"))
        np.save(tmp, images)
        os.replace(tmp, stem.with_suffix(".npy"))
    except OSError as e:
        for t in (tmp_meta, tmp):
            try:
                t.unlink(missing_ok=True)
            except OSError:
                pass
        _warn_once(f"warning: the image cache {stem.parent} (PNEUMONIA_CACHE, default ~/.cache/pneumonia-tune) cannot "
                   f"be written ({type(e).__name__}: {e.strerror or e}); decoding without a cache. Set PNEUMONIA_CACHE "
                   f"to a folder you can write to")


@functools.cache
def _warn_once(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
