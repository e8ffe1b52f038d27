"""One checkpoint format: one file holding one dict, written by `save` and read by `load`;
`load_model` / `model_from` turn it into the kept model, `load_resume` into fit()'s resume state.

    python -m study.inspect checkpoint PATH   # prints what a model file holds (config, epochs, kept metric, release)

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

An ensemble is the same format (FORMAT_VERSION 2): instead of config and model it holds
  members         inference-only checkpoint dicts as above (config, model, best_epoch, best_metric,
                  precision), each with its `source` (the trial or file it came from)
  weights         one weight per member (they sum to 1): the ensemble's probabilities are the weighted mean
  tta             test-time views its predictions average over (study/data/augment.py TTA_VIEWS), [] for none
  selection       how the members were chosen (analysis.ensemble: rule, library, rounds, figures)
  gate            3-class two-stage files only: a released binary model file (one model or an ensemble)
                  that decides normal vs pneumonia at its own headline threshold
  release         as above
Every member predicts at the same resolution and for the same classes. `members(ckpt)` reads either
kind as (member, weight) pairs; study.engine.infer.predictor_from turns either into one predictor.

Files are read with torch.load(weights_only=True): tensors and plain containers only, no pickled
code. A folder from before this format (model.pt, last.pt, config.json, state.json, metrics.json)
is read by the same `load`; anything else is refused with a one-line UserError.
"""
from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from study.config import TrainConfig
from study.errors import IOFailure, UserError
from study.model import build_model

FORMAT_VERSION = 2   # 2: ensembles, the lr schedule's state; 1 (single models only) is still read
READS = (1, 2)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive format
FILE = "checkpoint.pt"
INFERENCE_KEYS = ("format_version", "config", "model", "epoch", "best_epoch", "best_metric", "precision", "records",
                  "release", "source", "members", "weights", "tta", "selection", "gate")
MEMBER_KEYS = ("config", "model", "epoch", "best_epoch", "best_metric", "precision", "source")


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
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IOFailure.writing(p.parent, e) from None
    body = {**ckpt, "format_version": FORMAT_VERSION}
    if inference_only:
        body = {k: v for k, v in body.items() if k in INFERENCE_KEYS}
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    buffer = io.BytesIO()
    torch.save(body, buffer)  # serialised in memory first: torch's own writer hides the OS error (disk full...)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
        os.replace(tmp, p)
    except OSError as e:  # disk full, a file-size limit, a read-only mount: the previous checkpoint stays
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise IOFailure.writing(p, e, "the previous checkpoint there, if any, is kept") from None
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
        with open(f, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        raise UserError(f"{f}: cannot read the checkpoint ({type(e).__name__}: {e.strerror or e})") from None
    if head != ZIP_MAGIC:  # torch.save writes a zip archive; anything else is not a checkpoint at all
        raise UserError(f"{f}: cannot read the checkpoint: not a PyTorch checkpoint file (it is not the zip archive "
                        f"torch.save writes); expected a {FILE} written by this project")
    try:
        ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # a real archive holding objects beyond tensors and plain containers
        raise UserError(f"{f}: cannot read the checkpoint: it holds objects other than tensors and plain containers, "
                        f"which are not loaded (weights_only); it was not written by this project "
                        f"({str(e).strip().splitlines()[-1][:120]})") from None
    except Exception as e:  # a damaged archive: torch raises many kinds (RuntimeError, KeyError, EOFError...)
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"{f}: cannot read the checkpoint: a damaged file ({type(e).__name__}: {reason})") from None
    problem = _shape_problem(ckpt)
    if problem:
        raise UserError(f"{f}: not a checkpoint of this project ({problem})")
    version = ckpt.get("format_version")
    if version not in READS:
        raise UserError(f"{f}: checkpoint format {version}, this code reads formats {', '.join(map(str, READS))}; "
                        f"use the version of this project that wrote it, or retrain")
    check_ensemble(ckpt, str(f))
    return ckpt


def _shape_problem(ckpt) -> str | None:
    """What is wrong with a loaded dict as a checkpoint of this format, or None."""
    if not isinstance(ckpt, dict):
        return f"a {type(ckpt).__name__}, not a dict"
    if "members" in ckpt:
        if not isinstance(ckpt["members"], list):
            return "its members are not a list"
        bad = next((p for p in map(_shape_problem, ckpt["members"]) if p), None)
        return f"a member: {bad}" if bad else None
    if "config" not in ckpt or "model" not in ckpt:
        return "no config and model in it"
    if not isinstance(ckpt["config"], dict):
        return "its config is not a dict of fields"
    if not isinstance(ckpt["model"], dict) or not all(isinstance(k, str) and torch.is_tensor(v)
                                                      for k, v in ckpt["model"].items()):
        return "its model is not a dict of named tensors"
    return None


