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
from types import ModuleType

from study.config import DATA_FIELDS, TrainConfig, UserError

QUESTIONS = ("generalization", "baseline", "add_one_layer", "add_two_layers", "depth_kernels", "optimizers",
             "dropout", "early_stopping", "three_class", "tune_recipe")
NAMES = QUESTIONS + ("quick",)
REQUIRED = ("QUESTION", "FIXED", "SPACE", "NUM_SAMPLES", "MAX_EPOCHS", "ASHA")


def expand(name: str) -> list[str]:
    """`all` -> every question in order; a single name -> [name]."""
    if name == "all":
        return list(QUESTIONS)
    if name not in NAMES:
        raise UserError(f"--experiment {name!r}: unknown; choose one of {', '.join(NAMES)} or all (search_spaces/)")
    return [name]


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
    TrainConfig.from_overrides(mod.FIXED)  # bad fixed values fail here, before Ray starts
    return mod
