"""Every search space loads, its keys are config fields, and every sampled config trains one step."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ray import tune
from ray.tune.search.variant_generator import generate_variants

import search_spaces
from helpers.common import tiny
from study.config import DATA_FIELDS, TrainConfig
from study.engine.loop import make_loss, make_optimizer, train_one_epoch
from study.errors import UserError
from study.model import build_model
from study.tune.space import Asha, candidates


def sampled_configs(name: str) -> list[TrainConfig]:
    space = search_spaces.load(name)
    base = {**tiny().to_dict(), **{k: v for k, v in space.fixed.items() if k != "resolution"}}
    out = []
    for _ in range(space.num_samples):
        for _, resolved in generate_variants({**base, **space.searched}):
            out.append(TrainConfig.from_overrides(resolved))
    return out


@pytest.mark.parametrize("name", search_spaces.NAMES)
def test_space_is_documented_and_valid(name):
    space = search_spaces.load(name)
    assert space.doc and len(space.doc) > 200, "the docstring states the question, grid and why"
    assert space.max_epochs >= 1 and space.num_samples >= 1 and space.name == name
    assert not set(space.searched) & set(DATA_FIELDS)


@pytest.mark.parametrize("name", search_spaces.NAMES)
def test_every_sampled_config_trains_one_step(name, tiny_data):
    configs = sampled_configs(name)
    assert len(configs) >= 2
    for cfg in configs:
        model = build_model(cfg)
        x = torch.from_numpy(tiny_data.train.images[:4])
        y = torch.from_numpy((tiny_data.train.labels3[:4] > 0).astype(np.int64) if cfg.num_classes == 2
                             else tiny_data.train.labels3[:4])
        out = train_one_epoch(model, make_optimizer(cfg, model.parameters()),
                              make_loss(cfg, tiny_data.train.labels3, torch.device("cpu")),
                              tiny_data.train.images[:4], x, y, cfg, epoch=1)
        assert np.isfinite(out["train_loss"]) or cfg.lr >= 0.03, (name, cfg)


def test_questions_cover_the_seed():
    assert len(sampled_configs("depth_kernels")) - 1 >= 5  # at least five changes from the seed network
    opts = {c.optimizer for c in sampled_configs("optimizers")}
    assert opts == {"sgd", "sgd_momentum", "nesterov", "adam", "rmsprop"}
    assert {c.num_classes for c in sampled_configs("three_class")} == {3}
    assert search_spaces.expand("all") == list(search_spaces.NAMES[:-1])  # every question, a family as its members


def test_budget_is_one_experiment_per_resolution_and_refuses_a_resolution_flag():
    from types import SimpleNamespace

    from study.tune.plan import plan
    names = search_spaces.expand("budget")
    assert names == [f"budget_{r}" for r in (32, 64, 96, 128, 200)]
    assert [search_spaces.load(n).fixed["resolution"] for n in names] == [32, 64, 96, 128, 200]
    args = SimpleNamespace(set=[], max_epochs=None, resolution=64, max_train_images=None, num_samples=None)
    with pytest.raises(UserError, match="--resolution"):
        plan(search_spaces.load("budget_96"), args)
    args.resolution = None
    assert plan(search_spaces.load("budget_96"), args).base.resolution == 96


def _edit(monkeypatch, name: str, **fields) -> None:
    """search_spaces/NAME.py's SPACE replaced by a copy with `fields` changed (searched/fixed: merged)."""
    import dataclasses
    import importlib
    mod = importlib.import_module(f"search_spaces.{name}")
    for k in ("searched", "fixed"):
        if k in fields:
            fields[k] = {**getattr(mod.SPACE, k), **fields[k]}
    monkeypatch.setattr(mod, "SPACE", dataclasses.replace(mod.SPACE, **fields))


def test_unknown_key_in_a_space_is_an_error(monkeypatch):
    _edit(monkeypatch, "dropout", searched={"dropuot": 0.5})
    with pytest.raises(UserError, match="dropuot"):
        search_spaces.load("dropout")


def test_searching_a_data_field_is_an_error(monkeypatch):
    _edit(monkeypatch, "quick", searched={"resolution": [32, 64]})
    with pytest.raises(UserError, match="resolution"):
        search_spaces.load("quick")


def test_generalization_grids_every_recipe_with_two_seeds():
    configs = sampled_configs("generalization")
    recipes = {(c.augment, c.class_balance, c.norm) for c in configs}
    assert recipes == {(a, b, n) for a in ("none", "light", "medium", "strong")
                       for b in ("none", "weights", "sampler") for n in ("none", "batch")}
    assert len(configs) == 2 * len(recipes) and search_spaces.load("generalization").asha is None


