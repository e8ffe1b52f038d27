"""Stage A of docs/gpu-check/run.sh: the GPU path measured without the data set (random uint8 images, never
zeros). Appends one JSON line per figure to OUT/a.jsonl:

  env        nvidia-smi's GPU, torch, CUDA and cuDNN versions, whether CUDA MPS is installed
  step       eager images/s and host CPU seconds per step, batch 32 and 256, the default recipe and the seed's
  syncs      host syncs per step under torch.cuda.set_sync_debug_mode("warn") over one epoch of each recipe at
             batch 32 (less the epoch's two closing reads: its loss and accuracy), with the first places that
             synced; on a CPU: not measurable (tests/unit/test_host_reads.py counts host reads there instead)
  profile    CUDA kernels per step and GPU-busy % (kernel time / wall) of 20 steps, default recipe, batch 32
  packed     1, 8 and 16 trainer processes at once, their summed images/s over one shared window of 6 s (every
             trainer warms up and says so, then gets one common start time and counts the epochs it ends inside
             the window); then 8 and 16 with an MPS daemon this script starts and stops by its process id

    python docs/gpu-check/measure.py OUT              # on the GPU machine (run.sh a)
    SMALL=1 python docs/gpu-check/measure.py OUT      # CPU size: 32 px, 1 and 2 processes, 2 s, no MPS
    python docs/gpu-check/measure.py --trainer SECONDS BATCH  # one packed process: `ready`, then reads its start
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch  # noqa: E402

from study.config import SEED_RECIPE, TrainConfig  # noqa: E402
from study.engine.device import pick_device, tune_backend  # noqa: E402
from study.engine.loop import make_loss, make_optimizer, train_one_epoch  # noqa: E402
from study.model import build_model  # noqa: E402

SMALL = os.environ.get("SMALL") == "1"
RES = 32 if SMALL else 200
IMAGES = 256 if SMALL else 4096


def emit(out: Path, kind: str, **figures) -> None:
    with open(out / "a.jsonl", "a") as f:
        f.write(json.dumps({"stage": "A", "kind": kind, **figures}) + "\n")
    print(kind, figures, flush=True)


def setup(recipe: dict, batch: int, device: torch.device):
    cfg = TrainConfig.from_overrides({"resolution": RES, "batch_size": batch, **recipe})
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (IMAGES, RES, RES), dtype=torch.uint8, generator=g)  # random, never zeros
    labels = torch.randint(0, 2, (IMAGES,), generator=g)
    labels[:2] = torch.tensor([0, 1])
    tune_backend(device)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model.parameters(), device)
    labels3 = labels.numpy().copy()
    loss = make_loss(cfg, labels3, device)
    return cfg, model, opt, loss, x.numpy(), x.to(device), labels.to(device), labels3


def epoch_rate(cfg, model, opt, loss, images, x, y, labels3, epoch: int, device) -> tuple[float, float, int]:
    """(images/s, host CPU seconds per step, steps) of one pass over the random images."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    train_one_epoch(model, opt, loss, images, x, y, cfg, epoch, None, labels3)  # ends with one host read
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps = -(-len(labels3) // cfg.batch_size)
    return len(labels3) / (time.perf_counter() - t0), (time.process_time() - c0) / steps, steps


def env(out: Path) -> None:
    smi = shutil.which("nvidia-smi")
    gpu = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() if smi else None
    emit(out, "env", gpu=gpu, torch=torch.__version__, cuda=torch.version.cuda,
         cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
         mps_control=shutil.which("nvidia-cuda-mps-control"), cpus=os.cpu_count())


def steps(out: Path, device) -> None:
    for name, recipe in (("default", {}), ("seed", SEED_RECIPE)):
        for batch in (32, 256):
            a = setup(recipe, batch, device)
            epoch_rate(*a, 1, device)  # warm-up: cuDNN's algorithm search, kornia's first calls
            rate, cpu, n = epoch_rate(*a, 2, device)
            emit(out, "step", recipe=name, batch=batch, resolution=RES, images_per_s=round(rate, 1),
                 cpu_s_per_step=round(cpu, 5), steps=n, device=str(device))


def profile(out: Path, device) -> None:
    from torch.profiler import ProfilerActivity, profile as prof
    cfg, model, opt, loss, images, x, y, labels3 = setup({}, 32, device)
    small = IMAGES if SMALL else 20 * 32
    epoch_rate(cfg, model, opt, loss, images, x, y, labels3, 1, device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t0 = time.perf_counter()
    with prof(activities=acts) as p:
        train_one_epoch(model, opt, loss, images[:small], x[:small], y[:small], cfg, 2, None, labels3[:small])
        if device.type == "cuda":
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    n = -(-small // 32)
    kernels = [e for e in p.events() if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)]
    busy = sum(e.device_time for e in kernels) / 1e6 if kernels else 0.0
    emit(out, "profile", steps=n, kernels_per_step=round(len(kernels) / n, 1), gpu_busy_pct=round(100 * busy / wall, 1),
         wall_s=round(wall, 3), host_ops_per_step=round(len([e for e in p.events() if "aten::" in e.name]) / n, 1))


def trainer(seconds: float, batch: int) -> None:
    """One packed process: set up and warm up, say `ready`, read the shared start time (time.time()) from stdin,
    wait for it, then train whole epochs until start + seconds; images/s = images of the epochs ended inside the
    window / the time they took."""
    torch.set_num_threads(1)  # as Ray runs a trial of --cpus-per-trial 1 (OMP_NUM_THREADS=1): n trainers, n threads
    device = pick_device()
    a = setup({}, batch, device)
    epoch_rate(*a, 1, device)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    late = time.time() > start
    while time.time() < start:
        time.sleep(0.002)
    done, t0, epoch, t_end = 0, time.time(), 2, None
    while True:
        epoch_rate(*a, epoch, device)
        now = time.time()
        if now > start + seconds:
            break
        done, epoch, t_end = done + IMAGES, epoch + 1, now
    rate = done / (t_end - t0) if t_end else 0.0
    print(json.dumps({"images_per_s": rate, "late": late}), flush=True)


def packed(out: Path, mps: bool) -> None:
    """n trainers at once: all start up and warm up, then train in one shared window (no guessed start-up time)."""
    seconds = 2 if SMALL else 6
    counts = (1, 2) if SMALL else ((8, 16) if mps else (1, 8, 16))  # one process alone gains nothing from MPS
    for n in counts:
        procs = [subprocess.Popen([sys.executable, __file__, "--trainer", str(seconds), "32"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(n)]
        ready = [p.stdout.readline().strip() == "ready" for p in procs]  # each after its set-up and warm-up
        start = time.time() + 0.5
        for p in procs:
            if p.poll() is None:
                p.stdin.write(f"{start}\n")
                p.stdin.flush()
        lines = []
        for p, ok in zip(procs, ready):
            text = p.communicate(timeout=600)[0].strip().splitlines() if ok else []
            lines.append(json.loads(text[-1]) if text else {"images_per_s": 0.0, "late": True, "failed": True})
        rates = [x["images_per_s"] for x in lines]
        emit(out, "packed", processes=n, mps=mps, window_s=seconds, images_per_s_total=round(sum(rates), 1),
             images_per_s_each=round(sum(rates) / n, 1), late_starters=sum(x["late"] for x in lines),
             failed=sum(bool(x.get("failed")) for x in lines))


def syncs(out: Path, device) -> None:
    """Host syncs per training step on the device, counted by torch's sync debug mode (CUDA only)."""
    import warnings
    if device.type != "cuda":
        emit(out, "syncs", device=str(device), syncs_per_step=None, note="not measurable off CUDA")
        return
    for name, recipe in (("default", {}), ("seed", SEED_RECIPE)):
        a = setup(recipe, 32, device)
        epoch_rate(*a, 1, device)  # warm-up: kornia's first calls validate their ranges on the host
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                _, _, n = epoch_rate(*a, 2, device)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        hits = [w for w in caught if "synchroniz" in str(w.message).lower()]
        places = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in hits})[:8]
        emit(out, "syncs", recipe=name, device=str(device), steps=n, syncs=len(hits),
             syncs_per_step=round(max(0, len(hits) - 2) / n, 3), places=places)


def with_mps(out: Path) -> None:
    ctl = shutil.which("nvidia-cuda-mps-control")
    if SMALL or not ctl:
        emit(out, "packed", mps=True, skipped="no nvidia-cuda-mps-control here" if not ctl else "SMALL")
        return
    pipe = Path("/tmp/mps-pipe")
    pipe.mkdir(exist_ok=True)
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(pipe)}
    os.environ.update(env)
    daemon = subprocess.Popen([ctl, "-f"], env=env)  # in the foreground: its pid is the daemon's
    time.sleep(2)
    try:
        packed(out, True)
    finally:
        subprocess.run([ctl], input="quit\n", text=True, env=env, timeout=30)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(daemon.pid, signal.SIGKILL)
        for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
            os.environ.pop(k, None)


if __name__ == "__main__":
    if sys.argv[1] == "--trainer":
        trainer(float(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device()
    env(out)
    steps(out, device)
    syncs(out, device)
    profile(out, device)
    packed(out, False)
    with_mps(out)
