"""Training throughput of the default network, through the same data path as training.

    python -m benchmarks.throughput [--resolution 200] [--batches 20] [--json] [--compare]
        [--precision auto|fp32|bf16] [--no-channels-last] [--set KEY=VALUE ...]

prints training images per second (forward + backward + optimizer step of the default
TrainConfig network and recipe, augmentation included, Adam, batches of 32) on this machine's
device, as one line, or with --json as one JSON object: {"images_per_s": x, "device": "cpu",
"resolution": R, ...} (extra keys: precision (what --precision resolved to on this device),
channels_last, batch_size, threads, seconds, batches, warmup_batches, images, device_name,
loadavg_before/after, torch, recipe). --set changes any other field, e.g. --set augment=none.

The timed path is training's own: the decoded uint8 images (study.data.layout.load_split, from the
image cache) sit on the device as one tensor and study.engine.loop.train_one_epoch slices them into
shuffled batches, converts each to float there and steps the optimizer. `--warmup` batches run
first and are not timed (oneDNN / cuDNN pick their kernels on the first batches).

--compare also times, in the same run, the same network on the same images fed by a plain
torchvision pipeline: ImageFolder + DataLoader decoding every JPEG at every step (Grayscale,
Resize((R, R)), ToTensor; `--workers` processes, default: one per core beyond the first, at
least 1). It runs twice:
  plain          fp32 and PyTorch's default NCHW memory format, the straightforward loop that
                 the torchvision classification reference runs by default (no --amp, no
                 --channels-last): "imagefolder_images_per_s" and "ratio" (this path / plain),
                 the whole gain a user gets from study.train over writing the loop themselves;
  same settings  this run's precision and memory format: "imagefolder_same_settings_images_per_s"
                 and "data_path_ratio", the gain of the cached uint8 data path alone.

Images: the train/ split of the bundled sample, or of `--data ROOT`; repeated when the run needs
more batches than the split holds. `--threads N` sets torch.set_num_threads; `--batch-size`
measures another batch size (the study's default stays TrainConfig.batch_size).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from study import cli
from study.config import PRECISIONS, TrainConfig
from study.data.layout import SAMPLE_ROOT, find_root, load_split, targets
from study.engine.device import pick_device, resolve_precision, seed_everything
from study.engine.infer import layout, predicted
from study.engine.loop import make_loss, make_optimizer, train_one_epoch, train_step
from study.errors import UserError
from study.model import build_model


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown cpu"


def default_workers() -> int:
    """DataLoader workers for the ImageFolder baseline: leave one core to the training step."""
    return max(1, (os.cpu_count() or 1) - 1)


def setup(cfg: TrainConfig, labels3: np.ndarray, device: torch.device):
    """Model, optimizer and loss exactly as study.engine.loop.fit builds them."""
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, make_optimizer(cfg, model.parameters()), make_loss(cfg, labels3, device)


def pick(n_pool: int, n: int, seed: int) -> np.ndarray:
    """n indices into a pool of n_pool images: a seeded permutation, repeated if the pool is short."""
    rng = np.random.default_rng(seed)
    reps = -(-n // n_pool)
    return np.concatenate([rng.permutation(n_pool) for _ in range(reps)])[:n]


def time_tensor_path(cfg: TrainConfig, images: np.ndarray, labels3: np.ndarray, device: torch.device,
                     warmup: int, batches: int) -> float:
    """Seconds for `batches` training steps of study.engine.loop.train_one_epoch on uint8 device tensors."""
    model, optimizer, loss_fn = setup(cfg, labels3, device)
    bs = cfg.batch_size

    def run(idx: np.ndarray, epoch: int) -> float:
        imgs = np.ascontiguousarray(images[idx])
        x = torch.from_numpy(imgs).to(device)
        y = torch.from_numpy(targets(labels3[idx], cfg.num_classes)).to(device)
        t0 = time.perf_counter()
        train_one_epoch(model, optimizer, loss_fn, imgs, x, y, cfg, epoch)  # syncs once, at the end
        return time.perf_counter() - t0

    if warmup:
        run(pick(len(images), warmup * bs, cfg.seed + 1), 0)
    return run(pick(len(images), batches * bs, cfg.seed + 2), 1)


class _Subset(torch.utils.data.Dataset):
    def __init__(self, base, indices):
        self.base, self.indices = base, list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[self.indices[i]]


def imagefolder_subset(root: Path, paths: list[str], resolution: int):
    """torchvision ImageFolder over root/train holding exactly `paths`, and each path's index in it
    (so the plain loops train on the tensor path's images). Built once for both --compare loops."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Grayscale(1), transforms.Resize((resolution, resolution)),
                             transforms.ToTensor()])
    resolved = [str(Path(p).resolve()) for p in paths]
    wanted = set(resolved)
    folder = datasets.ImageFolder(str(root / "train"), transform=tf,
                                  is_valid_file=lambda p: str(Path(p).resolve()) in wanted)
    by_path = {str(Path(p).resolve()): i for i, (p, _) in enumerate(folder.samples)}
    return folder, [by_path[p] for p in resolved]


