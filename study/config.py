"""Every training knob in one frozen dataclass, each field with its rule and unit (the metric names: study/names.py).

    python -c "from study.config import TrainConfig; print(TrainConfig())"

Defaults are the seed notebook's Q1 network (Keras, 200x200x1, four Conv3x3-32 blocks, Dense 128,
sigmoid). The write-up does not state optimizer, learning rate, batch size or epochs; we take
Keras' defaults (Adam, lr 1e-3, batch 32) and 12 epochs (its curve peaks at epoch 11).

The training recipe is not the seed's: the generalization question's winner (RESULTS.md, CPU run
of 2026-11-23 at 64 px: augment=medium, class_balance=weights, norm=batch, mean stress balanced
accuracy 0.923 over 2 seeds against the seed recipe's 0.810). The seed recipe (SEED_RECIPE) stays
the Q1 control in search_spaces/baseline.py. A GPU run at 200 px should re-check this choice.

A search space overrides fields by name; an unknown name is an error (see `from_overrides`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping, get_args, get_origin

from annotated_types import Predicate
from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass as checked_dataclass
from pydantic.fields import FieldInfo

from study.errors import UserError
from study.levels import LEVELS as AUGMENT_LEVELS

OPTIMIZERS = ("sgd", "sgd_momentum", "nesterov", "adam", "rmsprop")
EXTRA_LAYERS = ("conv", "dense", "batchnorm", "dropout")
DROPOUT_PLACES = ("dense", "conv", "both")
AUGMENTS = tuple(AUGMENT_LEVELS)  # declared once, with their magnitudes, in study/levels.py
PRECISIONS = ("auto", "fp32", "bf16")
CLASS_BALANCES = ("none", "weights", "sampler")
NORMS = ("none", "batch")
VAL_SOURCES = ("split", "official")
LR_SCHEDULES = ("none", "cosine", "onecycle")

# The seed notebook's training recipe: no augmentation, no class balancing, no normalisation. The
# Q1 baseline keeps it as the control; TrainConfig's defaults carry the generalization winner.
SEED_RECIPE = {"augment": "none", "augment_strength": 1.0, "class_balance": "none", "norm": "none", "lr_schedule": "none",
               "label_smoothing": 0.0}

# Fields that decide which images a run sees; a study prepares its data once, so these are
# fixed per experiment and may not be searched.
DATA_FIELDS = ("resolution", "val_source", "val_fraction", "holdout_fraction", "split_seed",
               "max_train_images")


# ---- What a valid configuration is: declared once, next to each field ----------------------------
# Each field's type and range is its annotation (pydantic checks it and converts JSON/CLI values:
# "0.01" -> 0.01, [16, 32] -> (16, 32)); rules between fields are CROSS_RULES below. Every way a
# config is built (defaults, --set, a search space, a checkpoint's config, Ray's trial config,
# dataclasses.replace) runs the same check and raises UserError naming field, value and rule.
# `python -m study.inspect config` prints every rule.
def odd(k: int) -> bool:
    return k % 2 == 1


Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 2)]      # numpy seeds are < 2**32; the carve uses seed + 1
Fraction = Annotated[float, Field(ge=0, lt=1)]
Filters = Annotated[int, Field(ge=1, le=1024)]
Kernel = Annotated[int, Field(ge=1, le=31), Predicate(odd)]


@checked_dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class TrainConfig:
    # ---- data (fixed per study) ----
    resolution: Annotated[int, Field(ge=16, le=2048)] = 200  # px, square input side; seed: 200x200 grayscale
    val_source: Literal[VAL_SOURCES] = "split"  # "split": patient-level carve from train; "official": val/ (16 images)
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.10      # share of train patients used for validation
    holdout_fraction: Annotated[float, Field(ge=0, lt=0.5)] = 0.10  # share of train patients held out as our own test split
    split_seed: Seed = 0             # seeds the patient-level carve; same for every trial of a study
    max_train_images: Annotated[int, Field(ge=0)] = 0  # 0 = all; else a seeded stratified subset (CPU studies)
    augment: Literal[AUGMENTS] = "medium"  # level of study/levels.py: none / light / medium / strong (training only)
    augment_strength: Annotated[float, Field(ge=0, le=3)] = 1.0  # x the level's magnitudes (gamma: log scale); 1 = as declared

    # ---- model ----
    num_classes: Literal[2, 3] = 2   # 2: normal/pneumonia (1 logit, sigmoid); 3: normal/bacteria/virus (softmax)
    # conv filters per block (len = number of blocks) and each block's kernel side in px (odd, 'same' padding)
    filters: Annotated[tuple[Filters, ...], Field(min_length=1, max_length=10)] = (32, 32, 32, 32)
    kernel_sizes: Annotated[tuple[Kernel, ...], Field(min_length=1, max_length=10)] = (3, 3, 3, 3)
    dense_units: Annotated[int, Field(ge=1, le=8192)] = 128  # hidden dense layer width
    extra_layers: Annotated[tuple[Literal[EXTRA_LAYERS], ...], Field(max_length=8)] = ()  # added layers in order (model.py)
    dropout: Fraction = 0.0          # drop probability; 0 = no dropout layer
    dropout_place: Literal[DROPOUT_PLACES] = "dense"  # "dense": before the output layer; "conv": after each block; "both"
    norm: Literal[NORMS] = "batch"   # "batch": BatchNorm2d after every convolution; "none": as the seed

    # ---- optimisation ----
    optimizer: Literal[OPTIMIZERS] = "adam"
    lr: Annotated[float, Field(gt=0)] = 1e-3  # learning rate (finite, like every float here)
    momentum: Fraction = 0.9         # used by sgd_momentum and nesterov only (> 0 there: CROSS_RULES)
    weight_decay: Annotated[float, Field(ge=0)] = 0.0  # L2, per optimizer step
    lr_schedule: Literal[LR_SCHEDULES] = "none"  # per step: "none" (the seed: lr throughout); "cosine": linear warm-up
                                     # over warmup_epochs, then cosine from lr to 0 at the last step; "onecycle":
                                     # torch's OneCycleLR peaking at lr (30 % rising, then cosine down; Adam's beta1 cycles)
    warmup_epochs: Annotated[float, Field(ge=0, le=100)] = 1.0  # epochs of linear warm-up (cosine only): lr/N .. lr over N steps
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = 0.0  # epsilon: targets (1 - eps) * onehot + eps / classes
    batch_size: Count = 32           # images per step
    epochs: Count = 12               # full passes over train
    class_balance: Literal[CLASS_BALANCES] = "weights"  # "weights": inverse-frequency loss weights; "sampler": draw len(train)
                                     # images per epoch with replacement, each class equally likely
    early_stopping_patience: Annotated[int, Field(ge=0)] = 0  # epochs without improvement before stopping; 0 = off (not ASHA)

    # ---- runtime ----
    seed: Seed = 0                   # init, shuffling and augmentation
    precision: Literal[PRECISIONS] = "auto"  # "auto": bf16 where native (CUDA Ampere+, CPU AVX512-BF16/AMX), else fp32
    channels_last: bool = True       # memory format for convs (faster with oneDNN / cuDNN)

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, values: Any, handler):
        """Every field's rule, then CROSS_RULES; the first broken one is a one-line UserError."""
        try:
            cfg = handler(values)
        except ValidationError as e:
            raise UserError(_field_error(e, getattr(values, "kwargs", None) or {})) from None
        for names, rule, ok in CROSS_RULES:
            if not ok(cfg):
                raise UserError(f"{rule} (got {', '.join(f'{n}={getattr(cfg, n)!r}' for n in names)})")
        return cfg

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Defaults (or `base`) with `overrides` applied; unknown keys and bad values raise UserError."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(cls.field_names()))
        if unknown:
            raise UserError(f"config: unknown key(s) {unknown}; valid keys: {', '.join(cls.field_names())}")
        return dataclasses.replace(base or cls(), **{k: _loosen(k, v) for k, v in overrides.items()})

    @classmethod
    def from_strings(cls, pairs: list[str], base: "TrainConfig | None" = None) -> "TrainConfig":
        """Parse CLI `--set key=value` pairs (values as JSON when they parse, else strings)."""
        return cls.from_overrides(parse_pairs(pairs), base)

    @classmethod
    def from_json_file(cls, path: str | Path) -> "TrainConfig":
        """A config.json (a checkpoint's, a results tree's); a bad one is a UserError naming the file."""
        try:
            values = json.loads(Path(path).read_text())
            if not isinstance(values, dict):
                raise UserError(f"expected a JSON object of TrainConfig fields, got {type(values).__name__}")
            return cls.from_overrides(values)
        except (OSError, ValueError, UserError) as e:
            raise UserError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def data_key(self) -> tuple:
        """The fields that decide which images a run sees."""
        return tuple(getattr(self, f) for f in DATA_FIELDS)


