"""Train one configuration, no Ray:

    python -m study.train [--data ROOT] [--set key=value ...] --out DIR [--strict]

trains one config (no --data: the bundled sample) with study.engine.loop.fit, prints one line per
epoch and writes DIR/checkpoint.pt (study/engine/checkpoint.py: the kept epoch's weights, the last epoch's
model, optimizer and lr schedule for resuming, the config and every epoch's metrics) and
DIR/metrics.json (the same per-epoch records, for reading). Exit 0 trained, 1 diverged (no model
kept), 2 a usage or data mistake (one `error:` line).
"""
from __future__ import annotations

import json
import sys

from study import checks, cli
from study.config import TrainConfig
from study.data.layout import skipped_note
from study.data.splits import prepare
from study.engine import checkpoint as ckpt_io
from study.engine.device import pick_device, resolve_precision
from study.engine.loop import TrainState, fit
from study.errors import OK, PARTIAL
from study.names import (
    DIVERGED,
    EARLY_STOPPED,
    EPOCH,
    EPOCH_SECONDS,
    METRIC,
    METRICS_FILE,
    SKIPPED_FILE,
    STATUS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_AUC,
    VAL_LOSS,
    VAL_SHIFT_AUC,
    VAL_SHIFT_BACC,
    WHY,
)
from study.storage import write_text


def format_record(r: dict) -> str:
    if r.get(STATUS) == DIVERGED:
        return f"epoch {r[EPOCH]:3d}  diverged: {r[WHY]}  {r[EPOCH_SECONDS]:.1f}s"
    return (f"epoch {r[EPOCH]:3d}  train loss {r[TRAIN_LOSS]:.4f} acc {r[TRAIN_ACCURACY]:.4f}  "
            f"val loss {r[VAL_LOSS]:.4f} acc {r[VAL_ACCURACY]:.4f} auc {r[VAL_AUC]:.4f}  "
            f"stress bacc {r[VAL_SHIFT_BACC]:.4f} auc {r[VAL_SHIFT_AUC]:.4f}  {r[EPOCH_SECONDS]:.1f}s"
            + ("  (early stop)" if r[EARLY_STOPPED] else ""))


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m study.train", description="Train one configuration.")
    ap.add_argument("--data", default=None, help="data set folder (default: the bundled sample)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a TrainConfig field, e.g. --set lr=0.01 --set filters=[16,32,64,64]")
    ap.add_argument("--out", required=True, help="output folder for checkpoint.pt and metrics.json")
    ap.add_argument("--strict", action="store_true", help="an unreadable or misnamed image is an error, not a skip")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_strings(args.set)
    out = checks.writable_folder("--out", args.out)
    data = prepare(args.data, cfg, strict=args.strict)
    device = pick_device()
    print(data.description, f"| device {device}, {resolve_precision(cfg, device)}", flush=True)
    write_text(out / SKIPPED_FILE, json.dumps(data.skipped, indent=1))
    if data.skipped:
        print(skipped_note(len(data.skipped), out / SKIPPED_FILE), flush=True)

    def on_epoch(rec: dict, state: TrainState) -> None:
        print(format_record(rec), flush=True)
        if rec[STATUS] != DIVERGED:  # keep the records, never the broken weights
            state.save(out)
        write_text(out / METRICS_FILE, json.dumps(state.records, indent=1))

    state = fit(cfg, data, on_epoch, device=device)
    if (last := state.records[-1])[STATUS] == DIVERGED:
        ckpt_io.path_of(out).unlink(missing_ok=True)  # no model to predict with
        print(f"diverged at epoch {last[EPOCH]} ({last[WHY]}) with lr={cfg.lr:g}, {cfg.optimizer}: "
              f"stopped, no model kept; {out}/{METRICS_FILE} has the epochs. Try a smaller lr.", file=sys.stderr)
        return PARTIAL
    print(f"best {METRIC} {state.best_metric:.4f} at epoch {state.best_epoch}; wrote {out}/{ckpt_io.FILE}, {METRICS_FILE}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
