"""What a valid configuration is: declared once on TrainConfig's fields, checked from every source.

The study.train rows of issue 12's table run in-process through `main` (the same code as the CLI,
without a torch import per row); one row also runs as a real subprocess."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from helpers.common import REPO
from study import train as train_mod
from study.config import CROSS_RULES, TrainConfig, rule
from study.engine.checkpoint import load_model
from study.errors import UserError

# (--set pairs, words the one-line error must contain): issue 12's study.train rows, and a few more
ROWS = [
    (["weight_decay=-1"], ["weight_decay", ">= 0", "(got -1)"]),
    (["momentum=-1"], ["momentum", ">= 0", "(got -1)"]),
    (["lr=inf"], ["lr", "finite", "> 0", "(got 'inf')"]),
    (["dense_units=-1"], ["dense_units", ">= 1", "(got -1)"]),
    (["max_train_images=-5"], ["max_train_images", ">= 0", "(got -5)"]),
    (["optimizer=nesterov", "momentum=0"], ["nesterov", "momentum > 0"]),
    (["lr=nan"], ["lr", "finite"]),
    (["epochs=0"], ["epochs", ">= 1"]),
    (["kernel_sizes=4,3,3,3"], ["kernel_sizes", "odd"]),
    (["filters=[16,32]"], ["filters and kernel_sizes", "same length"]),
    (["resolution=8"], ["resolution", ">= 16"]),
    (["seed=-1"], ["seed", ">= 0"]),
    (["channels_last=maybe"], ["channels_last", "true or false"]),
    (["epochs=true"], ["epochs", "integer"]),
]


@pytest.mark.parametrize("pairs,words", ROWS, ids=[" ".join(p) for p, _ in ROWS])
def test_train_cli_rejects_bad_values_in_one_line(pairs, words, tmp_path, capsys):
    out = tmp_path / "r"
    argv = [a for p in pairs for a in ("--set", p)] + ["--out", str(out)]
    assert train_mod.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert all(w in err for w in words), err
    assert not out.exists(), "a usage error created the output folder"


def test_train_cli_row_as_a_subprocess(tmp_path):
    out = subprocess.run([sys.executable, "-m", "study.train", "--set", "weight_decay=-1", "--out", str(tmp_path / "r")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr == "error: weight_decay must be a finite number >= 0 (got -1)\n", out.stderr
    assert not (tmp_path / "r").exists()


def test_every_field_declares_its_rule():
    for name in TrainConfig.field_names():
        r = rule(name)
        if r.kind in ("int", "float"):
            assert r.ge is not None or r.gt is not None, f"{name}: no lower bound declared"
        if r.kind == "list":
            assert r.max_len is not None and r.item is not None, f"{name}: list rule incomplete"
        assert str(r), name


@pytest.mark.parametrize("build", ["constructor", "replace", "overrides", "strings", "json"])
def test_every_source_runs_the_same_check(build, tmp_path):
    """Defaults, --set strings, Ray's dicts, dataclasses.replace and a config.json: one check, one message."""
    with pytest.raises(UserError, match=r"weight_decay must be a finite number >= 0 \(got -1"):
        if build == "constructor":
            TrainConfig(weight_decay=-1)
        elif build == "replace":
            dataclasses.replace(TrainConfig(), weight_decay=-1)
        elif build == "overrides":
            TrainConfig.from_overrides({"weight_decay": -1})
        elif build == "strings":
            TrainConfig.from_strings(["weight_decay=-1"])
        else:
            f = tmp_path / "config.json"
            f.write_text(json.dumps({**TrainConfig().to_dict(), "weight_decay": -1}))
            try:
                TrainConfig.from_json_file(f)
            except UserError as e:
                assert str(e).startswith(f"{f}: "), "a config file's error names the file"
                raise


def test_checkpoint_config_is_checked_and_named(tmp_path):
    from study.engine import checkpoint as ckpt_io
    path = ckpt_io.save(tmp_path / "c.pt", {"config": {"lr": -1}, "model": {}})
    with pytest.raises(UserError, match=r"c\.pt: lr must be"):
        load_model(path)
    old = tmp_path / "old"  # an older five-file folder: its config.json is checked the same way
    old.mkdir()
    torch.save({}, old / "model.pt")
    (old / "config.json").write_text(json.dumps({"optimizer": "nesterov", "momentum": 0}))
    with pytest.raises(UserError, match=r"old: .*momentum > 0"):
        load_model(old)


def test_cross_rules_hold_for_the_defaults_and_name_their_fields():
    cfg = TrainConfig()
    for names, text, ok in CROSS_RULES:
        assert ok(cfg) and all(n in text or n in TrainConfig.field_names() for n in names)
    with pytest.raises(UserError, match="momentum > 0"):
        TrainConfig.from_overrides({"optimizer": "sgd_momentum", "momentum": 0})
    assert TrainConfig.from_overrides({"optimizer": "sgd", "momentum": 0}).momentum == 0  # sgd ignores it


def test_cli_values_convert():
    cfg = TrainConfig.from_strings(["filters=16,32", "kernel_sizes=3,5", "extra_layers=", "channels_last=false", "lr=1e-2"])
    assert cfg.filters == (16, 32) and cfg.kernel_sizes == (3, 5) and cfg.extra_layers == ()
    assert cfg.channels_last is False and cfg.lr == 0.01


def test_rules_print(capsys):
    out = subprocess.run([sys.executable, "-m", "study.inspect", "config"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "lr" in out.stdout and "a finite number > 0" in out.stdout and "momentum > 0" in out.stdout
