"""Run the study: each seed question as a Ray Tune experiment with ASHA, locally or on a cluster.

    python -m study.run --experiment quick                      # what `make study` runs
    python -m study.run --experiment all --data ~/chest_xray --storage results --gpus-per-trial 0.25
    ray submit cluster/cluster.yaml study/run.py -- --experiment all --address auto \
        --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m study.run --experiment all \
        --address auto --data s3://BUCKET/chest_xray --storage s3://BUCKET/study --gpus-per-trial 0.25

Several experiments (all, or names joined by commas) on the same data run at once from one queue
of trials (run_together); on a CPU that changes little, on a shared GPU it fills the gaps between
experiments and their tails. The study prints Ray's trial table while one experiment runs (one
line per finished trial when several run at once, or off a terminal), then one line per
experiment: trials (errored and diverged counted apart), epochs run against the budget, the best
score and its configuration, and where the results are (STORAGE/EXPERIMENT/: one folder per
trial with result.json, progress.csv and a checkpoint, study.json describing the experiment for
`python -m analysis.report`, and skipped_files.json listing the images left out), then one line
per errored or diverged trial.

Exit status: 0 when every trial finished (ran its budget, or was stopped by ASHA, by early
stopping, or by diverging), 1 when any trial errored, 2 for a usage or data mistake: one
`error: ...` line naming the flag, field, path or class, before Ray starts or a folder is made.
On a cluster (--address, or inside a Ray Job) --data is required: the bundled sample is a smoke
test, not a study. --data is a folder on the head node or an s3:// (gs://...) prefix, which the
driver copies once to the node's cache (study/fetch.py); only the driver reads images.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # `python study/run.py` and `ray submit ... study/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if __name__ == "__main__":
    # main() starts or joins Ray itself. Once it shuts Ray down (Ctrl-C while experiments run in threads),
    # a thread's next Ray call must fail, not start a new local Ray nobody stops (Ray reads these at import).
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_INIT", "1")

import ray  # noqa: E402
import ray.tune  # noqa: E402

import search_spaces  # noqa: E402
from study import checks  # noqa: E402
from study.config import (BEST_METRIC, DIVERGED, DONE_STATUSES, EARLY_STOPPED, EPOCH, ERROR_MESSAGE, ERRORED,  # noqa: E402
                          METRIC, MODE, SKIPPED_FILE, STOPPED_BY_ASHA, STUDY_FILE, TrainConfig, UserError,
                          parse_pairs, trial_budget, trial_status)
from study.data import prepare, skipped_note  # noqa: E402
from study.engine.divergence import WHY  # noqa: E402
from study.confirm import plans as confirm_plans, trial_rows  # noqa: E402
from study.select import config_key  # noqa: E402
from study.progress import TrialProgress  # noqa: E402
from study.storage import absolute, exists, is_uri, read_text, remove_tree, write_text  # noqa: E402
from study.tuner import build_tuner, can_restore, make_searcher, restore_tuner, wandb_callbacks  # noqa: E402

IN_RAY_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for a Ray Job's entrypoint only


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = checks.Parser(prog="python -m study.run", description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="quick", help=f"one of {', '.join(search_spaces.NAMES)}, several joined by commas, "
                    "or all (experiments on the same data run at once)")
    ap.add_argument("--data", default=None, help="data set: a folder, or an s3:// prefix copied once to the node's "
                    "cache (default: the bundled sample; required with --address and in a Ray Job)")
    ap.add_argument("--storage", default="results", help="results root: local dir, NFS path or s3://bucket/prefix")
    ap.add_argument("--resolution", type=checks.positive_int, default=None, help="input px (default: the space's, else 200)")
    ap.add_argument("--max-epochs", type=checks.positive_int, default=None, help="epoch budget per trial (default: the space's)")
    ap.add_argument("--num-samples", type=checks.positive_int, default=None, help="samples of the space (default: the space's)")
    ap.add_argument("--max-train-images", type=checks.positive_int, default=None,
                    help="train on a stratified subset (CPU studies)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="fix a TrainConfig field for every trial (not one the experiment searches)")
    ap.add_argument("--strict", action="store_true", help="an unreadable or misnamed image is an error, not a skip")
    ap.add_argument("--cpus-per-trial", type=checks.positive_float, default=1.0)
    ap.add_argument("--gpus-per-trial", type=checks.nonnegative_float, default=None,
                    help="GPUs per trial, fractions pack trials on one GPU (default: 1 if the cluster has GPUs, else 0)")
    ap.add_argument("--max-concurrent", type=checks.nonnegative_int, default=0,
                    help="cap on trials at once per experiment (0: as resources allow)")
    ap.add_argument("--max-failures", type=checks.nonnegative_int, default=2,
                    help="restarts of a crashed trial from its checkpoint (divergence and user errors are not retried)")
    ap.add_argument("--address", default=None, help="Ray address; omit to start Ray here, 'auto' to join a cluster")
    ap.add_argument("--confirm-seeds", type=checks.nonnegative_int, default=None,
                    help="retrain the selected binary and 3-class configurations with seeds 0..N-1 as the study's last "
                    "stage (STORAGE/confirm-*; the report's test figures use them); default 3 with --data, else 0")
    ap.add_argument("--wandb-project", default=None,
                    help="log every trial to this W&B project (group = the study id, job_type = experiment)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted study in --storage")
    ap.add_argument("--overwrite", action="store_true", help="delete an existing experiment folder first")
    return ap.parse_args(argv)


def experiment_plan(name: str, args: argparse.Namespace) -> tuple[TrainConfig, dict, object]:
    """-> (base config, Ray param_space, search space module) for one experiment."""
    space = search_spaces.load(name)
    searched = sorted(set(parse_pairs(args.set)) & set(space.SPACE))
    if searched:
        k = searched[0]
        raise UserError(f"{k} is searched by {name}; drop --set {k} or pick a question that does not search it")
    searched = dict(space.SPACE)
    if "epochs" in searched:  # each trial's own budget; --max-epochs scales the grid so that its longest is N
        grid = search_spaces.candidates("epochs", searched["epochs"])
        if args.max_epochs:
            grid = sorted({max(1, round(e * args.max_epochs / max(grid))) for e in grid})
            searched["epochs"] = ray.tune.grid_search(grid)
        epochs = max(grid)  # ASHA's max_t and the base config's
    else:
        epochs = args.max_epochs or space.MAX_EPOCHS
    fixed = {**space.FIXED, "epochs": epochs}
    if args.resolution is not None:
        fixed["resolution"] = args.resolution
    if args.max_train_images is not None:
        fixed["max_train_images"] = args.max_train_images
    base = TrainConfig.from_strings(args.set, TrainConfig.from_overrides(fixed))
    search_spaces.check_space(name, searched, base)  # with the flags and --set: every trial's config is valid
    return base, {**base.to_dict(), **searched}, space


def last_line(error) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def summarize(name: str, results, base: TrainConfig, space, path: str) -> dict:
    """The experiment's outcome: one line printed (errored and diverged trials counted apart from
    ASHA's stops), one more per errored or diverged trial; the same in study.json's "summary"."""
    trials = []
    for r in results:
        last = r.metrics or {}
        budget = trial_budget(r.config or {}, base.epochs)
        status = trial_status(last, budget, r.error is not None, bool(space.ASHA))
        why = None
        if r.error is not None:
            why = last_line(r.error)
        elif status == DIVERGED:
            why = f"diverged at epoch {last.get(EPOCH)}: {last.get(WHY)}"
        elif status == ERRORED:
            why = last.get(ERROR_MESSAGE) or f"stopped after {last.get(EPOCH, 0)} of {budget} epochs"
        trials.append({"trial": Path(r.path).name, "status": status, "epochs": int(last.get(EPOCH) or 0), "budget": budget,
                       "best": last.get(BEST_METRIC), "config": r.config, "path": r.path, "why": why})
    count = {s: sum(t["status"] == s for t in trials) for s in (*DONE_STATUSES, ERRORED)}
    out = {"trials": len(trials), "errors": count[ERRORED], "diverged": count[DIVERGED],
           "epochs_run": sum(t["epochs"] for t in trials), "epochs_budget": sum(t["budget"] for t in trials),
           "stopped_by_asha": count[STOPPED_BY_ASHA], "stopped_by_patience": count[EARLY_STOPPED], "statuses": count,
           "errored_trials": [{"trial": t["trial"], "error": t["why"]} for t in trials if t["status"] == ERRORED],
           "diverged_trials": [{"trial": t["trial"], "why": t["why"]} for t in trials if t["status"] == DIVERGED]}
    ranked = [t for t in trials if t["status"] != ERRORED and t["status"] != DIVERGED
              and isinstance(t["best"], (int, float)) and math.isfinite(t["best"])]
    if ranked:
        best = (max if MODE == "max" else min)(ranked, key=lambda t: t["best"])
        out.update({"best_" + METRIC: best["best"], "best_config": {k: best["config"][k] for k in space.SPACE},
                    "best_trial_path": best["path"]})
    best_txt = (f"best {METRIC} {out['best_' + METRIC]:.4f} ({', '.join(f'{k}={v}' for k, v in out['best_config'].items())})"
                if "best_config" in out else "no successful trial")
    print(f"{name}: {out['trials']} trials ({out['errors']} errored, {out['diverged']} diverged), {out['epochs_run']}/"
          f"{out['epochs_budget']} epochs run (ASHA stopped {out['stopped_by_asha']}, early stopping "
          f"{out['stopped_by_patience']}), {best_txt}, results in {path}", flush=True)
    for t in trials:
        if t["status"] in (ERRORED, DIVERGED):
            print(f"  {t['status']}: {t['trial']}: {t['why']}", flush=True)
    return out


def target(name: str, args: argparse.Namespace) -> str:
    """STORAGE/EXPERIMENT; an existing one needs --resume or --overwrite (checked before Ray starts)."""
    path = f"{absolute(args.storage).rstrip('/')}/{name}"
    if not (args.resume and can_restore(path)) and exists(path) and not args.overwrite:
        raise UserError(f"{path} exists; pass --resume to continue it, --overwrite to start again, or another --storage")
    return path


def study_record(args: argparse.Namespace, names: list[str]) -> dict:
    """STORAGE/study.json: the study's id (a UUID, kept by every later run into the same storage, --resume
    included: W&B groups all of a study's runs by it) and the experiments run into it."""
    uri = f"{absolute(args.storage).rstrip('/')}/{STUDY_FILE}"
    try:
        old = json.loads(read_text(uri)) if exists(uri) else {}
    except ValueError:
        raise UserError(f"{uri}: damaged (not JSON); delete it (a new study id is made) or restore it") from None
    rec = {"study_id": old.get("study_id") or uuid.uuid4().hex, "created": old.get("created") or time.strftime(
        "%Y-%m-%d %H:%M:%S"), "experiments": sorted(set(old.get("experiments", [])) | set(names))}
    write_text(uri, json.dumps(rec, indent=1))
    return rec


