"""Time building the image cache from JPEGs against loading the cached train split.

    python -m benchmarks.cache ROOT [--resolution 200] [--repeats 3] [--json]

prints the train split measured (images, px, repeats, CPUs, load average before and after), then
for each of
  build  cold: study.data.cache.load_or_build into a fresh, empty cache dir (decode every image, write
         the entry), as the first run of a study at a resolution does;
  load   warm: load_or_build on the same file list once the entry exists (the content-key stat
         pass over every file, the metadata JSON, np.load of the array), as every later run does;
  load   evicted: the same, after asking the kernel to drop the entry from the page cache
         (informational: the first run after a reboot; reads the array from disk)
the median and each repeat in seconds and the median in images/s; then the build/load speedup
and whether it meets the requirement (warm load >= 20x faster than building). With --json, one
JSON object instead. Exit status 0 when the requirement is met, 1 when not, 2 on a user mistake
(`error: ...`). ROOT defaults to the bundled sample. Each repeat builds into its own temp dir
(--tmp-dir, default the system's), removed afterwards; the user's cache is never touched.
"""
from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from study import cli
from study.data.cache import load_or_build
from study.data.layout import SAMPLE_ROOT, find_root, scan_split
from study.errors import UserError

REQUIRED_SPEEDUP = 20.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _evict(cache_dir: Path) -> None:
    """Drop the entry's pages from the page cache (Linux; needs no privileges for clean pages)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for f in cache_dir.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def bench(root: str | Path | None, resolution: int = 200, repeats: int = 3,
          tmp_dir: str | None = None) -> dict:
    top = find_root(root or SAMPLE_ROOT)
    items, _ = scan_split(top, "train")  # the file list load_split hands to load_or_build
    paths = [it.path for it in items]
    n = len(paths)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"build": [], "load": [], "load_evicted": []}
    skipped = None
    for _ in range(repeats):
        cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=tmp_dir))
        try:
            gc.collect()
            t = time.perf_counter()
            cold = load_or_build(paths, resolution, "train", cache_dir=cache_dir, progress=False)
            times["build"].append(time.perf_counter() - t)
            assert cold["built"], "a fresh cache dir must build"
            skipped = int((~cold["ok"]).sum())
            cold_images = cold["images"]
            del cold
            gc.collect()

            t = time.perf_counter()
            warm = load_or_build(paths, resolution, "train", cache_dir=cache_dir, progress=False)
            times["load"].append(time.perf_counter() - t)
            assert not warm["built"], "the second load must be a cache hit"
            assert np.array_equal(warm["images"], cold_images), "cached images differ from the built ones"
            del warm, cold_images
            gc.collect()

            _evict(cache_dir)
            t = time.perf_counter()
            again = load_or_build(paths, resolution, "train", cache_dir=cache_dir, progress=False)
            times["load_evicted"].append(time.perf_counter() - t)
            assert not again["built"]
            del again
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    speedup = med["build"] / med["load"]
    return {
        "root": str(top), "split": "train", "images": n, "unreadable": skipped, "resolution": resolution,
        "repeats": repeats,
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "images_per_second": {k: round(n / v, 1) for k, v in med.items()},
        "speedup": round(speedup, 1), "speedup_evicted": round(med["build"] / med["load_evicted"], 1),
        "required_speedup": REQUIRED_SPEEDUP, "meets_requirement": speedup >= REQUIRED_SPEEDUP,
        "entry_mb": round(n * resolution * resolution / 2**20, 1),
        "machine": {"cpu": _cpu_model(), "cpus": _cpus(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def report(r: dict) -> str:
    m = r["machine"]
    la = lambda xs: " ".join(f"{x:.2f}" for x in xs)
    lines = [
        f"train split of {r['root']}: {r['images']} images ({r['unreadable']} unreadable), "
        f"{r['resolution']} px, entry {r['entry_mb']} MiB, {r['repeats']} repeat(s)",
        f"machine: {m['cpu']}, {m['cpus']} CPU(s), Python {m['python']}; "
        f"load average before {la(m['loadavg_before'])}, after {la(m['loadavg_after'])}; {r['date']}",
    ]
    labels = {"build": "build, cold (fresh cache dir)", "load": "load, warm (cache hit)",
              "load_evicted": "load, evicted from page cache"}
    for k, label in labels.items():
        each = ", ".join(f"{x:.3f}" for x in r["seconds"][k])
        lines.append(f"  {label:31s} median {r['median_seconds'][k]:8.3f} s  "
                     f"{r['images_per_second'][k]:9.0f} img/s   [{each}]")
    verdict = "meets" if r["meets_requirement"] else "FAILS"
    lines.append(f"  speedup build/load {r['speedup']:.1f}x (evicted: {r['speedup_evicted']:.1f}x); "
                 f"{verdict} the requirement of >= {r['required_speedup']:.0f}x")
    return "\n".join(lines)


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m benchmarks.cache", description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=None, help="data set folder (default: the bundled sample)")
    ap.add_argument("--resolution", type=int, default=200, help="px side of the cached images (default 200)")
    ap.add_argument("--repeats", type=int, default=3, help="times each measurement is taken (default 3)")
    ap.add_argument("--tmp-dir", default=None, help="where the throwaway cache dirs go (default: system temp)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        raise UserError(f"--repeats {args.repeats}: expected >= 1")
    if args.resolution < 16:
        raise UserError(f"--resolution {args.resolution}: expected >= 16 px")
    r = bench(args.root, args.resolution, args.repeats, args.tmp_dir)
    print(json.dumps(r) if args.json else report(r))
    return 0 if r["meets_requirement"] else 1


if __name__ == "__main__":
    sys.exit(main())