def test_baseline_keeps_the_seed_recipe_as_the_control():
    from study.config import SEED_RECIPE
    for c in sampled_configs("baseline"):
        assert {k: getattr(c, k) for k in SEED_RECIPE} == SEED_RECIPE


def test_tune_recipe_searches_with_seeded_tpe_behind_a_limiter():
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from study.names import METRIC
    from study.tune.tuner import make_searcher
    space = search_spaces.load("tune_recipe")
    s = make_searcher(space)
    assert isinstance(s, ConcurrencyLimiter) and 1 < s.max_concurrent <= 4
    tpe = s.searcher
    assert isinstance(tpe, OptunaSearch) and tpe.metric == METRIC and tpe._seed is not None
    d = TrainConfig()
    assert tpe._points_to_evaluate[0]["lr"] == d.lr and tpe._points_to_evaluate[0]["augment_strength"] == d.augment_strength
    assert set(space.searched) == {"augment_strength", "lr", "weight_decay"}
    # a space without its own searcher gets the seeded grid/random generator
    from ray.tune.search import BasicVariantGenerator
    assert isinstance(make_searcher(search_spaces.load("quick")), BasicVariantGenerator)
# ---- every value a space can sample obeys TrainConfig's rules, before Ray starts -----------------
@pytest.mark.parametrize("value,words", [
    (tune.loguniform(1e-4, 1e-1), None),
    (tune.uniform(0, 1), ["lr=0", "lr must be a finite number > 0"]),  # the lower bound is sampled
    (tune.grid_search([1e-3, -1e-3]), ["lr=-0.001"]),
    (tune.choice([1e-3, float("inf")]), ["lr=inf", "finite"]),
    (tune.randn(0, 1), ["unbounded"]),
    (tune.sample_from(lambda spec: 0.1), ["cannot be checked"]),
])
def test_space_values_are_checked_against_the_rules(monkeypatch, value, words):
    _edit(monkeypatch, "quick", searched={"lr": value})
    if words is None:
        search_spaces.load("quick")
        return
    with pytest.raises(UserError) as e:
        search_spaces.load("quick")
    assert str(e.value).startswith("search_spaces/quick.py: searched") and all(w in str(e.value) for w in words), e.value


def test_domain_bounds_are_the_ones_ray_samples():
    assert candidates("seed", tune.randint(0, 10)) == [0, 9]  # upper excluded
    assert candidates("dense_units", tune.qrandint(8, 64, 8)) == [8, 64]  # quantized: upper included
    lo, hi = candidates("dropout", tune.uniform(0, 1))
    assert lo == 0 and hi < 1  # upper excluded: dropout < 1 holds for every sample
    assert candidates("dropout", tune.quniform(0, 0.75, 0.25)) == [0, 0.75]


def test_cross_field_rules_see_the_fixed_values(monkeypatch):
    """quick searches nesterov; a fixed (or --set) momentum=0 makes it invalid for those trials."""
    _edit(monkeypatch, "quick", fixed={"momentum": 0.0})
    with pytest.raises(UserError, match=r"can sample optimizer='sgd_momentum'.*momentum > 0"):
        search_spaces.load("quick")


@pytest.mark.parametrize("attr,value", [("num_samples", 0), ("max_epochs", -1), ("asha", Asha(0, 2)),
                                        ("asha", Asha(1, 1)), ("answer", "guess")])
def test_space_constants_are_checked(monkeypatch, attr, value):
    _edit(monkeypatch, "quick", **{attr: value})
    with pytest.raises(UserError, match=attr):
        search_spaces.load("quick")


def test_a_module_without_a_search_space_is_an_error(monkeypatch):
    import importlib
    monkeypatch.setattr(importlib.import_module("search_spaces.quick"), "SPACE", {"lr": 0.1})
    with pytest.raises(UserError, match=r"expected SPACE = SearchSpace\(name='quick'"):
        search_spaces.load("quick")


def test_every_declared_answer_has_one_analysis_and_every_analysis_a_name():
    """study.tune.space.ANSWERS (what a space may name) and analysis.answers' functions are one list (issue 28)."""
    from analysis import answers
    from study.tune import space
    assert set(answers.ANSWERS) | set(answers.NEEDS_TREE) == set(space.ANSWERS)
    assert not set(answers.ANSWERS) & set(answers.NEEDS_TREE)
    assert {s.answer for s in map(search_spaces.load, search_spaces.NAMES)} <= set(space.ANSWERS)
