"""Fuzz: configurations and flag values drawn across and just outside every declared range (read from
TrainConfig's own rules, so a new field is fuzzed too). Each one either builds, prepares its data
and trains one tiny step, or fails with a one-line UserError; never a traceback. Bounded and
derandomized: the same examples on every run, a few seconds each on 2 cores."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from study import run as run_mod
from study.config import Rule, TrainConfig, rule
from study.data.splits import prepare
from study.engine.loop import make_loss, make_optimizer, train_one_epoch
from study.errors import UserError
from study.model import build_model
from study.tune import driver

# In-range values of the fields that make a model big are drawn below these caps (the bounds
# themselves are still drawn by the validation-only test): one step stays tiny.
CHEAP = {"resolution": 40, "filters": 8, "dense_units": 32, "batch_size": 8}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def number(r: Rule, cap: float | None = None):
    """Values inside the rule (up to `cap` for cost), on its bounds, and just outside them."""
    integer = r.kind == "int"
    lo = r.ge if r.ge is not None else r.gt
    hi = r.le if r.le is not None else r.lt
    top = min(x for x in (hi, cap, (lo or 0) + 1000) if x is not None)
    step = (lambda x, d: x + d) if integer else (lambda x, d: math.nextafter(x, x + d))
    edges = [e for b in (lo, hi) if b is not None for e in (b, step(b, -1), step(b, 1))]
    if cap is not None:
        edges = [e for e in edges if e <= cap or (hi is not None and e > hi)]
    inside = st.integers(int(lo), int(top)) if integer else st.floats(lo, top, allow_nan=False)
    extra = [] if integer else [math.inf, -math.inf, math.nan]
    return st.one_of(inside, st.sampled_from(edges + extra + ["x"]))


def values(name: str, cheap: bool):
    r = rule(name)
    cap = CHEAP.get(name) if cheap else None
    if r.kind == "choice":
        return st.sampled_from([*r.choices, "bogus", 7])
    if r.kind == "bool":
        return st.sampled_from([True, False, "yes", "no", "maybe", 2])
    if r.kind in ("int", "float"):
        return number(r, cap)
    item = r.item
    items = (number(item, cap) if item.kind in ("int", "float") else st.sampled_from([*item.choices, "lstm"]))
    return st.lists(items, min_size=max(0, r.min_len - 1), max_size=min(r.max_len or 4, 4) + (1 if not cheap else 0))


def configs(cheap: bool, most: int | None = None):
    """Any subset of the fields (at most `most` of them), each drawn by `values`."""
    fields = TrainConfig.field_names()
    if most is None:
        return st.fixed_dictionaries({}, optional={f: values(f, cheap) for f in fields})
    return st.sets(st.sampled_from(fields), max_size=most).flatmap(
        lambda keys: st.fixed_dictionaries({k: values(k, cheap) for k in sorted(keys)}))


def one_line(e: UserError) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


@settings(FUZZ, max_examples=300)
@given(overrides=configs(cheap=False))
def test_any_values_build_or_fail_in_one_line(overrides):
    try:
        cfg = TrainConfig.from_overrides(overrides)
    except UserError as e:
        msg = one_line(e)
        assert any(k in msg for k in overrides) or msg.startswith("config:"), msg
        return
    assert cfg == TrainConfig.from_overrides(cfg.to_dict()), "a valid config must survive its own JSON"


@settings(FUZZ, max_examples=60)
@given(overrides=configs(cheap=True, most=4))
def test_valid_configs_prepare_and_train_one_step(overrides, tiny_data):
    try:
        cfg = TrainConfig.from_overrides(overrides)
        data = prepare(None, dataclasses.replace(cfg, resolution=32), progress=False)  # the data fields, cheaply
    except UserError as e:
        event("refused: " + str(e).split(" ")[0])
        one_line(e)
        return
    event("trained")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, cfg.resolution, cfg.resolution), dtype=np.uint8)
    labels3 = data.train.labels3[:4]
    y = torch.from_numpy((labels3 > 0).astype(np.int64) if cfg.num_classes == 2 else labels3)
    model = build_model(cfg)
    out = train_one_epoch(model, make_optimizer(cfg, model.parameters()), make_loss(cfg, data.train.labels3, torch.device("cpu")),
                          images, torch.from_numpy(images), y, cfg, epoch=1)
    assert "train_loss" in out  # finite or not: a non-finite loss is fit()'s divergence, not a crash


def flag(name: str):
    return st.one_of(st.just(None), st.sampled_from(["-1", "0", "1", "2", "1.5", "x", ""])).map(
        lambda v: [] if v is None else [name, v])


class RayStarted(Exception):
    pass


@FUZZ
@given(flags=st.tuples(flag("--num-samples"), flag("--max-epochs"), flag("--max-failures"), flag("--max-concurrent"),
                       flag("--cpus-per-trial"), flag("--gpus-per-trial"),
                       st.sampled_from([[], ["--resolution", "15"], ["--resolution", "16"], ["--resolution", "32"],
                                        ["--resolution", "0"]]),
                       st.sampled_from([[], ["--max-train-images", "1"], ["--max-train-images", "3"],
                                        ["--max-train-images", "288"], ["--max-train-images", "100000"]]),
                       st.sampled_from([[], ["--set", "momentum=0"], ["--set", "lr=0.5"], ["--set", "dropout=0.5"],
                                        ["--set", "val_fraction=0.001"], ["--set", "batch_size=0"]])))
def test_study_flags_start_or_fail_in_one_line(flags, tmp_path_factory, monkeypatch, capsys):
    def tripwire(*a, **k):
        raise RayStarted
    monkeypatch.setattr(driver.ray, "init", tripwire)
    storage = tmp_path_factory.mktemp("fuzz") / "r"
    try:
        code = run_mod.main([a for f in flags for a in f] + ["--storage", str(storage)])
    except SystemExit as e:  # argparse's exit, as on the command line
        code = e.code
    except RayStarted:
        return  # every check passed: the study would start now
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (flags, code, err)
    assert not storage.exists()


# ---- study.predict and analysis.report inputs: random bytes and random folder shapes ----------------------
def _in_process(main, argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    return code, err


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image=st.one_of(st.binary(max_size=600), st.sampled_from([b"\xff\xd8\xff\xe0" + bytes(200), b"\x89PNG\r\n\x1a\n"])),
       ckpt=st.one_of(st.binary(max_size=600), st.sampled_from([b"PK\x03\x04" + bytes(100), b""])))
def test_predict_takes_random_bytes_as_images_and_checkpoints(image, ckpt, tmp_path_factory, capsys):
    """Random bytes as an image are a skipped file (exit 1, one line); as a model file, one error line (exit 2)."""
    from study import predict
    d = tmp_path_factory.mktemp("bytes")
    img, model = d / "x.jpeg", d / "m.pt"
    img.write_bytes(image)
    model.write_bytes(ckpt)
    code, err = _in_process(predict.main, [str(img), "--json"], capsys)
    assert code == 1 and "(skipped)" in err and "Traceback" not in err, err
    code, err = _in_process(predict.main, ["--model", str(model), str(img)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and str(model) in lines[0], err


def _tree(root, shape: list) -> None:
    """A results tree from a random shape: (path, content) with content None for a folder."""
    for rel, content in shape:
        p = root / rel
        if any(q.is_file() for q in [p, *p.parents]) or (content is not None and p.is_dir()):
            continue  # the shape already put a file (or a folder) there
        if content is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)


JSONISH = st.one_of(st.binary(max_size=60), st.sampled_from([
    b"{}", b"[]", b"3", b'{"experiment": 5}', b'{"experiment": "e", "searched": "lr"}', b'{"summary": []}',
    b'{"experiment": "e", "searched": ["lr"], "summary": {"trials": 9, "trial_names": ["t"]}}', b'{"epoch": 1}\n{"ep',
    b'{"epoch": 1, "status": "finished", "best_val_shift_bacc": 0.5}\n']))
NAMES = st.sampled_from(["study.json", "e/study.json", "e/t1/params.json", "e/t1/result.json", "e/t2/result.json",
                         "e/t1/checkpoint_000000/checkpoint.pt", "e/experiment_state-x.json", "f/study.json",
                         "e/t1/error.txt"])


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(shape=st.lists(st.tuples(NAMES, st.one_of(st.none(), JSONISH)), min_size=1, max_size=7))
def test_report_takes_random_folder_shapes(shape, tmp_path_factory, capsys):
    """Random results trees: the report either builds (damaged trials listed) or stops with one error line."""
    from analysis.report import cli as report
    d = tmp_path_factory.mktemp("tree")
    _tree(d / "r", shape)
    code, err = _in_process(report.main, [str(d / "r"), "--out", str(d / "out"), "--no-test"], capsys)
    assert "Traceback" not in err, err
    if code != 0:
        errors = [x for x in err.splitlines() if x.startswith("error: ")]
        assert code == 2 and len(errors) == 1, err