def time_imagefolder_path(cfg: TrainConfig, folder, order: list[int], labels3: np.ndarray,
                          device: torch.device, warmup: int, batches: int, workers: int) -> float:
    """Seconds for `batches` training steps fed by `folder` (imagefolder_subset) through a DataLoader,
    decoding each JPEG at each step. Timed in steady state: the loader holds prefetch_factor * workers
    batches more than are consumed, so its read-ahead is as full when the clock stops as when it starts."""
    bs, prefetch = cfg.batch_size, 2
    n_batches = warmup + batches + (prefetch * workers if workers else 0)
    idx = pick(len(order), n_batches * bs, cfg.seed + 3)
    data = _Subset(folder, [order[i] for i in idx])
    loader = torch.utils.data.DataLoader(data, batch_size=bs, shuffle=True, num_workers=workers, drop_last=True,
                                         generator=torch.Generator().manual_seed(cfg.seed),
                                         **({"prefetch_factor": prefetch} if workers else {}))
    model, optimizer, loss_fn = setup(cfg, labels3, device)
    model.train()
    it = iter(loader)
    t0 = 0.0
    for step in range(warmup + batches):
        if step == warmup:
            t0 = time.perf_counter()
        xb, yb = next(it)  # float [B, 1, R, R] in 0..1; ImageFolder: NORMAL=0, PNEUMONIA=1
        xb, yb = layout(xb.to(device), cfg), yb.to(device)
        loss, logits = train_step(model, optimizer, loss_fn, xb, yb, cfg)
        _ = loss.item(), int((predicted(logits, cfg.num_classes) == yb).sum())
    seconds = time.perf_counter() - t0
    del it  # stops the workers
    return seconds


def bench(root: str | Path | None = None, resolution: int = 200, batches: int = 20, warmup: int = 3,
          precision: str = "auto", channels_last: bool = True, compare: bool = False,
          batch_size: int | None = None, threads: int | None = None, workers: int | None = None,
          progress: bool = False, sets: list[str] | None = None) -> dict:
    if batches < 1 or warmup < 0:
        raise UserError(f"--batches {batches} / --warmup {warmup}: need batches >= 1 and warmup >= 0")
    if threads:
        torch.set_num_threads(threads)
    over = {"resolution": resolution, "precision": precision, "channels_last": channels_last}
    if batch_size:
        over["batch_size"] = batch_size
    cfg = TrainConfig.from_strings(sets or [], TrainConfig.from_overrides(over))
    top = find_root(root or SAMPLE_ROOT)
    split = load_split(top, "train", resolution, progress=progress)
    device = pick_device()
    load_before = os.getloadavg()
    seconds = time_tensor_path(cfg, split.images, split.labels3, device, warmup, batches)
    n = batches * cfg.batch_size
    out = {"images_per_s": round(n / seconds, 2), "device": device.type, "resolution": resolution,
           "precision": resolve_precision(cfg, device), "channels_last": channels_last, "batch_size": cfg.batch_size,
           "threads": torch.get_num_threads(), "seconds": round(seconds, 3), "batches": batches,
           "warmup_batches": warmup, "images": len(split.labels3), "data": str(top),
           "device_name": device_name(device), "torch": torch.__version__,
           "recipe": {k: getattr(cfg, k) for k in ("augment", "augment_strength", "class_balance", "norm")}}
    if compare:
        w = default_workers() if workers is None else workers
        folder, order = imagefolder_subset(top, split.paths, resolution)
        plain = dataclasses.replace(cfg, precision="fp32", channels_last=False)
        s_plain = time_imagefolder_path(plain, folder, order, split.labels3, device, warmup, batches, w)
        s_same = time_imagefolder_path(cfg, folder, order, split.labels3, device, warmup, batches, w)
        out.update({"imagefolder_images_per_s": round(n / s_plain, 2), "imagefolder_seconds": round(s_plain, 3),
                    "imagefolder_workers": w, "ratio": round(s_plain / seconds, 3),
                    "imagefolder_same_settings_images_per_s": round(n / s_same, 2),
                    "data_path_ratio": round(s_same / seconds, 3)})
    out["loadavg_before"] = [round(v, 2) for v in load_before]
    out["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m benchmarks.throughput", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, metavar="ROOT", help="data set folder (default: the bundled sample)")
    ap.add_argument("--resolution", type=int, default=200, help="input side in px (default 200)")
    ap.add_argument("--batches", type=int, default=20, help="timed training steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="bf16: autocast; auto (default): bf16 where the device has it natively, as training does")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                    help="contiguous (NCHW) instead of channels_last memory format")
    ap.add_argument("--compare", action="store_true", help="also time plain torchvision ImageFolder + DataLoader loops")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"DataLoader workers for --compare (default {default_workers()} here)")
    ap.add_argument("--batch-size", type=int, default=None, help="override TrainConfig.batch_size (default 32)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other TrainConfig field, e.g. --set augment=strong (default: TrainConfig's recipe)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    r = bench(args.data, args.resolution, args.batches, args.warmup, args.precision, args.channels_last,
              args.compare, args.batch_size, args.threads, args.workers, sets=args.set)
    if args.json:
        print(json.dumps(r))
        return 0
    line = (f"{r['images_per_s']:.1f} images/s training at {r['resolution']}px on {r['device']} ({r['device_name']}, "
            f"{r['threads']} threads), {r['precision']}, {'channels_last' if r['channels_last'] else 'NCHW'}, "
            f"batch {r['batch_size']}, {r['batches']} batches in {r['seconds']:.2f}s")
    if args.compare:
        line += (f"; plain ImageFolder+DataLoader loop ({r['imagefolder_workers']} workers, fp32, NCHW) "
                 f"{r['imagefolder_images_per_s']:.1f} images/s, ratio {r['ratio']:.2f}x; the same loop with this "
                 f"run's precision and memory format {r['imagefolder_same_settings_images_per_s']:.1f} images/s "
                 f"(data path alone {r['data_path_ratio']:.2f}x)")
    print(line + f"; load average {' '.join(map(str, r['loadavg_before']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
