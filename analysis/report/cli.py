"""The study report, from a results tree (a folder or s3://...):

    python -m analysis.report RESULTS --out DIR [--data ROOT] [--no-test] [--wandb PROJECT] [--tta VIEWS]

prints progress on stderr and, at the end, the path of DIR/report.html on stdout (analysis/report/build.py
says what it writes). RESULTS: one experiment (STORAGE/EXPERIMENT, e.g. results/quick) or a storage root
holding several, a local folder or where study.run's --storage wrote it (s3://BUCKET/PREFIX, gs://...,
read in place; only the checkpoints the report loads are copied here, to a temporary folder).
--data: the data set, a folder or an s3:// prefix copied once to the image cache (default: the
data_root each study.json recorded; none = the bundled sample). --no-test: stop at validation.
--wandb: also log the tables and figures as one W&B run. --tta: test-time views for the ensembles.
The test figures come from the study's confirmation stage (study.run --confirm-seeds,
STORAGE/confirm-*), else from the selected configuration's own trials, and from the ensembles the
report selects. A usage mistake prints one `error: ...` line, exit 2; an output that cannot be
written, exit 3.
"""
from __future__ import annotations

import sys
from pathlib import Path

from analysis.report.build import build
from study import cli
from study.errors import OK


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    ap.add_argument("results", metavar="RESULTS", help="STORAGE/EXPERIMENT (e.g. results/quick) or STORAGE; a folder "
                    "or a URI (s3://BUCKET/PREFIX, gs://...)")
    ap.add_argument("--out", required=True, type=Path, help="folder for report.html, report.md, trials.csv, figures")
    ap.add_argument("--data", default=None, help="data set folder or s3:// prefix (default: the one study.json recorded)")
    ap.add_argument("--no-test", dest="test", action="store_false", help="stop at validation: do not read the test split")
    ap.add_argument("--wandb", default=None, metavar="PROJECT", help="log tables and figures to this W&B project")
    ap.add_argument("--tta", default="none", metavar="VIEWS", help="test-time views for the ensembles: none (default), "
                    "all, or names of study/data/augment.py TTA_VIEWS joined by commas")
    args = ap.parse_args(argv)
    from study.engine.infer import parse_views
    print(build(args.results, args.out, args.data, args.test, args.wandb, parse_views(args.tta)))
    return OK


if __name__ == "__main__":
    sys.exit(main())
