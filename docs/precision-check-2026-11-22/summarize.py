"""Paired fp32 vs bf16 comparison of the runs in this folder (written by run.sh).

    python docs/precision-check-2026-11-22/summarize.py [DIR]

Reads DIR/{fp32,bf16}_s{seed}/metrics.json (one record per epoch, as study.train writes them)
and prints, per seed, best and last-epoch validation accuracy and AUC for both precisions, then
the paired bf16 - fp32 differences: mean, sample std, and a 95 % t interval over the seeds.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from scipy import stats

HERE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent


def runs(precision: str) -> dict[int, list[dict]]:
    out = {}
    for d in sorted(HERE.glob(f"{precision}_s*")):
        out[int(d.name.split("_s")[1])] = json.loads((d / "metrics.json").read_text())
    return out


def summary(records: list[dict]) -> dict:
    best = max(records, key=lambda r: r["val_accuracy"])  # first epoch at the maximum, as study.train keeps
    return {"best_acc": best["val_accuracy"], "best_epoch": best["epoch"], "best_auc": max(r["val_auc"] for r in records),
            "last_acc": records[-1]["val_accuracy"], "epoch4_acc": records[3]["val_accuracy"] if len(records) > 3 else None,
            "epoch_s": statistics.median(r["epoch_seconds"] for r in records)}


def main() -> None:
    fp32, bf16 = runs("fp32"), runs("bf16")
    seeds = sorted(set(fp32) & set(bf16))
    rows = {s: (summary(fp32[s]), summary(bf16[s])) for s in seeds}
    keys = ["best_acc", "best_auc", "last_acc", "epoch4_acc", "epoch_s"]
    print("| seed | " + " | ".join(f"fp32 {k} | bf16 {k}" for k in keys) + " |")
    print("|" + " ---: |" * (1 + 2 * len(keys)))
    for s in seeds:
        a, b = rows[s]
        print(f"| {s} | " + " | ".join(f"{a[k]:.4f} | {b[k]:.4f}" for k in keys) + " |")
    print()
    for k in keys:
        d = [rows[s][1][k] - rows[s][0][k] for s in seeds]
        fa = [rows[s][0][k] for s in seeds]
        m, sd = statistics.mean(d), statistics.stdev(d)
        half = stats.t.ppf(0.975, len(d) - 1) * sd / len(d) ** 0.5
        print(f"{k}: fp32 mean {statistics.mean(fa):.4f} (seed std {statistics.stdev(fa):.4f}); "
              f"bf16 - fp32 mean {m:+.4f}, std {sd:.4f}, 95% CI [{m - half:+.4f}, {m + half:+.4f}] over {len(d)} seeds")


if __name__ == "__main__":
    main()
