"""Fail loudly, part 2 (issue 20): each class of mistake or fault meets one line, an honest exit code and
no half-written file. The bad inputs are built here at run time: EXIF-rotated and tiny JPEGs made with
PIL, truncated and edited checkpoints, a file-size limit (`ulimit -f`), a file where a folder should be,
and a path on a read-only filesystem (/proc: read-only for root too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.common import REPO
from study.data.cache import MIN_SIDE, BadImage, decode
from study.engine import checkpoint as ckpt_io
from study.errors import IO_FAILURE, USAGE, UserError
from study.tune.lock import StudyLock

READ_ONLY = Path("/proc/pneumonia-tune-test")  # /proc refuses new files, as a read-only mount does


def _py(*args: str, env: dict | None = None, shell_prefix: str = "", timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = " ".join([shell_prefix, sys.executable, *(f"'{a}'" for a in args)]).strip()
    return subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _one_error_line(p: subprocess.CompletedProcess, code: int, *words: str) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == code, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    err = [line for line in lines if line.startswith("error: ")]
    assert len(err) == 1 and all(w in err[0] for w in words), lines
    return err[0]


# ---- 1. a finite but exploding run is divergence ------------------------------------------------------
def test_exploding_finite_loss_diverges_and_keeps_no_model(tmp_path):
    p = _py("-m", "study.train", "--set", "lr=1e6", "--set", "epochs=2", "--set", "resolution=32", "--out",
            str(tmp_path / "run"))
    assert p.returncode == 1, p.stderr
    assert "diverged at epoch 1" in p.stderr and "exploding" in p.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# ---- 3. one study per storage -------------------------------------------------------------------------
def test_the_storage_lock_refuses_a_live_owner_and_takes_over_a_stale_one(tmp_path, capsys):
    lock = StudyLock(str(tmp_path)).acquire()
    try:
        with pytest.raises(UserError, match=r"another study.run \(pid \d+ on .*\) is writing into this --storage"):
            StudyLock(str(tmp_path)).acquire()
    finally:
        lock.release()
    assert not (tmp_path / ".study.lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for stale in ({"pid": int(dead.stdout), "host": os.uname().nodename, "heartbeat": time.time()},
                  {"pid": 1, "host": "elsewhere", "heartbeat": time.time() - 3600}):
        (tmp_path / ".study.lock").write_text(json.dumps({**stale, "started": 0}))
        StudyLock(str(tmp_path)).acquire().release()
        assert "taking over the stale lock" in capsys.readouterr().out


def test_a_second_study_into_a_held_storage_is_refused_before_anything(tmp_path):
    storage = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", f"import time; from study.tune.lock import StudyLock; "
                               f"StudyLock({str(storage)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        p = _py("-m", "study.run", "--experiment", "quick", "--resolution", "32", "--max-epochs", "1", "--storage",
                str(storage))
        _one_error_line(p, USAGE, "another study.run", "--storage")
        assert time.monotonic() - t0 < 30 and sorted(x.name for x in storage.iterdir()) == [".study.lock"]
    finally:
        holder.kill()


# ---- 4. caches and outputs that cannot be written -----------------------------------------------------
@pytest.mark.parametrize("where", ["a_file", "read_only"])
def test_an_unwritable_cache_warns_and_decodes_without_one(where, tmp_path):
    cache = tmp_path / "cache-file" if where == "a_file" else READ_ONLY
    if where == "a_file":
        cache.write_text("not a folder")
    p = _py("-m", "study.train", "--set", "resolution=32", "--set", "epochs=1", "--set", "dense_units=8", "--out",
            str(tmp_path / "run"), env={"PNEUMONIA_CACHE": str(cache / "sub") if where == "a_file" else str(cache)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "cannot be written" in p.stderr and "PNEUMONIA_CACHE" in p.stderr


@pytest.mark.parametrize("module", ["analysis.report", "analysis.release"])
@pytest.mark.parametrize("where", ["a_file", "under_a_file", "read_only"])
def test_an_unwritable_out_is_one_line(module, where, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    out = {"a_file": f, "under_a_file": f / "o", "read_only": READ_ONLY / "o"}[where]
    if module == "analysis.release":
        out = out / "binary.pt" if where != "a_file" else f / "binary.pt"
        args = [str(REPO / "models" / "binary.pt"), "--out", str(out), "--command", "x"]
    else:
        args = [str(tmp_path), "--out", str(out)]
    _one_error_line(_py("-m", module, *args), USAGE, "--out")


# ---- 5 and 13. a checkpoint that cannot be written ----------------------------------------------------
def test_a_checkpoint_that_cannot_be_written_is_an_io_failure(tmp_path):
    run = tmp_path / "run"
    args = ["-m", "study.train", "--set", "resolution=32", "--set", "epochs=1", "--out", str(run)]
    assert _py(*args).returncode == 0
    good = ckpt_io.load(run)
    p = _py(*args[:-2], "--set", "seed=1", "--out", str(run), shell_prefix="ulimit -f 40;")  # 40 KiB per file
    line = _one_error_line(p, IO_FAILURE, str(run / "checkpoint.pt"), "File too large")
    assert "previous checkpoint" in line
    assert sorted(x.name for x in run.iterdir() if x.name.startswith(".")) == []  # no temporary file left
    assert ckpt_io.load(run)["config"] == good["config"]  # the last good checkpoint still loads


# ---- 6. any file that is not a checkpoint is one line --------------------------------------------------
def _checkpoint_variants(tmp_path: Path, good: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    ck = torch.load(good, weights_only=True)
    out = {"text": b"not a checkpoint\n", "short": raw[:100], "half": raw[: len(raw) // 2], "empty": b"",
           "flipped": raw[:200] + bytes(b ^ 0xFF for b in raw[200:400]) + raw[400:]}
    paths = {}
    for name, data in out.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(data)
    for name, body in {"list": [1, 2], "no_model": {"config": ck["config"], "format_version": 2},
                       "model_not_tensors": {**ck, "model": {"w": "x"}}, "config_not_dict": {**ck, "config": 3},
                       "bad_members": {"members": "x", "weights": [1], "format_version": 2}}.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(body, paths[name])
    return paths


def test_damaged_checkpoints_are_one_line(tmp_path):
    run = tmp_path / "run"
    assert _py("-m", "study.train", "--set", "resolution=32", "--set", "epochs=1", "--out", str(run)).returncode == 0
    img = next((REPO / "study" / "sample" / "chest_xray" / "val" / "NORMAL").glob("*.jpeg"))
    for name, path in _checkpoint_variants(tmp_path, run / "checkpoint.pt").items():
        line = _one_error_line(_py("-m", "study.predict", "--model", str(path), str(img)), USAGE, str(path))
        assert "cannot read the checkpoint" in line or "not a checkpoint" in line or "damaged" in line, (name, line)
        if name in ("text", "short", "empty"):
            assert "weights_only" not in line, line


# ---- 7. images misread without a word ------------------------------------------------------------------
def test_exif_orientation_is_applied_and_changes_the_cache_key(tmp_path):
    a = np.zeros((120, 80), np.uint8)
    a[:, :40] = 255  # left half white: a rotation is visible
    plain, rotated = tmp_path / "plain.jpeg", tmp_path / "rotated.jpeg"
    Image.fromarray(np.rot90(a, k=1).copy()).save(plain, quality=100)  # what the viewer shows
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CW to display"
    Image.fromarray(a).save(rotated, quality=100, exif=exif.tobytes())  # stored sideways, tagged
    want, got = decode(plain, 64)[0].astype(int), decode(rotated, 64)[0].astype(int)
    assert np.abs(want - got).mean() < 8, "the EXIF orientation was not applied"
    from study.data.cache import CACHE_VERSION
    assert CACHE_VERSION >= 3  # entries decoded without the orientation are rebuilt


@pytest.mark.parametrize("side", [1, 16, MIN_SIDE - 1])
def test_tiny_images_are_skipped_with_their_reason(side, tmp_path):
    p = tmp_path / f"IM-0001-{side}.jpeg"
    Image.fromarray(np.full((side, side), 128, np.uint8)).save(p)
    with pytest.raises(BadImage, match=f"too small: {side}x{side} px"):
        decode(p, 200)
    proc = _py("-m", "study.predict", str(p), "--json")
    assert proc.returncode == 1 and "too small" in proc.stderr and proc.stdout == ""


# ---- 8. a flag that does nothing ----------------------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["-m", "study.predict", "--three-class", "--threshold", "0.3", "x.jpeg"], ["--threshold"]),
    (["-m", "study.run", "--resume", "--overwrite"], ["--resume", "--overwrite"]),
    (["-m", "study.run", "--gpus-per-trial", "0.5", "--resolution", "32", "--max-epochs", "1"], ["--gpus-per-trial"]),
])
def test_a_flag_that_does_not_apply_is_a_usage_error(args, words, tmp_path):
    if torch.cuda.is_available() and "--gpus-per-trial" in args:
        pytest.skip("this machine has a GPU")
    _one_error_line(_py(*args, "--storage", str(tmp_path / "r")) if "study.run" in args else _py(*args), USAGE, *words)


# ---- 12. W&B without credentials ------------------------------------------------------------------------
def test_wandb_without_credentials_is_one_line_before_ray(tmp_path):
    env = {"WANDB_MODE": "", "WANDB_API_KEY": "", "HOME": str(tmp_path), "NETRC": str(tmp_path / "none")}
    p = _py("-m", "study.run", "--wandb-project", "x", "--storage", str(tmp_path / "r"), env=env)
    _one_error_line(p, USAGE, "--wandb-project x", "wandb login", "WANDB_MODE=offline")
    assert not (tmp_path / "r").exists()


# ---- 14. shipped text names no machine's paths --------------------------------------------------------
def test_release_writes_paths_relative(tmp_path, capsys):
    from analysis import release
    from study import train
    run = tmp_path / "run"
    assert train.main(["--set", "resolution=32", "--set", "epochs=1", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "models" / "binary.pt"
    cmd = f"python -m study.train --data {REPO / 'study' / 'sample' / 'chest_xray'} --out runs/x"
    assert release.main([str(run), "--data", str(REPO / "study" / "sample" / "chest_xray"), "--out", str(out),
                         "--command", cmd, "--tta", "none"]) == 0
    info = json.loads(capsys.readouterr().out)
    text = json.dumps(info) + (out.parent / "MODEL_CARD.md").read_text()
    assert str(REPO) not in text and "chest_xray: train" in info["data"]


# ---- 10. checkpoints a saved experiment state points at are never deleted -----------------------------
def test_the_pruner_deletes_only_checkpoints_older_than_the_saved_state_points_at(tmp_path):
    from types import SimpleNamespace

    from pyarrow import fs as pafs

    from study.tune.callbacks import CheckpointPruner
    exp = tmp_path / "exp"
    trials = []
    for tid, ref in (("a_00000", 2), ("a_00001", None)):
        d = exp / f"train_trial_{tid}"
        for i in range(4):
            (d / f"checkpoint_{i:06d}").mkdir(parents=True)
        storage = SimpleNamespace(storage_filesystem=pafs.LocalFileSystem(), experiment_fs_path=str(exp),
                                  trial_fs_path=str(d))
        trials.append(SimpleNamespace(trial_id=tid, storage=storage, ref=ref))
    import ray.cloudpickle
    from ray import tune
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult

    def saved(t) -> dict:  # what Ray's experiment state keeps of a trial: its last result and checkpoint manager
        manager = _CheckpointManager(tune.CheckpointConfig())
        manager.register_checkpoint(_TrainingResult(tune.Checkpoint(f"{t.storage.trial_fs_path}/checkpoint_{t.ref:06d}"),
                                                    {}))
        return {"last_result": {"checkpoint_dir_name": f"checkpoint_{t.ref + 1:06d}"},  # the next one, not yet registered
                "checkpoint_manager": {"_type": "CLOUDPICKLE_FALLBACK", "value": ray.cloudpickle.dumps(manager).hex()}}
    state = {"trial_data": [[json.dumps({"trial_id": t.trial_id}), json.dumps(saved(t))] for t in trials
                            if t.ref is not None]}
    (exp / "experiment_state-2026-12-01_00-00-00.json").write_text(json.dumps(state))
    p = CheckpointPruner()
    p.on_step_begin(0, trials)
    assert p.get_state() is None
    kept = lambda t: sorted(x.name for x in Path(t.storage.trial_fs_path).iterdir())
    assert kept(trials[0]) == ["checkpoint_000002", "checkpoint_000003"]  # the saved state's and the newer one
    assert len(kept(trials[1])) == 4  # no saved state points at this trial yet: nothing deleted
    (exp / "experiment_state-2026-12-01_00-00-00.json").write_text('{"trial_data": [["{}", "{\\"last_res')  # mid-write
    p.get_state()
    assert kept(trials[0]) == ["checkpoint_000002", "checkpoint_000003"]
