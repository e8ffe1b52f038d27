"""One checkpoint format: one file holding one dict, written by `save` and read by `load`;
`load_model` / `model_from` turn it into the kept model, `load_resume` into fit()'s resume state.

    python -m study.checkpoint PATH      # prints what a checkpoint holds (config, epochs, kept metric, release)

Used by training (`study.train --out DIR` writes DIR/checkpoint.pt), the Ray trainable (every
epoch's Ray checkpoint is a folder holding only checkpoint.pt), resume, `study.predict`, the
shipped models in models/ and the report. As in the torchvision classification references, the
dict carries everything inference and resume need:

  format_version  FORMAT_VERSION
  config          TrainConfig.to_dict()
  model           the kept epoch's weights (the best METRIC so far): what inference loads
  last_model      the last epoch's weights       } resume only; absent from a
  optimizer       the optimizer's state_dict     } shipped (inference-only) model
  scheduler       the lr schedule's state_dict, None without one (resume only)
  epoch, best_epoch, best_metric, bad_epochs     where training stands; early-stopping patience
  precision       what cfg.precision resolved to on the training device ("fp32" / "bf16")
  records         one metrics dict per epoch
  rng             torch's CPU generator state (epochs also reseed from (seed, epoch), so a resumed
                  run repeats the uninterrupted one exactly)
  release         shipped models only: decision threshold, its rule, validation figures, command

Files are read with torch.load(weights_only=True): tensors and plain containers only, no pickled
code. A folder from before this format (model.pt, last.pt, config.json, state.json, metrics.json)
is read by the same `load`; anything else is refused with a one-line UserError.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from study.config import TrainConfig, UserError
from study.model import build_model

FORMAT_VERSION = 1
FILE = "checkpoint.pt"
INFERENCE_KEYS = ("format_version", "config", "model", "epoch", "best_epoch", "best_metric", "precision", "records",
                  "release")


def path_of(path: str | Path) -> Path:
    """A checkpoint file, or a folder holding FILE."""
    p = Path(path).expanduser()
    return p / FILE if p.is_dir() else p


def save(path: str | Path, ckpt: dict, inference_only: bool = False) -> Path:
    """Write `ckpt` (the keys above) to `path` (a file, or a folder that gets FILE) atomically: a
    killed write leaves the previous checkpoint, never half of one. inference_only drops the resume
    state (last weights, optimizer), as for a shipped model."""
    p = Path(path)
    if p.suffix != ".pt":
        p = p / FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    body = {**ckpt, "format_version": FORMAT_VERSION}
    if inference_only:
        body = {k: v for k, v in body.items() if k in INFERENCE_KEYS}
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    torch.save(body, tmp)
    os.replace(tmp, p)
    return p


def load(path: str | Path) -> dict:
    """The checkpoint dict at `path` (a file or a folder holding FILE; an older five-file folder is read
    too); UserError naming the path when it is none of these or cannot be read."""
    p = Path(path).expanduser()
    if p.is_dir() and not (p / FILE).is_file() and (p / "model.pt").is_file() and (p / "config.json").is_file():
        return _legacy(p)
    f = path_of(p)
    if not f.is_file():
        raise UserError(f"{path}: not a checkpoint; expected a {FILE} file or a folder holding one "
                        f"(written by python -m study.train --out DIR, or a study's checkpoint_NNNNNN/)")
    try:
        ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{f}: cannot read the checkpoint ({type(e).__name__}: {reason[:200]})") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise UserError(f"{f}: not a checkpoint of this project (no config and model in it)")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(f"{f}: checkpoint format {version}, this code reads format {FORMAT_VERSION}; "
                        f"use the version of this project that wrote it, or retrain")
    return ckpt


# Renamed or replaced config fields, so that older checkpoints keep loading ...
_LEGACY_FIELDS = {"class_weight": ("class_balance", {"none": "none", "balanced": "weights"})}
# ... and fields added since, with the value that reproduces what a checkpoint without them trained
# (not today's default: the default recipe changed when they came).
_ADDED_FIELDS = {"norm": "none", "augment_strength": 1.0, "class_balance": "none", "lr_schedule": "none",
                 "label_smoothing": 0.0}


def upgrade_config(config: dict) -> dict:
    out = dict(config)
    for old, (new, values) in _LEGACY_FIELDS.items():
        if old in out:
            v = out.pop(old)
            out.setdefault(new, values.get(v, v))
    for name, value in _ADDED_FIELDS.items():
        out.setdefault(name, value)
    return out


def _legacy(d: Path) -> dict:
    """A folder written before FORMAT_VERSION 1: model.pt (kept weights), config.json, and for resume
    last.pt (model + optimizer), state.json and metrics.json."""
    try:
        ckpt = {"format_version": 0, "config": json.loads((d / "config.json").read_text()),
                "model": torch.load(d / "model.pt", map_location="cpu", weights_only=True)}
        if (d / "metrics.json").is_file():
            ckpt["records"] = json.loads((d / "metrics.json").read_text())
        if (d / "state.json").is_file():
            ckpt.update(json.loads((d / "state.json").read_text()))
        if (d / "last.pt").is_file():
            last = torch.load(d / "last.pt", map_location="cpu", weights_only=True)
            ckpt.update({"last_model": last["model"], "optimizer": last["optimizer"]})
    except (OSError, RuntimeError, ValueError, EOFError, KeyError, pickle.UnpicklingError) as e:
        raise UserError(f"{d}: an older checkpoint folder that cannot be read ({type(e).__name__}: "
                        f"{str(e).strip()[:200]})") from None
    return ckpt


# ---- from a checkpoint to a model or a resumable state -------------------------------------------
def load_resume(path: str | Path) -> dict:
    """A resumable checkpoint (study.checkpoint.load) for fit(resume=...); UserError if it cannot resume."""
    ckpt = load(path)
    if ckpt.get("format_version") != FORMAT_VERSION:  # its best_metric was another metric and its config may
        raise UserError(f"{path}: a checkpoint from before format {FORMAT_VERSION} predicts but cannot resume; "
                        f"start this run again")  # describe another recipe: a resumed run would mix the two
    if "optimizer" not in ckpt or "last_model" not in ckpt:
        raise UserError(f"{path}: an inference-only checkpoint (a shipped model?) cannot resume training")
    return ckpt


def config_of(ckpt: dict, where: str = "checkpoint") -> TrainConfig:
    """A checkpoint's TrainConfig (older field names upgraded); a bad one is a UserError naming `where`."""
    try:
        return TrainConfig.from_overrides(upgrade_config(ckpt["config"]))
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def load_model(path: str | Path, device: torch.device | None = None) -> tuple[nn.Module, TrainConfig]:
    """The kept epoch's model (eval mode, in its training memory format) and its config, from a checkpoint."""
    return model_from(load(path), device, where=str(path))


def model_from(ckpt: dict, device: torch.device | None = None, where: str = "checkpoint") -> tuple[nn.Module, TrainConfig]:
    """The kept epoch's model and config of a loaded checkpoint dict (study.checkpoint.load)."""
    cfg = config_of(ckpt, where)
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise UserError(f"{where}: the weights do not fit the network its config describes "
                        f"({str(e).strip().splitlines()[0][:160]})") from None
    model = model.to(device or torch.device("cpu")).eval()
    return (model.to(memory_format=torch.channels_last) if cfg.channels_last else model), cfg


def describe(ckpt: dict) -> dict:
    """What a checkpoint holds, without its tensors."""
    out = {k: ckpt.get(k) for k in ("format_version", "epoch", "best_epoch", "best_metric", "precision")}
    out.update({"config": ckpt["config"], "epochs_recorded": len(ckpt.get("records") or []),
                "resumable": "optimizer" in ckpt and "last_model" in ckpt, "release": ckpt.get("release")})
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m study.checkpoint PATH", file=sys.stderr)
        sys.exit(2)
    try:
        print(json.dumps(describe(load(sys.argv[1])), indent=1, default=str))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