def members(ckpt: dict) -> list[tuple[dict, float]]:
    """(member checkpoint, weight) pairs: [(ckpt, 1.0)] for one model, the members of an ensemble."""
    if "members" not in ckpt:
        return [(ckpt, 1.0)]
    return list(zip(ckpt["members"], ckpt["weights"]))


def check_ensemble(ckpt: dict, where: str) -> None:
    """An ensemble's members each hold a config and weights, with one positive weight each, one resolution and
    one task; a gate is a binary model file for a 3-class ensemble. UserError naming `where` otherwise."""
    if "members" not in ckpt and "gate" not in ckpt:
        return
    ms, ws = ckpt.get("members") or [], ckpt.get("weights") or []
    if "members" in ckpt and (not isinstance(ms, list) or not ms or len(ws) != len(ms)
                              or not all(isinstance(m, dict) and "config" in m and "model" in m for m in ms)
                              or not all(isinstance(w, (int, float)) and w > 0 for w in ws)):
        raise UserError(f"{where}: a damaged ensemble (expected members with config and model, one weight > 0 each)")
    kinds = {(int(c.get("resolution", 0)), int(c.get("num_classes", 2))) for c in (m["config"] for m, _ in members(ckpt))
             if isinstance(c, dict)}
    if len(kinds) != 1:
        raise UserError(f"{where}: ensemble members disagree on resolution or classes ({sorted(kinds)}); an ensemble "
                        f"predicts one task at one resolution")
    if "gate" in ckpt:
        gate = ckpt["gate"]
        if not isinstance(gate, dict) or "release" not in gate or next(iter(kinds))[1] != 3:
            raise UserError(f"{where}: a gate is a released binary model inside a 3-class file")
        check_ensemble(gate, f"{where} (gate)")


def ensemble(parts: list[tuple[dict, float]], tta: tuple[str, ...] = (), selection: dict | None = None,
             gate: dict | None = None) -> dict:
    """An ensemble checkpoint of (member checkpoint, weight) pairs (weights normalised to sum 1; each member
    kept with its inference keys and `source`), its test-time views, how it was chosen, and an optional
    two-stage gate (a released binary model dict). Written by `save` like any checkpoint."""
    total = float(sum(w for _, w in parts))
    body = {"members": [{k: m[k] for k in MEMBER_KEYS if k in m} for m, _ in parts],
            "weights": [float(w) / total for _, w in parts], "tta": [v for v in tta if v != "identity"],
            "selection": selection or {}, "format_version": FORMAT_VERSION}
    if gate is not None:
        body["gate"] = {k: v for k, v in gate.items() if k in INFERENCE_KEYS}
    check_ensemble(body, "ensemble")
    return body


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
    """A resumable checkpoint (study.engine.checkpoint.load) for fit(resume=...); UserError if it cannot resume."""
    ckpt = load(path)
    if ckpt.get("format_version") not in READS or "members" in ckpt:  # format 0 ranked epochs by another metric
        raise UserError(f"{path}: {'an ensemble' if 'members' in ckpt else 'a checkpoint from before format 1'} "
                        f"predicts but cannot resume; start this run again")
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
    """The kept epoch's model and config of a loaded single-model checkpoint dict (study.engine.checkpoint.load)."""
    if "members" in ckpt:
        raise UserError(f"{where}: an ensemble of {len(ckpt['members'])} models, not one model; load it with "
                        f"study.engine.infer.load_predictor (python -m study.predict --model takes either)")
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
    if "members" in ckpt:
        return {"format_version": ckpt.get("format_version"), "tta": ckpt.get("tta"), "selection": ckpt.get("selection"),
                "members": [{"weight": w, "source": m.get("source"), **describe(m)} for m, w in members(ckpt)],
                "gate": describe(ckpt["gate"]) if ckpt.get("gate") else None, "release": ckpt.get("release")}
    out = {k: ckpt.get(k) for k in ("format_version", "epoch", "best_epoch", "best_metric", "precision")}
    out.update({"config": ckpt["config"], "epochs_recorded": len(ckpt.get("records") or []),
                "resumable": "optimizer" in ckpt and "last_model" in ckpt, "release": ckpt.get("release")})
    return out
