"""What docs/gpu-check/run.sh measured, one line per figure (for BENCHMARKS.md).

    python docs/gpu-check/summary.py OUT
"""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from study.names import METRIC  # noqa: E402

out = Path(sys.argv[1])


def load(p: Path):
    return json.loads(p.read_text()) if p.is_file() else None


b = load(out / "bench.json")
if b:
    print(f"bench: {b['images_per_s']:.0f} images/s on {b.get('device_name') or b['device']} ({b['precision']}, "
          f"{b['resolution']} px, batch {b['batch_size']}); plain ImageFolder {b.get('imagefolder_images_per_s', 0):.0f} "
          f"images/s, ratio {b.get('ratio', float('nan')):.1f}x")
rates = {a: load(out / f"bench-{a}.json") for a in ("none", "strong")}
if all(rates.values()):
    n, s = rates["none"]["images_per_s"], rates["strong"]["images_per_s"]
    print(f"bench alone: augment none {n:.0f} images/s, strong {s:.0f} images/s ({n / s:.2f}x the time per image)")

packed = {}
for a in ("none", "strong"):
    exp = out / f"packed-{a}" / "baseline"
    lines = [json.loads(x) for f in exp.glob("*/result.json") for x in f.read_text().splitlines() if x.strip()]
    later = [x["epoch_seconds"] for x in lines if x["epoch"] >= 2]  # epoch 1 also pays cuDNN's and kornia's warm-up
    if later:
        packed[a] = statistics.median(later)
        meta = load(exp / "study.json") or {}
        print(f"packed, augment {a}: {len({x['pid'] for x in lines})} workers, median epoch {packed[a]:.2f} s over "
              f"{len(later)} epochs (epochs >= 2), experiment wall {meta.get('wall_seconds')} s")
if len(packed) == 2:
    print(f"packed: strong / none epoch time = {packed['strong'] / packed['none']:.2f}x (issue 11's goal: <= 1.2x)")

study = out / "study"
if study.is_dir():
    wall = float((out / "study-wall-s").read_text()) if (out / "study-wall-s").is_file() else float("nan")
    images, asha_run, asha_grid = 0, 0, 0
    for meta_file in sorted(study.glob("*/study.json")):
        m = load(meta_file)
        s = m["summary"]
        images += s["epochs_run"] * m["n_train"]
        if m.get("asha"):
            asha_run, asha_grid = asha_run + s["epochs_run"], asha_grid + s["epochs_budget"]
        print(f"  {m['experiment']:<16} {s['trials']:>3} trials, {s['epochs_run']:>4}/{s['epochs_budget']:<4} epochs, "
              f"wall {m['wall_seconds']:>6} s, best {METRIC} {s.get('best_' + METRIC, float('nan')):.4f}, "
              f"errors {s['errors']}")
    print(f"study: wall {wall:.0f} s, {images} training images, {images / wall:.0f} images/s overall; ASHA spaces ran "
          f"{asha_run}/{asha_grid} epochs ({asha_run / max(asha_grid, 1):.0%} of their grid)")
    smi = out / "smi.csv"
    if smi.is_file():
        util = [float(x.split(",")[1]) for x in smi.read_text().splitlines() if x.count(",") >= 2]
        busy = sum(u > 0 for u in util) / max(len(util), 1)
        print(f"nvidia-smi: {len(util)} samples, mean utilisation {statistics.mean(util):.0f} %, "
              f"busy (> 0 %) {busy:.0%} of the samples, peak memory "
              f"{max(float(x.split(',')[2]) for x in smi.read_text().splitlines() if x.count(',') >= 2):.0f} MiB")
