"""A search space: one question of the study, as a typed object that overrides TrainConfig fields.

Each module of search_spaces/ defines `SPACE = SearchSpace(...)`: the question, its docstring (the grid
and why those values), the fields it fixes and searches (Ray Tune domains or plain values), how many
samples, the epoch budget, ASHA or not, an optional searcher, and the name of the analysis that answers
it (analysis/answers.py ANSWERS). `check` refuses an unknown field, a searched data field, a bad
budget, and every value the space can sample that breaks TrainConfig's rules, before Ray starts.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ray.tune.search.sample import Categorical, Domain, Float, Integer, Quantized

from study.config import DATA_FIELDS, TrainConfig
from study.errors import UserError

ANSWERS = ("seed_spread", "compare", "factors", "dropout", "optimizers", "early_stopping", "confirmation", "cost")
MAX_CHECKED = 100_000  # combinations; beyond it each searched key is checked alone against the base


@dataclass(frozen=True)
class Asha:
    """ASHA's rungs at grace_period * reduction_factor**k epochs (capped at the trial's budget)."""
    grace_period: int
    reduction_factor: float

    def built(self, max_epochs: int) -> dict:
        """What the scheduler is built with for a `max_epochs` budget (study.json records this)."""
        return {"grace_period": min(self.grace_period, max_epochs), "reduction_factor": self.reduction_factor}


@dataclass(frozen=True)
class SearchSpace:
    name: str
    question: str                  # the seed question, one line
    doc: str                       # the module docstring: the question, the grid and why
    searched: dict                 # TrainConfig field -> tune domain (grid_search, choice, randint...) or value
    fixed: dict = field(default_factory=dict)  # TrainConfig fields fixed for every trial
    num_samples: int = 1           # samples of `searched` (a grid is repeated, random domains redrawn)
    max_epochs: int = 12           # a trial's epoch budget (ASHA's max_t); a searched `epochs` overrides it
    asha: Asha | None = None       # None: FIFO, every trial runs its budget
    answer: str = "compare"        # the analysis that answers it (analysis/answers.py)
    searcher: Callable[[], Any] | None = None  # a Ray Tune searcher factory (default: Ray's seeded grid/random)
    epoch_budgets: tuple = ()      # budgets whose best METRIC the answer reads off each curve
    confirms: dict | None = None   # a confirmation stage: which configuration it retrains (study/tune/confirm.py)
    varies: tuple = ()             # data fields its family varies across experiments (search_spaces/budget.py); no flag sets them

    def check(self) -> "SearchSpace":
        where = f"search_spaces/{self.name}.py"
        fields = set(TrainConfig.field_names())
        for what, d in (("fixed", self.fixed), ("searched", self.searched)):
            unknown = sorted(set(d) - fields)
            if unknown:
                raise UserError(f"{where}: {what} has unknown key(s) {unknown}; valid: {sorted(fields)}")
        data = sorted(set(self.searched) & set(DATA_FIELDS))
        if data:
            raise UserError(f"{where}: data fields {data} cannot be searched (the data is prepared once per "
                            f"experiment); fix them instead")
        for what in ("num_samples", "max_epochs"):
            v = getattr(self, what)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"{where}: {what}={v!r}; expected a positive integer")
        if self.asha is not None and not (self.asha.grace_period >= 1 and self.asha.reduction_factor > 1):
            raise UserError(f"{where}: asha={self.asha}; expected grace_period >= 1 epoch and reduction_factor > 1")
        if self.answer not in ANSWERS:
            raise UserError(f"{where}: answer={self.answer!r}; expected one of {', '.join(ANSWERS)}")
        try:
            base = TrainConfig.from_overrides(self.fixed)  # bad fixed values fail here, before Ray starts
        except UserError as e:
            raise UserError(f"{where}: fixed: {e}") from None
        check_values(self.name, self.searched, base)
        return self


def candidates(key: str, value: Any) -> list:
    """Every value a searched entry can give a trial: grid values, choice categories, and the extreme
    values of randint / uniform / loguniform (and their quantized forms); a plain value as is.
    UserError for a domain whose values cannot be listed (sample_from, randn)."""
    if isinstance(value, dict) and set(value) == {"grid_search"}:
        return list(value["grid_search"])
    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, (Integer, Float)):
        lo, hi, q = value.lower, value.upper, getattr(value.get_sampler(), "q", None)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise UserError(f"{key}: {type(value.get_sampler()).__name__.lstrip('_')} domain {value.domain_str} is "
                            f"unbounded; use bounded tune.uniform / loguniform / randint so its values can be checked")
        if isinstance(value.get_sampler(), Quantized):  # multiples of q; the upper bound is included
            lo, hi = math.ceil(lo / q) * q, math.floor(hi / q) * q
            return [lo, hi - 1 if isinstance(value, Integer) and q == 1 else hi]
        return [lo, hi - 1] if isinstance(value, Integer) else [lo, math.nextafter(hi, lo)]  # upper excluded
    if isinstance(value, Domain):
        raise UserError(f"{key}: a {type(value).__name__} domain cannot be checked before Ray starts; use "
                        f"tune.grid_search, choice, randint, uniform or loguniform")
    return [value]


def check_values(name: str, searched: dict, base: TrainConfig) -> None:
    """Every configuration `searched` can sample on top of `base` (fixed fields, flags and --set) obeys
    TrainConfig's rules; else a UserError naming the space, the sampled values and the rule."""
    where = f"search_spaces/{name}.py: searched"
    try:
        values = {k: candidates(k, v) for k, v in searched.items()}
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
