"""Every search space loads, its keys are config fields, and every sampled config trains one step."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ray import tune
from ray.tune.search.variant_generator import generate_variants

import search_spaces
from conftest import tiny
from study.config import DATA_FIELDS, TrainConfig, UserError
from study.model import build_model
from study.engine.loop import make_loss, make_optimizer, train_one_epoch


def sampled_configs(name: str) -> list[TrainConfig]:
    mod = search_spaces.load(name)
    base = {**tiny().to_dict(), **{k: v for k, v in mod.FIXED.items() if k != "resolution"}}
    out = []
    for _ in range(mod.NUM_SAMPLES):
        for _, resolved in generate_variants({**base, **mod.SPACE}):
            out.append(TrainConfig.from_overrides(resolved))
    return out


@pytest.mark.parametrize("name", search_spaces.NAMES)
def test_space_is_documented_and_valid(name):
    mod = search_spaces.load(name)
    assert mod.__doc__ and len(mod.__doc__) > 200, "the docstring states the question, grid and why"
    assert mod.MAX_EPOCHS >= 1 and mod.NUM_SAMPLES >= 1
    assert not set(mod.SPACE) & set(DATA_FIELDS)


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
    assert search_spaces.expand("all") == list(search_spaces.QUESTIONS)


def test_unknown_key_in_a_space_is_an_error(monkeypatch):
    mod = search_spaces.load("dropout")
    monkeypatch.setitem(mod.SPACE, "dropuot", 0.5)
    with pytest.raises(UserError, match="dropuot"):
        search_spaces.load("dropout")


def test_searching_a_data_field_is_an_error(monkeypatch):
    mod = search_spaces.load("quick")
    monkeypatch.setitem(mod.SPACE, "resolution", [32, 64])
    with pytest.raises(UserError, match="resolution"):
        search_spaces.load("quick")


def test_generalization_grids_every_recipe_with_two_seeds():
    configs = sampled_configs("generalization")
    recipes = {(c.augment, c.class_balance, c.norm) for c in configs}
    assert recipes == {(a, b, n) for a in ("none", "light", "medium", "strong")
                       for b in ("none", "weights", "sampler") for n in ("none", "batch")}
    assert len(configs) == 2 * len(recipes) and search_spaces.load("generalization").ASHA is None


def test_baseline_keeps_the_seed_recipe_as_the_control():
    from study.config import SEED_RECIPE
    for c in sampled_configs("baseline"):
        assert {k: getattr(c, k) for k in SEED_RECIPE} == SEED_RECIPE


def test_tune_recipe_searches_with_seeded_tpe_behind_a_limiter():
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch
    from study.config import METRIC
    from study.tuner import make_searcher
    mod = search_spaces.load("tune_recipe")
    s = make_searcher(mod)
    assert isinstance(s, ConcurrencyLimiter) and 1 < s.max_concurrent <= 4
    tpe = s.searcher
    assert isinstance(tpe, OptunaSearch) and tpe.metric == METRIC and tpe._seed is not None
    d = TrainConfig()
    assert tpe._points_to_evaluate[0]["lr"] == d.lr and tpe._points_to_evaluate[0]["augment_strength"] == d.augment_strength
    assert set(mod.SPACE) == {"augment_strength", "lr", "weight_decay"}
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
    mod = search_spaces.load("quick")
    monkeypatch.setitem(mod.SPACE, "lr", value)
    if words is None:
        search_spaces.load("quick")
        return
    with pytest.raises(UserError) as e:
        search_spaces.load("quick")
    assert str(e.value).startswith("search_spaces/quick.py: SPACE") and all(w in str(e.value) for w in words), e.value


def test_domain_bounds_are_the_ones_ray_samples():
    assert search_spaces.candidates("seed", tune.randint(0, 10)) == [0, 9]  # upper excluded
    assert search_spaces.candidates("dense_units", tune.qrandint(8, 64, 8)) == [8, 64]  # quantized: upper included
    lo, hi = search_spaces.candidates("dropout", tune.uniform(0, 1))
    assert lo == 0 and hi < 1  # upper excluded: dropout < 1 holds for every sample
    assert search_spaces.candidates("dropout", tune.quniform(0, 0.75, 0.25)) == [0, 0.75]


def test_cross_field_rules_see_the_fixed_values(monkeypatch):
    """quick searches nesterov; a FIXED (or --set) momentum=0 makes it invalid for those trials."""
    mod = search_spaces.load("quick")
    monkeypatch.setitem(mod.FIXED, "momentum", 0.0)
    with pytest.raises(UserError, match=r"can sample optimizer='sgd_momentum'.*momentum > 0"):
        search_spaces.load("quick")


@pytest.mark.parametrize("attr,value", [("NUM_SAMPLES", 0), ("MAX_EPOCHS", -1),
                                        ("ASHA", {"grace_period": 0, "reduction_factor": 2}),
                                        ("ASHA", {"grace_period": 1, "reduction_factor": 1})])
def test_space_constants_are_checked(monkeypatch, attr, value):
    mod = search_spaces.load("quick")
    monkeypatch.setattr(mod, attr, value)
    with pytest.raises(UserError, match=attr):
        search_spaces.load("quick")
