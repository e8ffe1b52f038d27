"""Run the study: each question as a Ray Tune experiment, locally or on a cluster (the `ray submit` script too).

    python -m study.run --experiment quick                      # what `make study` runs
    python -m study.run --experiment all --data ~/chest_xray --storage results --gpus-per-trial 0.25
    ray submit cluster/cluster.yaml study/run.py -- --experiment all --address auto \
        --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m study.run --experiment all \
        --address auto --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25

This file is the command line only (its flags and exit codes); study/tune/driver.py runs the study.
Several experiments (all, or names joined by commas) on the same data run at once from one queue
of trials. The study prints Ray's trial table while one experiment runs on a terminal (one line per
finished trial when several run at once, or off a terminal: a log file, a Ray Job, CI), then one line
per experiment: trials (errored and diverged counted apart), epochs run against the budget, the best
score and its configuration, and where the results are (STORAGE/EXPERIMENT/: one folder per trial
with result.json, progress.csv and checkpoints, settings.json (what a --resume must repeat),
study.json describing the finished experiment for `python -m analysis.report`, and
skipped_files.json listing the images left out), then one line per errored or diverged trial.

Exit status (study/errors.py): 0 when every trial finished (ran its budget, or was stopped by ASHA,
by early stopping, or by diverging), 1 when any trial errored, 2 for a usage or data mistake: one
`error: ...` line naming the flag, field, path or class, before Ray starts or a folder is made; 3 when
a results file cannot be written; 130 when interrupted (Ctrl-C or SIGTERM: `--resume` continues).
On a cluster (--address, or inside a Ray Job) --data is required: the bundled sample is a smoke
test, not a study. --data is a folder on the head node or an s3:// (gs://...) prefix, which the
driver copies once to the node's cache (study/data/fetch.py); only the driver reads images.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python study/run.py` and `ray submit ... study/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if __name__ == "__main__":
    # The driver starts or joins Ray itself. Once it shuts Ray down (Ctrl-C while experiments run in threads),
    # a thread's next Ray call must fail, not start a new local Ray nobody stops (Ray reads these at import).
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_INIT", "1")

# imported after the sys.path and Ray settings above
import search_spaces
from study import cli
from study.errors import INTERRUPTED
from study.tune.driver import run_study


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = cli.Parser(prog="python -m study.run", description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="quick", help=f"one of {', '.join(search_spaces.NAMES)}, several joined by commas, "
                    "or all (experiments on the same data run at once)")
    ap.add_argument("--data", default=None, help="data set: a folder, or an s3:// prefix copied once to the node's "
                    "cache (default: the bundled sample; required with --address and in a Ray Job)")
    ap.add_argument("--storage", default="results", help="results root: local dir, NFS path or s3://bucket/prefix")
    ap.add_argument("--resolution", type=cli.positive_int, default=None, help="input px (default: the space's, else 200)")
    ap.add_argument("--max-epochs", type=cli.positive_int, default=None, help="epoch budget per trial (default: the space's)")
    ap.add_argument("--num-samples", type=cli.positive_int, default=None, help="samples of the space (default: the space's)")
    ap.add_argument("--max-train-images", type=cli.positive_int, default=None,
                    help="train on a stratified subset (CPU studies)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="fix a TrainConfig field for every trial (not one the experiment searches)")
    ap.add_argument("--strict", action="store_true", help="an unreadable or misnamed image is an error, not a skip")
    ap.add_argument("--cpus-per-trial", type=cli.positive_float, default=1.0)
    ap.add_argument("--gpus-per-trial", type=cli.nonnegative_float, default=None,
                    help="GPUs per trial, fractions pack trials on one GPU (default: 1 if the cluster has GPUs, else 0)")
    ap.add_argument("--max-concurrent", type=cli.nonnegative_int, default=0,
                    help="cap on trials at once per experiment (0: as resources allow)")
    ap.add_argument("--max-failures", type=cli.nonnegative_int, default=2,
                    help="restarts of a crashed trial from its checkpoint (divergence and user errors are not retried)")
    ap.add_argument("--address", default=None, help="Ray address; omit to start Ray here, 'auto' to join a cluster")
    ap.add_argument("--confirm-seeds", type=cli.nonnegative_int, default=None,
                    help="retrain the selected binary and 3-class configurations with seeds 0..N-1 as the study's last "
                    "stage (STORAGE/confirm-*; the report's test figures use them); default 3 with --data, else 0")
    ap.add_argument("--wandb-project", default=None,
                    help="log every trial to this W&B project (group = the study id, job_type = experiment)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted study in --storage")
    ap.add_argument("--overwrite", action="store_true", help="delete an existing experiment folder first")
    return ap.parse_args(argv)


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_study(args, [search_spaces.load(n) for n in search_spaces.expand(args.experiment)])


if __name__ == "__main__":
    code = main()
    if code == INTERRUPTED:
        # The experiments' daemon threads may still be inside Tune when the interpreter exits; their next call to
        # the shut-down Ray core worker ends the process with exit 1 from C++. The study is saved: leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
