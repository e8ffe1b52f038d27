"""Search spaces: one module per seed question; each overrides TrainConfig fields with `tune` domains.

A module defines:
  QUESTION     the seed question it answers, one line
  FIXED        TrainConfig fields fixed for every trial of the experiment (plain values)
  SPACE        TrainConfig fields searched (tune domains or plain values)
  NUM_SAMPLES  how many times Ray samples SPACE (grids are repeated; random domains redrawn)
  MAX_EPOCHS   the epoch budget of one trial (ASHA's max_t)
  ASHA         {"grace_period": epochs, "reduction_factor": r} or None (FIFO: every trial runs its budget)
and a docstring: the question, the grid, and why those values. Optionally `searcher()`: a Ray Tune
searcher for the space (default: Ray's grid/random variant generator, seeded).
"""
from __future__ import annotations

import importlib
import itertools
import math
from types import ModuleType
from typing import Any

from ray.tune.search.sample import Categorical, Domain, Float, Integer, Quantized

from study.config import DATA_FIELDS, TrainConfig, UserError

QUESTIONS = ("generalization", "baseline", "add_one_layer", "add_two_layers", "depth_kernels", "optimizers",
             "dropout", "early_stopping", "three_class", "tune_recipe", "capacity")
NAMES = QUESTIONS + ("quick",)
REQUIRED = ("QUESTION", "FIXED", "SPACE", "NUM_SAMPLES", "MAX_EPOCHS", "ASHA")


def expand(name: str) -> list[str]:
    """`all` -> every question in order; `a,b` -> [a, b] (run together); a single name -> [name]."""
    if name == "all":
        return list(QUESTIONS)
    names = list(dict.fromkeys(n.strip() for n in name.split(",")))
    for n in names:
        if n not in NAMES:
            raise UserError(f"--experiment {n!r}: unknown; choose one of {', '.join(NAMES)} or all, or several "
                            f"joined by commas (search_spaces/)")
    return names


def load(name: str) -> ModuleType:
    """Import search_spaces/<name>.py and check every key is a TrainConfig field."""
    if name not in NAMES:
        raise UserError(f"search space {name!r}: unknown; choose one of {', '.join(NAMES)} (search_spaces/)")
    mod = importlib.import_module(f"search_spaces.{name}")
    missing = [a for a in REQUIRED if not hasattr(mod, a)]
    if missing:
        raise UserError(f"search_spaces/{name}.py: missing {missing}")
    fields = set(TrainConfig.field_names())
    for what in ("FIXED", "SPACE"):
        unknown = sorted(set(getattr(mod, what)) - fields)
        if unknown:
            raise UserError(f"search_spaces/{name}.py: {what} has unknown key(s) {unknown}; valid: {sorted(fields)}")
    searched_data = sorted(set(mod.SPACE) & set(DATA_FIELDS))
    if searched_data:
        raise UserError(f"search_spaces/{name}.py: data fields {searched_data} cannot be searched (the data is "
                        f"prepared once per experiment); move them to FIXED")
    for what in ("NUM_SAMPLES", "MAX_EPOCHS"):
        v = getattr(mod, what)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UserError(f"search_spaces/{name}.py: {what}={v!r}; expected a positive integer")
    if mod.ASHA is not None and not (isinstance(mod.ASHA, dict) and set(mod.ASHA) == {"grace_period", "reduction_factor"}
                                     and int(mod.ASHA["grace_period"]) >= 1 and mod.ASHA["reduction_factor"] > 1):
        raise UserError(f"search_spaces/{name}.py: ASHA={mod.ASHA!r}; expected None or "
                        f"{{'grace_period': epochs >= 1, 'reduction_factor': > 1}}")
    try:
        base = TrainConfig.from_overrides(mod.FIXED)  # bad fixed values fail here, before Ray starts
    except UserError as e:
        raise UserError(f"search_spaces/{name}.py: FIXED: {e}") from None
    check_space(name, mod.SPACE, base)
    return mod


MAX_CHECKED = 100_000  # combinations; beyond it each searched key is checked alone against the base


def candidates(key: str, value: Any) -> list:
    """Every value a SPACE entry can give a trial: grid values, choice categories, and the extreme
    values of randint / uniform / loguniform (and their quantized forms); a plain value as is.
    UserError for a domain whose values cannot be listed (sample_from, randn)."""
    if isinstance(value, dict) and set(value) == {"grid_search"}:
        return list(value["grid_search"])
    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, (Integer, Float)):
        lo, hi, q = value.lower, value.upper, getattr(value.get_sampler(), "q", None)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise UserError(f"{key}: {type(value.get_sampler()).__name__.lstrip('_')} domain {value.domain_str} is unbounded; "
                            f"use bounded tune.uniform / loguniform / randint so its values can be checked")
        if isinstance(value.get_sampler(), Quantized):  # multiples of q; the upper bound is included
            lo, hi = math.ceil(lo / q) * q, math.floor(hi / q) * q
            return [lo, hi - 1 if isinstance(value, Integer) and q == 1 else hi]
        return [lo, hi - 1] if isinstance(value, Integer) else [lo, math.nextafter(hi, lo)]  # upper excluded
    if isinstance(value, Domain):
        raise UserError(f"{key}: a {type(value).__name__} domain cannot be checked before Ray starts; use "
                        f"tune.grid_search, choice, randint, uniform or loguniform")
    return [value]


def check_space(name: str, space: dict, base: TrainConfig) -> None:
    """Every configuration the space can sample on top of `base` (FIXED, flags and --set) obeys
    TrainConfig's rules; else a UserError naming the space, the sampled values and the rule."""
    where = f"search_spaces/{name}.py: SPACE"
    try:
        values = {k: candidates(k, v) for k, v in space.items()}
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    if math.prod(len(v) for v in values.values()) > MAX_CHECKED:
        combos = ({k: v} for k, vs in values.items() for v in vs)
    else:
        combos = (dict(zip(values, c)) for c in itertools.product(*values.values()))
    for combo in combos:
        try:
            TrainConfig.from_overrides(combo, base)
        except UserError as e:
            sampled = ", ".join(f"{k}={v!r}" for k, v in combo.items())
            raise UserError(f"{where} can sample {sampled}, which breaks a rule: {e}") from None