def trial_resources(args: argparse.Namespace) -> dict:
    """Ray resources of one trial (Ray is up): --gpus-per-trial, else 1 GPU where the cluster has GPUs."""
    gpus = args.gpus_per_trial
    if gpus is None:
        has_gpu = bool(ray.cluster_resources().get("GPU"))
        if args.address and not has_gpu:  # an autoscaling cluster starts GPU workers only when trials ask for GPUs
            raise UserError("--address given but the cluster has no GPU yet: pass --gpus-per-trial (1, or 0.25 to pack "
                            "4 trials per GPU) so the autoscaler starts GPU workers, or --gpus-per-trial 0 for CPU only")
        gpus = 1.0 if has_gpu else 0.0
    return {"cpu": args.cpus_per_trial, "gpu": gpus}


def run_experiment(name: str, args: argparse.Namespace, data_cache: dict, study: dict,
                   plan: tuple[TrainConfig, dict, object], resources: dict, shared: dict,
                   together: bool = False) -> tuple[dict, list[dict]]:
    """Run (or resume) one experiment; -> (its study.json, study.select rows of its trials).
    `shared`: the study's trainables (study.tuner._trainable); `together`: other experiments run at
    the same time, so Ray's trial table (one per experiment, interleaved) gives way to one line per trial."""
    base, param_space, space = plan
    data = data_cache[base.data_key()]
    root = absolute(args.storage)
    path = target(name, args)
    callbacks = wandb_callbacks(args.wandb_project, study["study_id"], name)
    if together or not sys.stdout.isatty():  # a log file, a Ray Job, CI: one line per finished trial
        callbacks.append(TrialProgress(name, base.epochs, bool(space.ASHA)))
    if args.resume and can_restore(path):
        print(f"{name}: resuming from {path} (finished trials are kept, not run again)", flush=True)
        tuner = restore_tuner(path, data, resources, shared=shared)  # Ray keeps the callbacks the experiment started with
    else:
        if exists(path):
            remove_tree(path)  # --overwrite, or a confirmation stage of another selection (target() refused it otherwise)
        tuner = build_tuner(data, param_space, name=name, storage=root, max_epochs=base.epochs, asha=space.ASHA,
                            num_samples=args.num_samples or space.NUM_SAMPLES, resources=resources,
                            callbacks=callbacks, max_failures=args.max_failures,
                            max_concurrent=args.max_concurrent, search_alg=make_searcher(space), shared=shared,
                            verbose=0 if together else 1)
    write_text(f"{path}/{SKIPPED_FILE}", json.dumps(data.skipped, indent=1))
    if data.skipped:
        print(skipped_note(len(data.skipped), f"{path}/{SKIPPED_FILE}"), flush=True)
    meta = {"experiment": name, "question": space.QUESTION, "doc": space.__doc__, "command": " ".join(sys.argv),
            "data_root": (args.data if is_uri(args.data) else str(Path(args.data).resolve())) if args.data else None,
            "data": data.description,
            "n_train": len(data.train.labels3), "n_val": len(data.val.labels3), "base_config": base.to_dict(),
            "searched": sorted(space.SPACE), "asha": space.ASHA, "max_epochs": base.epochs,
            "num_samples": args.num_samples or space.NUM_SAMPLES, "resources": resources, "ray_version": ray.__version__,
            "study_id": study["study_id"],
            "wandb": {"project": args.wandb_project, "group": study["study_id"], "job_type": name}
            if args.wandb_project else None, "confirms": getattr(space, "CONFIRMS", None),
            "epoch_budgets": list(getattr(space, "EPOCH_BUDGETS", ())), "skipped_files": len(data.skipped),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.time()
    results = tuner.fit()
    meta["summary"] = summarize(name, results, base, space, path)
    meta["wall_seconds"] = round(time.time() - t0, 1)
    write_text(f"{path}/{STUDY_FILE}", json.dumps(meta, indent=1, default=str))
    return meta, trial_rows(name, results)


def run_together(names: list[str], args: argparse.Namespace, data_cache: dict, study: dict, plans: dict,
                 resources: dict, shared: dict) -> list[tuple[dict, list[dict]]]:
    """One queue for the study: the experiments on one data set all run at once, each its own Tuner (its
    folder, searcher, ASHA rungs, W&B job type and --resume) in a thread of this driver, so a slot
    freed in one experiment (its tail, an ASHA stop) goes to another's next trial and nothing waits
    between experiments. Experiments on other data (another resolution) run as the next group.
    Ctrl-C ends the study at once; --resume continues from the experiments' last saved state.
    -> run_experiment's outcome per experiment, in `names` order."""
    groups: dict = {}
    for n in names:
        groups.setdefault(plans[n][0].data_key(), []).append(n)
    done: dict = {}
    for group in groups.values():
        outcome: dict = {}

        def work(n: str, together: bool) -> None:
            try:
                outcome[n] = (run_experiment(n, args, data_cache, study, plans[n], resources, shared, together), None)
            except Exception as e:  # raised in the driver's thread below, after the other experiments ended
                outcome[n] = (None, e)

        if len(group) == 1:
            work(group[0], False)
        else:
            print(f"running {len(group)} experiments at once: {', '.join(group)}", flush=True)
            threads = [threading.Thread(target=work, args=(n, True), name=n, daemon=True) for n in group]
            for t in threads:
                t.start()
            try:
                for t in threads:
                    t.join()
            except KeyboardInterrupt:
                print("interrupted: pass --resume to continue from the last saved state", file=sys.stderr, flush=True)
                raise SystemExit(130) from None
        for n in group:
            result, error = outcome[n]
            if error is not None:
                raise error
            done[n] = result
    return [done[n] for n in names]


def replace_stale_confirmation(name: str, config: dict, args: argparse.Namespace) -> argparse.Namespace:
    """The arguments for running confirmation experiment `name`: resumed with --resume when it confirms the
    same configuration, else started again (a derived stage: an earlier command's confirmation of another
    selection, or another seed count, is replaced and the replacement printed)."""
    path = f"{absolute(args.storage).rstrip('/')}/{name}"
    if not exists(path):
        return args
    try:
        old = json.loads(read_text(f"{path}/{STUDY_FILE}"))
        same = (config_key(old.get("base_config") or {}) == config_key(config)
                and (old.get("summary") or {}).get("trials") == len(config["seed"]["grid_search"]))
    except (OSError, ValueError):  # no study.json yet: it was interrupted; --resume continues it as it was
        same = args.resume
    if same and args.resume:
        return args
    print(f"{name}: replacing the earlier confirmation stage in {path} (it confirmed another configuration or "
          f"seed count, or this run does not --resume)", flush=True)
    return argparse.Namespace(**{**vars(args), "resume": False, "overwrite": True})


def confirmation_plan(config: dict, space) -> tuple[TrainConfig, dict, object]:
    """experiment_plan's shape for a confirmation experiment (study/confirm.py)."""
    base = TrainConfig.from_overrides({k: v for k, v in config.items() if k != "seed"})
    return base, config, space


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = False
    try:
        if IN_RAY_JOB in os.environ and not args.address:
            args.address = "auto"  # a Ray Job's entrypoint joins the job's cluster (Ray sets RAY_ADDRESS for it)
        if args.address and not args.data:
            raise UserError("--data missing: on a cluster (--address, or in a Ray Job) the study would train on the "
                            "bundled 361-image sample, a smoke test and not a study; pass --data s3://BUCKET/chest_xray "
                            "or a folder present on the head node")
        names = search_spaces.expand(args.experiment)
        plans = {n: experiment_plan(n, args) for n in names}  # every space, flag and --set checked before Ray starts
        checks.storage("--storage", args.storage)
        seeds = args.confirm_seeds if args.confirm_seeds is not None else (3 if args.data else 0)
        for n in names:
            target(n, args)
        data_cache: dict = {}
        for base, _, _ in plans.values():  # data errors (a class with no readable image, --strict) before Ray too
            if base.data_key() not in data_cache:
                data_cache[base.data_key()] = prepare(args.data, base, strict=args.strict)
                print(data_cache[base.data_key()].description, flush=True)
        if args.address:
            ray.init(address=args.address)
        elif not ray.is_initialized():
            # "local": always a new Ray instance here, never one another process started on this machine
            ray.init(address="local", include_dashboard=False, configure_logging=False)
            started = True
        study = study_record(args, names)
        print(f"study {study['study_id']} in {absolute(args.storage)}", flush=True)
        resources, shared = trial_resources(args), {}
        done = run_together(names, args, data_cache, study, plans, resources, shared)
        metas, rows = [m for m, _ in done], [r for _, rs in done for r in rs]
        for name, config, space in confirm_plans(rows, seeds) if seeds else []:
            # the last stage: the selected configurations with fresh seeds, where the trials ran (study/confirm.py)
            study = study_record(args, [name])
            confirm_args = replace_stale_confirmation(name, config, args)
            metas.append(run_experiment(name, confirm_args, data_cache, study, confirmation_plan(config, space),
                                        resources, shared)[0])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if started:
            ray.shutdown()
    return 1 if any(m["summary"]["errors"] for m in metas) else 0


if __name__ == "__main__":
    # One checkpoint kept per trial forces a state snapshot per report; that is intended here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    sys.exit(main())
