"""Stage B's figures (docs/gpu-check/run.sh b), from the study it ran and the driver's log, as JSON lines
appended to OUT/b.jsonl, then one `headline` line with stage A's figures beside them.

Per experiment: trials, epochs run against its grid's epochs (num_samples x the grid's values; ASHA stops
part of them), finished or cut off at the deadline. For the study: seconds and exit code, images trained
(epochs run in every trial x the train images the driver logged for its data set: an experiment cut off at
the deadline still counts what it trained), train images/s overall, and where the study was cut off a
projected wall time for the whole grid (its epochs left at the rate seen, ASHA's share taken from the
experiments that finished, else the full grid), nvidia-smi utilisation (mean, median, share >= 90 %).

    python docs/gpu-check/summary.py STORAGE OUT EXIT_CODE START_S END_S DRIVER_LOG [PACK_JSON]

PACK_JSON (docs/gpu-check/pack_data.py's): how the data set was packed; the headline carries it, so a
throughput figure from a subset repeated to the full size says so.
"""
import json
import re
import statistics
import sys
from pathlib import Path

storage, out, code, start, end = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:6])
driver_log = Path(sys.argv[6])
pack_file = Path(sys.argv[7]) if len(sys.argv) > 7 else None  # the data pack's PACK.json (a subset repeated?)
pack = json.loads(pack_file.read_text()) if pack_file is not None and pack_file.is_file() else None


def emit(kind: str, **figures) -> None:
    with open(out / "b.jsonl", "a") as f:
        f.write(json.dumps({"stage": "B", "kind": kind, **figures}) + "\n")
    print(json.dumps({"stage": "B", "kind": kind, **figures}))


def grid_epochs(settings: dict) -> int:
    """Epochs of the experiment's full grid (study/tune/plan.py's settings.json: a grid is {"grid_search": [...]}):
    num_samples x every grid's length, the epochs summed over their grid where epochs is searched."""
    searched, trials = settings.get("searched", {}), settings.get("num_samples", 1)
    grid = lambda v: v["grid_search"] if isinstance(v, dict) and "grid_search" in v else None
    for k, v in searched.items():
        if grid(v) is not None and k != "epochs":
            trials *= len(grid(v))
    epochs = grid(searched.get("epochs"))
    return trials * (sum(epochs) if epochs else settings.get("base_config", {}).get("epochs", 0))


log = driver_log.read_text(errors="replace") if driver_log.is_file() else ""
n_train = [int(x) for x in re.findall(r": train (\d+) images /", log)]  # the driver's data line (study.run)
n_train = n_train[0] if n_train else 0
images, rows = 0, []
for exp in sorted(p for p in storage.iterdir() if p.is_dir()) if storage.is_dir() else []:
    meta = json.loads((exp / "study.json").read_text()) if (exp / "study.json").is_file() else {}
    settings = json.loads((exp / "settings.json").read_text()) if (exp / "settings.json").is_file() else {}
    epochs = sum(len({json.loads(x).get("epoch") for x in r.read_text().splitlines() if x.strip()})
                 for r in exp.glob("*/result.json"))
    images += epochs * n_train
    s = meta.get("summary") or {}  # study.json is written when the experiment ends (asha: unknown until then)
    row = {"name": exp.name, "finished": bool(meta), "trials": s.get("trials") or len(list(exp.glob("*/params.json"))),
           "epochs_run": epochs, "grid_epochs": grid_epochs(settings), "asha": bool(meta.get("asha", True)),
           "wall_s": meta.get("wall_seconds"), "resolution": settings.get("base_config", {}).get("resolution")}
    rows.append(row)
    emit("experiment", **row)
wall = end - start
done = [r for r in rows if r["finished"] and r["asha"] and r["grid_epochs"]]  # ASHA's share, where it finished
share = sum(r["epochs_run"] for r in done) / sum(r["grid_epochs"] for r in done) if done else 1.0
left = sum(max(0.0, r["grid_epochs"] * share - r["epochs_run"]) for r in rows if not r["finished"])
run = sum(r["epochs_run"] for r in rows)
projected = round(wall * (run + left) / run, 1) if run and left else None
study = {"exit_code": code, "seconds": round(wall, 1), "experiments": len(rows),
         "experiments_finished": sum(r["finished"] for r in rows), "n_train": n_train or None,
         "epochs_run": run, "grid_epochs": sum(r["grid_epochs"] for r in rows), "images_trained": images,
         "train_images_per_s": round(images / wall, 1) if wall else None,
         "asha_share_of_grid_epochs": round(share, 3) if done else None,
         "projected_wall_s": projected if projected is not None else (round(wall, 1) if rows else None)}
emit("study", **study)
smi = out / "smi.csv"
util = [float(x.split(",")[1]) for x in smi.read_text().splitlines() if x.count(",") >= 2] if smi.is_file() else []
if util:
    emit("nvidia-smi", samples=len(util), util_mean=round(statistics.mean(util), 1),
         util_median=statistics.median(util), share_ge_90=round(sum(u >= 90 for u in util) / len(util), 3))

# ---- the headline: stage A's figures beside stage B's, in one line ----
a = [json.loads(x) for x in (out / "a.jsonl").read_text().splitlines()] if (out / "a.jsonl").is_file() else []
single = next((x["images_per_s"] for x in a if x.get("kind") == "step" and x.get("recipe") == "default"
               and x.get("batch") == 32), None)
syncs = next((x for x in a if x.get("kind") == "syncs"), {})
all_done = bool(rows) and all(r["finished"] for r in rows)
emit("headline", single_trial_images_per_s_batch32=single, bar_single=12000,
     syncs_per_step=syncs.get("syncs_per_step"), syncs_measured_on=syncs.get("device"),
     study_wall_s=round(wall, 1) if all_done else None,
     projected_wall_s=None if all_done else study["projected_wall_s"],
     epochs_done=f"{run}/{study['grid_epochs']}", overall_images_per_s=study["train_images_per_s"],
     bars_study="<= 300 s at >= 25000 img/s", data=pack)
