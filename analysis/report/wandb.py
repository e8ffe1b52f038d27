"""Log the report's tables (wandb.Table) and figures (wandb.Image) as one W&B run.

Called by `python -m analysis.report ... --wandb PROJECT`. WANDB_MODE=offline writes the run
under WANDB_DIR (default: the report's folder)/wandb/offline-run-* with no network; sync it later
with `wandb sync`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd


def _table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """W&B tables want one type per column: text for anything that is not a plain number."""
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    return out


def log_report(project: str, tables: dict[str, pd.DataFrame], figures: list[Path], summary: dict, out: Path,
               group: str | None = None) -> str:
    """One run (job_type "analysis") in the study's W&B group (its study id), beside its trials; returns its folder."""
    import wandb

    run = wandb.init(project=project, job_type="analysis", group=group, name=f"report-{out.name}", config=summary,
                     dir=os.environ.get("WANDB_DIR") or str(out), reinit="finish_previous")
    try:
        key = lambda name: re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80]
        run.log({f"tables/{key(name)}": wandb.Table(dataframe=_table_frame(df)) for name, df in tables.items()})
        run.log({f"figures/{Path(p).stem}": wandb.Image(str(p)) for p in figures})
        for k, v in summary.items():
            run.summary[k] = v
        where = str(Path(run.dir).parent)
    finally:
        run.finish()
    return where
