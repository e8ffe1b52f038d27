"""What a results tree holds, one line per experiment (a quick look before the report):

    python -m analysis.summary RESULTS        # RESULTS: a folder, or s3://BUCKET/PREFIX[/EXPERIMENT]

prints each experiment's trials, epochs run against the budget and best selection score, then the
experiment folders that have no study.json yet (unfinished), and any damaged or missing trials.
Exit 0, or 2 with one `error:` line.
"""
from __future__ import annotations

import posixpath
import sys

from analysis.results.load import load_results
from study import cli
from study.errors import OK
from study.names import BEST_METRIC, METRIC, STUDY_FILE


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m analysis.summary", description=__doc__.split("\n")[0])
    ap.add_argument("results", metavar="RESULTS", help="STORAGE or STORAGE/EXPERIMENT, a folder or a URI")
    res = load_results(ap.parse_args(argv).results)
    for e in res.experiments:
        t = e.trials
        print(f"{e.name}: {len(t)} trials, {int(t['epochs_run'].sum())}/{int(t['epoch_budget'].sum())} epochs, "
              f"best {METRIC} {t[BEST_METRIC].max():.4f} ({e.path})")
    for d in res.unfinished:
        print(f"{posixpath.basename(d)}: no {STUDY_FILE} (unfinished or crashed), skipped")
    return OK


if __name__ == "__main__":
    sys.exit(main())
