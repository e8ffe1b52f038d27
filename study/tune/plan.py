"""What one experiment will run, fixed before Ray starts: its base configuration (the space's fixed fields,
the flags and --set) and Ray's param_space, every sampled value checked; and the settings a --resume of
it must repeat.

A resumed experiment must run with exactly the settings it was started with: STORAGE/EXPERIMENT/
settings.json holds them (written before its first trial); `check_resume` refuses any difference with
one line naming each changed flag, so a resumed study never mixes two configurations.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ray.tune
from ray.tune.search.sample import Domain

from study.config import TrainConfig, parse_pairs
from study.errors import UserError
from study.names import SETTINGS_FILE
from study.storage import exists, is_uri, read_text, write_text
from study.tune.space import SearchSpace, candidates, check_values

FLAG_OF = {"resolution": "--resolution", "epochs": "--max-epochs", "max_train_images": "--max-train-images"}


@dataclass(frozen=True)
class Plan:
    name: str
    base: TrainConfig     # every trial's configuration before the searched fields
    param_space: dict     # Ray's param_space: the base's fields and the searched domains
    space: SearchSpace
    num_samples: int

    @property
    def searched(self) -> dict:
        return {k: self.param_space[k] for k in self.space.searched}

    @property
    def asha_built(self) -> dict | None:
        return self.space.asha.built(self.base.epochs) if self.space.asha else None


def plan(space: SearchSpace, args) -> Plan:
    """The experiment `space` with the flags (--max-epochs, --resolution, --max-train-images, --num-samples)
    and --set applied; UserError for --set on a searched field or any sample that breaks a rule."""
    flags = {k for k, flag in FLAG_OF.items() if getattr(args, flag[2:].replace("-", "_"), None) is not None}
    pinned = sorted((set(parse_pairs(args.set)) | flags) & set(space.varies))
    if pinned:
        raise UserError(f"{space.name} is one value of {pinned[0]} in a question that varies it; drop "
                        f"{FLAG_OF.get(pinned[0], '--set ' + pinned[0])}")
    setting = sorted(set(parse_pairs(args.set)) & set(space.searched))
    if setting:
        raise UserError(f"{setting[0]} is searched by {space.name}; drop --set {setting[0]} or pick a question that "
                        f"does not search it")
    searched = dict(space.searched)
    if "epochs" in searched:  # each trial's own budget; --max-epochs scales the grid so that its longest is N
        grid = candidates("epochs", searched["epochs"])
        if args.max_epochs:
            grid = sorted({max(1, round(e * args.max_epochs / max(grid))) for e in grid})
            searched["epochs"] = ray.tune.grid_search(grid)
        epochs = max(grid)  # ASHA's max_t and the base config's
    else:
        epochs = args.max_epochs or space.max_epochs
    fixed = {**space.fixed, "epochs": epochs}
    if args.resolution is not None:
        fixed["resolution"] = args.resolution
    if args.max_train_images is not None:
        fixed["max_train_images"] = args.max_train_images
    base = TrainConfig.from_strings(args.set, TrainConfig.from_overrides(fixed))
    check_values(space.name, searched, base)  # with the flags and --set: every trial's config is valid
    return Plan(space.name, base, {**base.to_dict(), **searched}, space, args.num_samples or space.num_samples)


def _shown(v):
    """A searched value as settings.json keeps it: grids as lists, other domains by their kind and bounds."""
    if isinstance(v, Domain):
        return f"{type(v).__name__}{v.domain_str}"
    return json.loads(json.dumps(v, default=str))


def settings(p: Plan, args) -> dict:
    data = args.data if not args.data or is_uri(args.data) else str(Path(args.data).resolve())
    return {"base_config": json.loads(json.dumps(p.base.to_dict())), "searched": {k: _shown(v) for k, v in
            p.searched.items()}, "num_samples": p.num_samples, "data": data, "strict": bool(args.strict)}


def write_settings(path: str, p: Plan, args) -> None:
    write_text(f"{path}/{SETTINGS_FILE}", json.dumps(settings(p, args), indent=1))


def check_resume(path: str, p: Plan, args) -> None:
    """A --resume of the experiment at `path` repeats the settings it started with, or a UserError naming
    each flag that differs (an experiment from before settings.json existed is resumed as it is)."""
    where = f"{path}/{SETTINGS_FILE}"
    if not exists(where):
        return
    try:
        old = json.loads(read_text(where))
    except ValueError:
        raise UserError(f"{where}: damaged (not JSON); pass --overwrite to start {p.name} again") from None
    new, changed = settings(p, args), []
    for k in sorted(set(old.get("base_config", {})) | set(new["base_config"])):
        a, b = old.get("base_config", {}).get(k), new["base_config"].get(k)
        if a != b and not (k == "epochs" and "epochs" in p.space.searched):
            changed.append(f"{FLAG_OF.get(k, '--set ' + k)} {b} (started with {a})")
    if old.get("searched") != new["searched"]:
        changed.append(f"--max-epochs (searched values {new['searched']}, started with {old.get('searched')})")
    for k, flag in (("num_samples", "--num-samples"), ("data", "--data"), ("strict", "--strict")):
        if old.get(k) != new[k]:
            changed.append(f"{flag} {new[k]} (started with {old.get(k)})")
    if changed:
        raise UserError(f"--resume of {p.name} with other settings than it was started with: {'; '.join(changed)}. "
                        f"Run it with the settings in {where}, or pass --overwrite to start it again")