# Rules between fields: (fields, rule, check). Checked after every field's own rule.
CROSS_RULES: tuple[tuple[tuple[str, ...], str, Callable[[TrainConfig], bool]], ...] = (
    (("filters", "kernel_sizes"), "filters and kernel_sizes need the same length (one kernel per conv block)",
     lambda c: len(c.filters) == len(c.kernel_sizes)),
    (("optimizer", "momentum"), "optimizers nesterov and sgd_momentum need momentum > 0 (with 0 they are "
     "plain sgd: use optimizer=sgd)", lambda c: c.optimizer not in ("nesterov", "sgd_momentum") or c.momentum > 0),
    (("lr_schedule", "warmup_epochs", "epochs"), "lr_schedule=cosine needs warmup_epochs < epochs (the warm-up must "
     "leave steps to anneal)", lambda c: c.lr_schedule != "cosine" or c.warmup_epochs < c.epochs),
)


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs -> {key: value}; values as JSON when they parse, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--set {pair!r}: expected key=value, e.g. --set lr=0.01")
        key, raw = pair.split("=", 1)
        out[key.strip()] = _json_or_str(raw)  # _loosen splits "a,b" for list fields
    return out


def _json_or_str(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _loosen(name: str, value: Any) -> Any:
    """What pydantic's conversions leave out: "a,b" (CLI) for a list field; a bool for a number is refused."""
    r = rule(name)
    if r.kind == "list" and isinstance(value, str):
        return tuple(_json_or_str(v.strip()) for v in value.split(",") if v.strip())
    if r.kind in ("int", "float") and isinstance(value, bool):
        raise UserError(f"{name} must be {r} (got {value!r})")
    return value


# ---- the declared rules, as data: messages, the search-space check and the fuzz test read them ----
@dataclass(frozen=True)
class Rule:
    """One field's declared rule: kind int/float/bool/str/choice/list, bounds, choices, list items."""
    kind: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()
    predicates: tuple[str, ...] = ()   # names of functions the value must satisfy (e.g. "odd")
    item: "Rule | None" = None         # list items
    min_len: int = 0
    max_len: int | None = None

    def __str__(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "list":
            n = (f"{self.min_len} to {self.max_len}" if self.min_len else f"at most {self.max_len}") \
                if self.max_len is not None else f"at least {self.min_len}"
            return f"a list of {n} item(s), each {self.item}"
        noun = {"int": "integer", "float": "finite number", "bool": "true or false", "str": "string"}[self.kind]
        if self.kind == "bool":
            return noun
        words = " ".join([*self.predicates, noun])
        pairs = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        bounds = [f"{op} {v if isinstance(v, int) else format(v, 'g')}" for op, v in pairs if v is not None]
        return ("an " if words[0] in "aeiou" else "a ") + words + (" " + " and ".join(bounds) if bounds else "")


def _rule_of(annotation: Any, metadata: list) -> Rule:
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return _rule_of(base, [*metadata, *extra])
    flat = []
    for m in metadata:  # a nested Field(...) carries its constraints as metadata
        flat += getattr(m, "metadata", None) or [m] if isinstance(m, FieldInfo) else [m]
    kw: dict[str, Any] = {}
    for m in flat:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(m, key, None) is not None:
                kw[key] = getattr(m, key)
        if isinstance(m, Predicate):
            kw["predicates"] = (*kw.get("predicates", ()), m.func.__name__)
        if getattr(m, "min_length", None) is not None:
            kw["min_len"] = m.min_length
        if getattr(m, "max_length", None) is not None:
            kw["max_len"] = m.max_length
    if get_origin(annotation) is Literal:
        return Rule("choice", choices=get_args(annotation))
    if get_origin(annotation) is tuple:
        return Rule("list", item=_rule_of(get_args(annotation)[0], []), **kw)
    return Rule({int: "int", float: "float", bool: "bool", str: "str"}[annotation], **kw)


@functools.cache
def rule(name: str) -> Rule:
    """The declared rule of TrainConfig field `name`."""
    f = TrainConfig.__pydantic_fields__[name]
    return _rule_of(f.annotation, list(f.metadata))


def _field_error(e: ValidationError, given: Mapping[str, Any]) -> str:
    err = e.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else ""
    more = f" (and {e.error_count() - 1} more problem(s))" if e.error_count() > 1 else ""
    if err["type"] == "unexpected_keyword_argument":
        return f"config: unknown key {name!r}; valid keys: {', '.join(TrainConfig.field_names())}"
    if name not in TrainConfig.__pydantic_fields__:
        return f"config: {err['msg']}{more}"
    return f"{name} must be {rule(name)} (got {given.get(name, err['input'])!r}){more}"


def describe_rules() -> str:
    """Every field's rule and the rules between fields, as `python -m study.inspect config` prints them."""
    lines = [f"{n:24s} {rule(n)}" for n in TrainConfig.field_names()]
    return "\n".join(lines + ["", "between fields:"] + [f"  {r}" for _, r, _ in CROSS_RULES])
