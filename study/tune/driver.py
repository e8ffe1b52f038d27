"""Run a study: its experiments from one queue of trials, then the confirmation stage; the CLI is study/run.py.

Order of work, every user mistake caught before anything is written: plans (every space, flag and
--set checked), the storage (writable, and free: study.tune.lock), the data (prepared once per data
configuration), Ray, then the experiments. Experiments on one data set run at once, each its own Tuner
(its folder, searcher, ASHA rungs, W&B job type and --resume) in a thread of this driver, so a slot
freed in one goes to the next trial of another (run_together). Ctrl-C and SIGTERM end the study within
seconds with one line and exit 130; `--resume` continues from the experiments' last saved state, with
the settings they were started with (study.tune.plan.check_resume).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import uuid

import ray
import torch

from study import checks
from study.data.layout import skipped_note
from study.data.splits import TrainData, prepare
from study.errors import INTERRUPTED, OK, PARTIAL, UserError
from study.names import SETTINGS_FILE, SKIPPED_FILE, STUDY_FILE
from study.storage import absolute, exists, read_text, remove_tree, write_text
from study.tune import confirm
from study.tune.callbacks import TrialProgress
from study.tune.lock import StudyLock
from study.tune.outcome import summarize, trial_rows
from study.tune.plan import Plan, check_resume, plan, settings, write_settings
from study.tune.space import SearchSpace
from study.tune.tuner import build_tuner, can_restore, make_searcher, restore_tuner, wandb_callbacks

IN_RAY_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for a Ray Job's entrypoint only
WANDB_OFFLINE = ("offline", "disabled", "dryrun")


@contextlib.contextmanager
def ray_output(quiet: bool):
    """Off a terminal Ray Tune's own output (its experiment box, trial tables, result paths) gives way to the
    project's one line per trial: the legacy reporter honours verbose=0 fully, the new one does not."""
    old = os.environ.get("RAY_AIR_NEW_OUTPUT")
    if quiet and old is None:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if quiet and old is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the study ends now; --resume continues it."""


def target(name: str, args: argparse.Namespace) -> str:
    """STORAGE/EXPERIMENT; an existing one needs --resume or --overwrite (checked before Ray starts)."""
    path = f"{absolute(args.storage).rstrip('/')}/{name}"
    if not (args.resume and can_restore(path)) and exists(path) and not args.overwrite:
        raise UserError(f"{path} exists; pass --resume to continue it, --overwrite to start again, or another --storage")
    return path


def check_wandb(project: str | None) -> None:
    """W&B needs a key or an offline mode; without them its callback fails after Ray started (a traceback,
    and a tuner.pkl that makes the next run say the experiment exists)."""
    if not project or os.environ.get("WANDB_MODE", "").lower() in WANDB_OFFLINE or os.environ.get("WANDB_API_KEY"):
        return
    import netrc
    try:
        if (netrc.netrc().authenticators("api.wandb.ai") or (None,) * 3)[2]:
            return
    except (OSError, netrc.NetrcParseError):
        pass
    raise UserError(f"--wandb-project {project}: no W&B credentials (no WANDB_API_KEY, no api.wandb.ai entry in "
                    f"~/.netrc); run `wandb login`, or set WANDB_MODE=offline to log to local files")


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


def run_experiment(p: Plan, args: argparse.Namespace, data: TrainData, study: dict, resources: dict, shared: dict,
                   quiet: bool) -> tuple[dict, list[dict]]:
    """Run (or resume) one experiment; -> (its study.json, its trial rows). `quiet`: off a terminal, or with
    other experiments at once: one line per finished trial instead of Ray's trial table."""
    path = target(p.name, args)
    callbacks = wandb_callbacks(args.wandb_project, study["study_id"], p.name)
    if quiet:
        callbacks.append(TrialProgress(p.name, p.base.epochs, bool(p.space.asha)))
    if args.resume and can_restore(path):
        print(f"{p.name}: resuming from {path} (finished trials are kept, not run again)", flush=True)
        tuner = restore_tuner(path, data, resources, shared=shared, quiet=quiet)  # the callbacks it started with
    else:
        if exists(path):
            remove_tree(path)  # --overwrite, or a confirmation stage of another selection (target() refused it otherwise)
        write_settings(path, p, args)
        tuner = build_tuner(data, p.param_space, name=p.name, storage=args.storage, max_epochs=p.base.epochs,
                            asha=p.space.asha, num_samples=p.num_samples, resources=resources, callbacks=callbacks,
                            max_failures=args.max_failures, max_concurrent=args.max_concurrent,
                            search_alg=make_searcher(p.space), shared=shared, quiet=quiet)
    write_text(f"{path}/{SKIPPED_FILE}", json.dumps(data.skipped, indent=1))
    if data.skipped:
        print(skipped_note(len(data.skipped), f"{path}/{SKIPPED_FILE}"), flush=True)
    s = settings(p, args)
    meta = {"experiment": p.name, "question": p.space.question, "doc": p.space.doc, "answer": p.space.answer,
            "command": " ".join(sys.argv), "data_root": s["data"], "data": data.description,
            "n_train": len(data.train.labels3), "n_val": len(data.val.labels3), "base_config": s["base_config"],
            "searched": sorted(p.space.searched), "asha": p.asha_built, "max_epochs": p.base.epochs,
            "num_samples": p.num_samples, "resources": resources, "ray_version": ray.__version__,
            "study_id": study["study_id"], "wandb": {"project": args.wandb_project, "group": study["study_id"],
                                                     "job_type": p.name} if args.wandb_project else None,
            "confirms": p.space.confirms, "epoch_budgets": list(p.space.epoch_budgets),
            "skipped_files": len(data.skipped), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.time()
    rows = trial_rows(p.name, tuner.fit(), p.base.epochs, bool(p.space.asha))
    meta["summary"] = summarize(p.name, rows, sorted(p.space.searched), path)
    meta["wall_seconds"] = round(time.time() - t0, 1)
    write_text(f"{path}/{STUDY_FILE}", json.dumps(meta, indent=1, default=str))
    return meta, rows


def run_together(plans: list[Plan], args, data: dict, study: dict, resources: dict, shared: dict) -> list[tuple]:
    """The experiments on one data set all at once, each in a thread; other data (another resolution) runs as
    the next group. The main thread only waits, so Ctrl-C and SIGTERM reach it at once (Interrupted).
    -> run_experiment's outcome per experiment, in `plans` order."""
    groups: dict = {}
    for p in plans:
        groups.setdefault(p.base.data_key(), []).append(p)
    done: dict = {}
    for group in groups.values():
        outcome: dict = {}
        quiet = len(group) > 1 or not sys.stdout.isatty()
        if len(group) > 1:
            print(f"running {len(group)} experiments at once: {', '.join(p.name for p in group)}", flush=True)

        def work(p: Plan) -> None:
            try:
                outcome[p.name] = (run_experiment(p, args, data[p.base.data_key()], study, resources, shared, quiet), None)
            except Exception as e:  # raised in the driver's thread below, after the other experiments ended
                outcome[p.name] = (None, e)

        threads = [threading.Thread(target=work, args=(p,), name=p.name, daemon=True) for p in group]
        with ray_output(quiet):
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)  # a short wait, so a signal's handler runs in this thread within half a second
        for p in group:
            result, error = outcome[p.name]
            if error is not None:
                raise error
            done[p.name] = result
    return [done[p.name] for p in plans]


