"""Run the study: each seed question as a Ray Tune experiment with ASHA, locally or on a cluster.

    python -m study.run --experiment quick                      # what `make study` runs
    python -m study.run --experiment all --data ~/chest_xray --storage results --gpus-per-trial 0.25
    ray submit cluster/cluster.yaml study/run.py -- --experiment all --address auto \
        --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m study.run --experiment all \
        --address auto --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25

prints Ray's trial table while running, then one line per experiment: trials, epochs run against
the budget, the best validation accuracy and its configuration, and where the results are
(STORAGE/EXPERIMENT/: one folder per trial with result.json, progress.csv and a checkpoint, plus
study.json describing the experiment for `python -m analysis.report`).
On a cluster (--address, or inside a Ray Job) --data is required: the bundled sample is a smoke
test, not a study. --data is a folder on the head node or an s3:// (gs://...) prefix, which the
driver copies once to the node's cache (study/fetch.py); only the driver reads images.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python study/run.py` and `ray submit ... study/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402
from pyarrow import fs as pafs  # noqa: E402

import search_spaces  # noqa: E402
from study.config import BEST_METRIC, EARLY_STOPPED, METRIC, MODE, STUDY_FILE, TrainConfig, UserError  # noqa: E402
from study.data import prepare  # noqa: E402
from study.tuner import build_tuner, can_restore, make_searcher, restore_tuner, storage_uri, wandb_callbacks  # noqa: E402

IN_RAY_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for a Ray Job's entrypoint only


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m study.run", description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="quick", help=f"one of {', '.join(search_spaces.NAMES)}, or all")
    ap.add_argument("--data", default=None, help="data set: a folder, or an s3:// prefix copied once to the node's "
                    "cache (default: the bundled sample; required with --address and in a Ray Job)")
    ap.add_argument("--storage", default="results", help="results root: local dir, NFS path or s3://bucket/prefix")
    ap.add_argument("--resolution", type=int, default=None, help="input px (default: the space's, else 200)")
    ap.add_argument("--max-epochs", type=int, default=None, help="epoch budget per trial (default: the space's)")
    ap.add_argument("--num-samples", type=int, default=None, help="samples of the space (default: the space's)")
    ap.add_argument("--max-train-images", type=int, default=None, help="train on a stratified subset (CPU studies)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fix a TrainConfig field for every trial")
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument("--gpus-per-trial", type=float, default=None,
                    help="GPUs per trial, fractions pack trials on one GPU (default: 1 if the cluster has GPUs, else 0)")
    ap.add_argument("--max-concurrent", type=int, default=0, help="cap on trials at once (0: as resources allow)")
    ap.add_argument("--max-failures", type=int, default=2, help="restarts of a crashed trial from its checkpoint")
    ap.add_argument("--address", default=None, help="Ray address; omit to start Ray here, 'auto' to join a cluster")
    ap.add_argument("--wandb-project", default=None, help="log every trial to this W&B project (group = experiment)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted study in --storage")
    ap.add_argument("--overwrite", action="store_true", help="delete an existing experiment folder first")
    return ap.parse_args(argv)


def _write(uri: str, text: str) -> None:
    filesystem, path = pafs.FileSystem.from_uri(uri)
    with filesystem.open_output_stream(path) as f:
        f.write(text.encode())


def _exists(uri: str) -> bool:
    filesystem, path = pafs.FileSystem.from_uri(uri)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def experiment_plan(name: str, args: argparse.Namespace) -> tuple[TrainConfig, dict, object]:
    """-> (base config, Ray param_space, search space module) for one experiment."""
    space = search_spaces.load(name)
    fixed = {**space.FIXED, "epochs": args.max_epochs or space.MAX_EPOCHS}
    if args.resolution:
        fixed["resolution"] = args.resolution
    if args.max_train_images is not None:
        fixed["max_train_images"] = args.max_train_images
    base = TrainConfig.from_strings(args.set, TrainConfig.from_overrides(fixed))
    return base, {**base.to_dict(), **space.SPACE}, space


def summarize(name: str, results, base: TrainConfig, space, path: str) -> dict:
    epochs = [int(r.metrics.get("training_iteration", 0)) for r in results if r.metrics]
    budget = base.epochs * len(results)
    early = sum(1 for r in results if r.metrics and r.metrics.get(EARLY_STOPPED))
    asha_stopped = sum(1 for e, r in zip(epochs, results) if e < base.epochs and not r.metrics.get(EARLY_STOPPED))
    out = {"trials": len(results), "errors": len(results.errors), "epochs_run": sum(epochs), "epochs_budget": budget,
           "stopped_by_asha": asha_stopped if space.ASHA else 0, "stopped_by_patience": early}
    try:
        best = results.get_best_result(metric=BEST_METRIC, mode=MODE, scope="last")
        out.update({"best_" + METRIC: best.metrics[BEST_METRIC], "best_config": {k: best.config[k] for k in space.SPACE},
                    "best_trial_path": best.path})
    except RuntimeError:  # every trial errored
        pass
    best_txt = (f"best {METRIC} {out['best_' + METRIC]:.4f} ({', '.join(f'{k}={v}' for k, v in out['best_config'].items())})"
                if "best_config" in out else "no successful trial")
    print(f"{name}: {out['trials']} trials ({out['errors']} errored), {out['epochs_run']}/{budget} epochs run "
          f"(ASHA stopped {out['stopped_by_asha']}, early stopping {early}), {best_txt}, results in {path}", flush=True)
    return out


def run_experiment(name: str, args: argparse.Namespace, data_cache: dict) -> dict:
    base, param_space, space = experiment_plan(name, args)
    key = base.data_key()
    if key not in data_cache:
        data_cache[key] = prepare(args.data, base)
        print(data_cache[key].description, flush=True)
    data = data_cache[key]
    root = storage_uri(args.storage)
    path = f"{root.rstrip('/')}/{name}"
    gpus = args.gpus_per_trial
    if gpus is None:
        has_gpu = bool(ray.cluster_resources().get("GPU"))
        if args.address and not has_gpu:  # an autoscaling cluster starts GPU workers only when trials ask for GPUs
            raise UserError("--address given but the cluster has no GPU yet: pass --gpus-per-trial (1, or 0.25 to pack "
                            "4 trials per GPU) so the autoscaler starts GPU workers, or --gpus-per-trial 0 for CPU only")
        gpus = 1.0 if has_gpu else 0.0
    resources = {"cpu": args.cpus_per_trial, "gpu": gpus}
    if args.resume and can_restore(path):
        tuner = restore_tuner(path, data, resources)
    else:
        if _exists(path) and "://" not in path:
            if not args.overwrite:
                raise UserError(f"{path} exists; pass --resume to continue it, --overwrite to start again, or another --storage")
            shutil.rmtree(path)
        tuner = build_tuner(data, param_space, name=name, storage=root, max_epochs=base.epochs, asha=space.ASHA,
                            num_samples=args.num_samples or space.NUM_SAMPLES, resources=resources,
                            callbacks=wandb_callbacks(args.wandb_project, name), max_failures=args.max_failures,
                            max_concurrent=args.max_concurrent, search_alg=make_searcher(space))
    meta = {"experiment": name, "question": space.QUESTION, "doc": space.__doc__, "command": " ".join(sys.argv),
            "data_root": (args.data if "://" in args.data else str(Path(args.data).resolve())) if args.data else None,
            "data": data.description,
            "n_train": len(data.train.labels3), "n_val": len(data.val.labels3), "base_config": base.to_dict(),
            "searched": sorted(space.SPACE), "asha": space.ASHA, "max_epochs": base.epochs,
            "num_samples": args.num_samples or space.NUM_SAMPLES, "resources": resources, "ray_version": ray.__version__,
            "wandb": {"project": args.wandb_project, "group": name} if args.wandb_project else None,
            "epoch_budgets": list(getattr(space, "EPOCH_BUDGETS", ())), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.time()
    results = tuner.fit()
    meta["summary"] = summarize(name, results, base, space, path)
    meta["wall_seconds"] = round(time.time() - t0, 1)
    _write(f"{path}/{STUDY_FILE}", json.dumps(meta, indent=1, default=str))
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if IN_RAY_JOB in os.environ and not args.address:
            args.address = "auto"  # a Ray Job's entrypoint joins the job's cluster (Ray sets RAY_ADDRESS for it)
        if args.address and not args.data:
            raise UserError("--data missing: on a cluster (--address, or in a Ray Job) the study would train on the "
                            "bundled 361-image sample, a smoke test and not a study; pass --data s3://BUCKET/chest_xray "
                            "or a folder present on the head node")
        names = search_spaces.expand(args.experiment)
        for n in names:
            experiment_plan(n, args)  # every space and --set checked before Ray starts
        if args.address:
            ray.init(address=args.address)
        elif not ray.is_initialized():
            # "local": always a new Ray instance here, never one another process started on this machine
            ray.init(address="local", include_dashboard=False, configure_logging=False)
        data_cache: dict = {}
        for name in names:
            run_experiment(name, args, data_cache)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # One checkpoint kept per trial forces a state snapshot per report; that is intended here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    sys.exit(main())
