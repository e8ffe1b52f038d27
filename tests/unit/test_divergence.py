"""A non-finite loss or weight ends a run as diverged: its own status, no best model, exit 1, and
study.predict refuses a model with non-finite weights and only ever prints valid JSON."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from helpers.common import REPO, tiny
from study import predict
from study.config import SEED_RECIPE
from study.data.layout import SAMPLE_ROOT
from study.engine import checkpoint as ckpt_io
from study.engine.loop import fit
from study.names import BEST_METRIC, DIVERGED, FINISHED, METRIC, RUNNING, STATUS

IMAGES = sorted((SAMPLE_ROOT / "val" / "NORMAL").glob("*.jpeg"))[:2]


def strict_json(line: str):
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(line, parse_constant=refuse)


def test_fit_stops_at_the_first_non_finite_loss(tiny_data):
    seen = []
    # the seed's recipe: with batch norm after every conv (the default) Adam survives lr=1e6
    state = fit(tiny(epochs=4, lr=1e6, **SEED_RECIPE), tiny_data, on_epoch=lambda r, s: seen.append(dict(r)))
    last = state.records[-1]
    assert last[STATUS] == DIVERGED and "train loss" in last["diverged_because"]
    assert len(state.records) < 4 and seen[-1][STATUS] == DIVERGED, "the run went on after diverging"
    assert math.isnan(last[METRIC]) and math.isnan(last[BEST_METRIC]), "a diverged epoch must never rank"
    assert all(torch.isfinite(v).all() for v in state.best_state.values() if v.is_floating_point())


def test_a_finite_run_reports_running_then_finished(tiny_data):
    state = fit(tiny(epochs=2), tiny_data)
    assert [r[STATUS] for r in state.records] == [RUNNING, FINISHED]


def test_diverged_weights_are_caught_even_with_a_finite_loss(tiny_data):
    from study.engine.divergence import divergence
    model = torch.nn.Linear(2, 1)
    assert divergence(model, 0.5) is None
    with torch.no_grad():
        model.bias.fill_(float("inf"))
    assert divergence(model, 0.5) == "non-finite weights in bias"


def test_train_cli_says_diverged_and_exits_1(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "study.train", "--set", "lr=1e6", "--set", "norm=none", "--set", "resolution=32",
                           "--set", "epochs=3", "--set", "dense_units=16", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "diverged at epoch 1" in proc.stderr and "Traceback" not in proc.stderr
    assert "diverged" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "skipped_files.json"], "a diverged run left a model"
    records = json.loads((out / "metrics.json").read_text())
    assert records[-1][STATUS] == DIVERGED


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data):
    d = tmp_path_factory.mktemp("model")
    fit(tiny(epochs=1), tiny_data).save(d)
    return d


def test_predict_refuses_non_finite_weights(model_dir, tmp_path, capsys):
    ckpt = ckpt_io.load(model_dir)
    weights = ckpt["model"]
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name][0] = float("nan")
    broken = ckpt_io.save(tmp_path / "broken", ckpt)
    assert predict.main(["--model", str(broken), "--json", str(IMAGES[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not finite" in err and name in err, err


def test_predict_json_is_always_valid(model_dir, tmp_path, capsys):
    assert predict.main(["--model", str(model_dir), "--json", *map(str, IMAGES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("pneumonia" in strict_json(x) for x in lines)

    # finite weights whose sums overflow: every hidden unit 3e38, output weights +-3e38, so the output
    # layer adds +inf and -inf: NaN. It is never printed: that file is skipped with its reason.
    ckpt = ckpt_io.load(model_dir)
    ckpt["config"] = {**ckpt["config"], "precision": "fp32"}
    weights = ckpt["model"]
    hidden_w, last_w = [k for k in weights if k.endswith("weight")][-2:]
    weights[hidden_w] = torch.zeros_like(weights[hidden_w])
    weights[hidden_w.replace("weight", "bias")] = torch.full_like(weights[hidden_w.replace("weight", "bias")], 3e38)
    w = torch.full_like(weights[last_w], 3e38)
    w[..., 1::2] = -3e38
    weights[last_w] = w
    huge = ckpt_io.save(tmp_path / "huge", ckpt)
    code = predict.main(["--model", str(huge), "--json", *map(str, IMAGES)])
    out, err = capsys.readouterr()
    for line in out.splitlines():
        strict_json(line)
    assert code == 1 and "non-finite probability" in err, (code, out, err)
