"""Stage B's figures (docs/gpu-check/run.sh b), from the study it ran, as JSON lines appended to OUT/b.jsonl:
study seconds and exit code, experiments and trials finished, train images/s overall (images trained in
every epoch of every trial / study seconds), nvidia-smi utilisation (mean, median, share of samples >= 90 %),
and for the ASHA experiments the share of their grid's epochs that ran.

    python docs/gpu-check/summary.py STORAGE OUT EXIT_CODE START_S END_S
"""
import json
import statistics
import sys
from pathlib import Path

storage, out, code, start, end = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:6])


def emit(kind: str, **figures) -> None:
    with open(out / "b.jsonl", "a") as f:
        f.write(json.dumps({"stage": "B", "kind": kind, **figures}) + "\n")
    print(kind, figures)


images, finished, asha_run, asha_budget = 0, 0, 0, 0
for exp in sorted(p for p in storage.iterdir() if p.is_dir()) if storage.is_dir() else []:
    meta_file = exp / "study.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    n_train = int(meta.get("n_train") or 0)
    settings = json.loads((exp / "settings.json").read_text()) if (exp / "settings.json").is_file() else {}
    epochs = 0
    for r in exp.glob("*/result.json"):
        epochs += len({json.loads(x).get("epoch") for x in r.read_text().splitlines() if x.strip()})
    images += epochs * n_train
    s = meta.get("summary") or {}
    finished += bool(meta)
    if meta.get("asha"):
        asha_run += s.get("epochs_run", 0)
        asha_budget += s.get("epochs_budget", 0)
    emit("experiment", name=exp.name, finished=bool(meta), trials=s.get("trials"), epochs_run=epochs,
         n_train=n_train or None, wall_s=meta.get("wall_seconds"), resolution=settings.get("base_config", {}).get("resolution"))
wall = end - start
emit("study", exit_code=code, seconds=round(wall, 1), experiments_finished=finished,
     train_images_per_s=round(images / wall, 1) if wall else None, images_trained=images,
     asha_share_of_grid_epochs=round(asha_run / asha_budget, 3) if asha_budget else None)
smi = out / "smi.csv"
if smi.is_file():
    util = [float(x.split(",")[1]) for x in smi.read_text().splitlines() if x.count(",") >= 2]
    if util:
        emit("nvidia-smi", samples=len(util), util_mean=round(statistics.mean(util), 1),
             util_median=statistics.median(util), share_ge_90=round(sum(u >= 90 for u in util) / len(util), 3))
