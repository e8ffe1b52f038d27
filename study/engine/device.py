"""Where a run computes and in what precision; the data set's copy on that device; seeding.

`pick_device` is CUDA when there is one, else the CPU. `precision="auto"` resolves to bf16 autocast
where the hardware computes bf16 natively (CUDA Ampere+, CPUs with AVX512-BF16 or AMX), else fp32.
"""
from __future__ import annotations

import functools
import random
import warnings

import numpy as np
import torch

from study.config import TrainConfig


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tune_backend(device: torch.device) -> None:
    """cuDNN picks its fastest convolution algorithms for the shapes it meets (every batch of a trial has the
    same shape, so the search pays once); nothing to set elsewhere."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def eval_batch(device: torch.device) -> int:
    """Images per forward pass at inference: large on an accelerator (few launches, a full device), small on
    the CPU (cache-sized). Memory and speed only: predictions are per image."""
    return 1024 if device.type == "cuda" else 128


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@functools.cache  # asked at every training step (through autocast); the hardware does not change
def native_bf16(device: torch.device) -> bool:
    """Does `device` compute bf16 natively? CUDA: Ampere or newer. CPU: AVX512-BF16 or AMX; without
    them oneDNN emulates bf16 and autocast is slower than fp32. Other devices: no."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":  # torch.cpu's probes are private: absent in a future torch reads as "no"
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, f, lambda: False)() for f in probes)
    return False


def resolve_precision(cfg: TrainConfig, device: torch.device) -> str:
    """"fp32" or "bf16". "auto" takes bf16 where it is native: on CPU it trains 1.9x faster with the same
    validation accuracy over 5 paired seeds (bf16 - fp32: +0.0015, 95 % CI -0.0011..+0.0041; BENCHMARKS.md)."""
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(cfg, device) == "bf16")


def shared_tensor(a: np.ndarray) -> torch.Tensor:
    """A zero-copy view. Arrays from Ray's object store are read-only shared memory, one copy per
    node for all its trials; nothing here writes to them, so torch's warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


_ON_DEVICE: dict = {}  # (device, host address, shape, dtype) -> (host array, its device copy): one data set's


def on_device(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """The image arrays as tensors on `device`; a zero-copy view on the CPU. An accelerator's copies stay
    for the process: with Ray's reuse_actors the next trial of an experiment finds its ~300 MB (200 px)
    already on the GPU instead of copying it again. Holding the host array keeps its address from
    being reused by other data, so the key cannot match stale copies; only these arrays' copies stay."""
    if device.type == "cpu":
        return [shared_tensor(a) for a in arrays]
    keys = [(str(device), a.__array_interface__["data"][0], a.shape, a.dtype.str) for a in arrays]
    kept = {k: _ON_DEVICE[k] if k in _ON_DEVICE else (a, shared_tensor(a).to(device)) for k, a in zip(keys, arrays)}
    _ON_DEVICE.clear()
    _ON_DEVICE.update(kept)
    return [kept[k][1] for k in keys]


def kept_on_device() -> int:
    """How many arrays on_device keeps on an accelerator now (tests, benchmarks)."""
    return len(_ON_DEVICE)