def confirmation(plans: list[Plan], args) -> list[tuple[Plan, argparse.Namespace]]:
    """Each confirmation plan with the arguments to run it: resumed with --resume when it confirms the same
    configuration and seeds (its settings.json), else started again (a derived stage: an earlier command's
    confirmation of another selection is replaced, and the replacement printed)."""
    out = []
    for p in plans:
        path = f"{absolute(args.storage).rstrip('/')}/{p.name}"
        same = False
        if exists(path):
            try:
                same = json.loads(read_text(f"{path}/{SETTINGS_FILE}")) == settings(p, args)
            except (OSError, ValueError):
                same = False
            if not (same and args.resume):
                print(f"{p.name}: replacing the earlier confirmation stage in {path} (it confirmed another configuration "
                      f"or seed count, or this run does not --resume)", flush=True)
        out.append((p, args if same and args.resume else argparse.Namespace(**{**vars(args), "resume": False,
                                                                                "overwrite": True})))
    return out


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def run_study(args: argparse.Namespace, spaces: list[SearchSpace]) -> int:
    """The whole study over `spaces` (the experiments study/run.py resolved from --experiment); -> its exit code
    (study/errors.py). UserError propagates to the CLI (exit 2)."""
    if IN_RAY_JOB in os.environ and not args.address:
        args.address = "auto"  # a Ray Job's entrypoint joins the job's cluster (Ray sets RAY_ADDRESS for it)
    if args.address and not args.data:
        raise UserError("--data missing: on a cluster (--address, or in a Ray Job) the study would train on the "
                        "bundled 361-image sample, a smoke test and not a study; pass --data s3://BUCKET/chest_xray "
                        "or a folder present on the head node")
    if args.resume and args.overwrite:
        raise UserError("--resume continues an experiment and --overwrite deletes it first: pass one of them")
    check_wandb(args.wandb_project)
    if args.gpus_per_trial and not args.address and not torch.cuda.device_count():  # trials would wait forever
        raise UserError(f"--gpus-per-trial {args.gpus_per_trial:g}: this machine has no GPU; drop the flag (or pass 0) "
                        f"to train on the CPU")
    plans = [plan(space, args) for space in spaces]
    checks.storage("--storage", args.storage)
    for p in plans:
        path = target(p.name, args)
        if args.resume and can_restore(path):
            check_resume(path, p, args)
    seeds = args.confirm_seeds if args.confirm_seeds is not None else (3 if args.data else 0)
    lock, started, metas = StudyLock(args.storage), False, []
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        lock.acquire()
        data: dict = {}
        for p in plans:  # data errors (a class with no readable image, --strict) before Ray too
            if p.base.data_key() not in data:
                data[p.base.data_key()] = prepare(args.data, p.base, strict=args.strict)
                print(data[p.base.data_key()].description, flush=True)
        if args.address:
            ray.init(address=args.address)
        elif not ray.is_initialized():
            # "local": always a new Ray instance here, never one another process started on this machine
            ray.init(address="local", include_dashboard=False, configure_logging=False)
            started = True
        for s in old:  # after ray.init: Ray's own handlers would dump a C++ trace and exit with varying codes
            signal.signal(s, _interrupt)
        resources, shared = trial_resources(args), {}
        study = study_record(args, [p.name for p in plans])
        print(f"study {study['study_id']} in {absolute(args.storage)}", flush=True)
        done = run_together(plans, args, data, study, resources, shared)
        metas, rows = [m for m, _ in done], [r for _, rs in done for r in rs]
        for p, p_args in confirmation(confirm.plans(rows, seeds) if seeds else [], args):
            study = study_record(args, [p.name])  # the last stage: the selection with fresh seeds, where trials ran
            metas.append(run_together([p], p_args, data, study, resources, shared)[0][0])
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"interrupted ({e or 'SIGINT'}): pass --resume to continue from the last saved state", file=sys.stderr,
              flush=True)
        return INTERRUPTED
    finally:
        for s in old:  # a second signal while Ray shuts down must not cut the shutdown short
            signal.signal(s, signal.SIG_IGN)
        if started:
            ray.shutdown()
        lock.release()
        for s, h in old.items():
            signal.signal(s, h)
    return PARTIAL if any(m["summary"]["errors"] for m in metas) else OK

