"""Ensembles (issue 18): Caruana's greedy selection on planted predictions, one model file for an ensemble
(release -> predict), predict on an ensemble equals averaging its members by hand, test-time views."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import ensemble
from study import predict, train
from study.data.augment import TTA_VIEWS, tta_views
from study.data.layout import SAMPLE_ROOT
from study.engine import checkpoint as ckpt_io
from study.engine.infer import NO_TTA, load_predictor, parse_views
from study.engine.metrics import balanced_log_loss
from study.errors import UserError

SAMPLE_IMAGES = sorted(str(p) for p in (SAMPLE_ROOT / "val").rglob("*.jpeg"))


def _planted(n: int = 400, seed: int = 0):
    """Targets and three models' probabilities: two good ones with independent errors, one worse."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.7).astype(int)
    logit = lambda s: np.where(y == 1, 1.0, -1.0) * 2.0 + rng.normal(0, s, n)
    good_a, good_b = 1 / (1 + np.exp(-logit(1.5))), 1 / (1 + np.exp(-logit(1.5)))
    bad = 1 / (1 + np.exp(-(np.where(y == 1, 1.0, -1.0) * 0.3 + rng.normal(0, 1.5, n))))
    return y, np.stack([bad, good_a, good_b])


def test_selection_is_deterministic_and_prefers_the_planted_good_models():
    y, P = _planted()
    counts, trace = ensemble.greedy(y, P)
    again, trace2 = ensemble.greedy(y, P)
    np.testing.assert_array_equal(counts, again)
    assert trace == trace2
    assert counts[0] == 0 and counts[1] > 0 and counts[2] > 0  # both good models, never the worse one
    mix = np.tensordot(counts / counts.sum(), P, axes=1)
    assert balanced_log_loss(y, mix) < min(balanced_log_loss(y, p) for p in P)  # averaging the two good ones helps
    assert [r["rule"] for r in trace] == sorted((r["rule"] for r in trace), reverse=True)  # every round improves


def test_selection_respects_its_size_limits():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.5).astype(int)
    P = np.clip(y + rng.normal(0, 0.45, (12, 300)), 0.01, 0.99)  # twelve similar, independent models
    counts, trace = ensemble.greedy(y, P, max_picks=6, max_members=3)
    assert counts.sum() == len(trace) <= 6 and (counts > 0).sum() <= 3


def test_selection_works_for_three_classes():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 300)
    P = np.stack([noise, 0.7 * good + 0.3 * noise])
    counts, _ = ensemble.greedy(y, P)
    assert counts[1] > 0 and counts[0] == 0


def test_tta_views_are_declared_once_and_fixed():
    img = np.asarray(np.random.default_rng(0).integers(0, 256, (3, 48, 48)), np.uint8)
    views = tuple(TTA_VIEWS)
    a, b = tta_views(img, views), tta_views(img, views)
    np.testing.assert_array_equal(a, b)  # no randomness between calls
    assert a.shape == (len(views) * 3, 48, 48)
    np.testing.assert_array_equal(a[:3], img)  # identity first, unchanged
    assert all(not np.array_equal(a[3 * i:3 * i + 3], img) for i in range(1, len(views)))
    assert parse_views("all") == views and parse_views("none") == NO_TTA and parse_views(None) is None
    assert parse_views("zoom_in") == ("identity", "zoom_in")
    with pytest.raises(UserError, match="test-time views"):
        parse_views("flip")


def _tiny(out: Path, seed: int) -> Path:
    assert train.main(["--set", "resolution=32", "--set", "epochs=2", "--set", f"seed={seed}", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("members")
    return [_tiny(d / f"s{s}", s) for s in range(3)]


def _probs(capsys, *args) -> dict:
    capsys.readouterr()
    assert predict.main([*map(str, args), "--json", *SAMPLE_IMAGES]) == 0
    return {r["path"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}


def test_ensemble_file_round_trips_release_to_predict_and_equals_its_members_averaged(members, tmp_path, capsys):
    from analysis import release
    out = tmp_path / "models" / "binary.pt"
    capsys.readouterr()
    assert release.main([*map(str, members), "--out", str(out), "--tta", "none", "--command", "python -m study.train"]) == 0
    info = json.loads(capsys.readouterr().out)
    ckpt = ckpt_io.load(out)
    assert "members" in ckpt and ckpt["release"] == info and abs(sum(ckpt["weights"]) - 1) < 1e-9
    assert len(info["members"]) == len(ckpt["members"]) and 0.1 <= info["threshold"] <= 0.9
    assert all("optimizer" not in m and "last_model" not in m for m in ckpt["members"])
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "member(s)" in card and all(m["source"] in card for m in info["members"])
    got = _probs(capsys, "--model", out)
    sources = {str(p): p for p in members}
    by_hand = np.zeros(len(SAMPLE_IMAGES))
    for m, w in ckpt_io.members(ckpt):
        alone = _probs(capsys, "--model", sources[m["source"]])
        by_hand += w * np.array([alone[p]["pneumonia"] for p in SAMPLE_IMAGES])
    np.testing.assert_allclose([got[p]["pneumonia"] for p in SAMPLE_IMAGES], by_hand, rtol=0, atol=1e-6)
    assert all(got[p]["threshold"] == info["threshold"] for p in SAMPLE_IMAGES)  # JSON keys as for one model
    assert set(next(iter(got.values()))) == {"path", "pneumonia", "threshold", "label"}


def test_tta_in_predict_averages_the_views(members, capsys):
    """--tta all: each member's probability is the mean over the declared views (checked by hand)."""
    import torch

    from study.engine.infer import forward, inputs
    got = _probs(capsys, "--model", members[0], "--tta", "all")
    p = load_predictor(members[0], torch.device("cpu"))
    from study.predict import read_image
    imgs = np.stack([read_image(x, p.resolution) for x in SAMPLE_IMAGES])
    views = tta_views(imgs, tuple(TTA_VIEWS))
    m = p.members[0]
    with torch.no_grad():
        m.model.eval()
        probs = torch.sigmoid(forward(m.model, inputs(torch.from_numpy(views), m.cfg), m.cfg).squeeze(1)).numpy()
    want = probs.reshape(len(TTA_VIEWS), len(SAMPLE_IMAGES)).mean(0)
    np.testing.assert_allclose([got[x]["pneumonia"] for x in SAMPLE_IMAGES], want, rtol=0, atol=1e-5)


def test_damaged_ensemble_file_is_one_line(members, tmp_path, capsys):
    ckpt = ckpt_io.ensemble([(ckpt_io.load(members[0]), 1.0), (ckpt_io.load(members[1]), 1.0)])
    ckpt["weights"] = [1.0]  # one weight for two members
    bad = tmp_path / "bad.pt"
    import torch
    torch.save(ckpt, bad)
    assert predict.main(["--model", str(bad), SAMPLE_IMAGES[0]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged ensemble" in err[0]


@pytest.fixture(scope="module")
def two_stage_file(members, tmp_path_factory):
    """A released binary model as the gate of a 3-class model, in one file (the two-stage decision)."""
    from analysis import release
    d = tmp_path_factory.mktemp("two_stage")
    assert train.main(["--set", "resolution=32", "--set", "epochs=2", "--set", "num_classes=3", "--out",
                       str(d / "t")]) == 0
    assert release.main([str(members[0]), "--out", str(d / "binary.pt"), "--tta", "none", "--command", "x"]) == 0
    gate = ckpt_io.load(d / "binary.pt")
    ckpt_io.save(d / "three_class.pt", {**ckpt_io.ensemble([(ckpt_io.load(d / "t"), 1.0)], gate=gate),
                                        "release": {"decision": {"decision": "two-stage"}}})
    return d


def test_three_class_uses_the_two_stage_decision_when_released_that_way(two_stage_file, capsys, monkeypatch):
    d = two_stage_file
    monkeypatch.setitem(predict.SHIPPED, 3, d / "three_class.pt")
    capsys.readouterr()
    assert predict.main(["--three-class", "--json", *SAMPLE_IMAGES]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    gate = _probs(capsys, "--model", d / "binary.pt")
    three = load_predictor(d / "t").probabilities(np.stack([predict.read_image(p, 32) for p in SAMPLE_IMAGES]))
    for r, q in zip(got, three):
        g = gate[r["path"]]
        assert set(r) == {"path", "normal", "bacteria", "virus", "label"}
        assert abs(r["normal"] - (1 - g["pneumonia"])) < 1e-6  # normal: the gate's, not the 3-class model's
        assert r["label"] == ("normal" if g["label"] == "normal" else ("bacteria" if q[1] >= q[2] else "virus"))


def test_release_with_a_gate_records_both_decisions(two_stage_file, capsys):
    from analysis import release
    d = two_stage_file
    capsys.readouterr()
    assert release.main([str(d / "t"), "--gate", str(d / "binary.pt"), "--out", str(d / "m" / "three_class.pt"),
                         "--tta", "none", "--command", "x"]) == 0
    info = json.loads(capsys.readouterr().out)
    dec = info["decision"]
    assert dec["decision"] in ("argmax", "two-stage") and set(dec["compared"]) == {"argmax", "two-stage"}
    for name in dec["compared"]:
        assert {"validation", "stress_validation"} == set(dec["compared"][name])
        assert set(dec["compared"][name]["stress_validation"]["recall"]) == {"normal", "bacteria", "virus"}
    assert ("gate" in ckpt_io.load(d / "m" / "three_class.pt")) == (dec["decision"] == "two-stage")
    assert "3-class decision" in (d / "m" / "MODEL_CARD.md").read_text()


def test_release_bounds_members_times_views(members, tmp_path, capsys, monkeypatch):
    """Prediction time scales with members x views (+ a gate's): `auto` does not try views past MAX_FORWARDS,
    an explicit --tta past it is refused naming the bound."""
    from analysis import packaging, release
    monkeypatch.setattr(packaging, "MAX_FORWARDS", len(TTA_VIEWS) - 1)  # even one member over all views is too many
    capsys.readouterr()
    assert release.main([*map(str, members), "--out", str(tmp_path / "binary.pt"), "--command", "x"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tta"]["views"] == ["identity"] and "not tried" in info["tta"]["rule"]
    assert "with all views" not in info["tta"] and ckpt_io.load(tmp_path / "binary.pt")["tta"] == []
    monkeypatch.setattr(packaging, "MAX_FORWARDS", 1)
    assert release.main([str(members[0]), "--out", str(tmp_path / "b2.pt"), "--tta", "all", "--command", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MAX_FORWARDS=1" in err[0] and "pass fewer views" in err[0]


@pytest.fixture(scope="module")
def many(members, tmp_path_factory) -> list[Path]:
    """Eight single models: the three above and five more seeds."""
    d = tmp_path_factory.mktemp("many")
    return [*members, *(_tiny(d / f"s{s}", s) for s in range(3, 8))]


def test_release_of_a_many_member_library_stays_within_the_selection_limits(many, tmp_path, capsys):
    from analysis import release
    out = tmp_path / "binary.pt"
    capsys.readouterr()
    assert release.main([*map(str, many), "--out", str(out), "--tta", "none", "--command", "x"]) == 0
    info = json.loads(capsys.readouterr().out)
    ckpt = ckpt_io.load(out)
    assert ckpt["selection"]["library"] == 8 and 1 <= len(ckpt["members"]) <= ensemble.MAX_MEMBERS
    picks = len(ckpt["selection"]["rounds"])
    assert picks <= ensemble.MAX_PICKS and abs(sum(ckpt["weights"]) - 1) < 1e-9
    assert all(abs(w * picks - round(w * picks)) < 1e-6 for w in ckpt["weights"])  # weights: shares of the picks
    assert {m["source"] for m in info["members"]} <= {str(p) for p in many}


def test_size_curve_cuts_the_library_into_disjoint_blocks(many):
    lib = ensemble.library([str(p) for p in many], None, None, {})
    cost = [float(10 * (i + 1)) for i in range(len(many))]
    images = np.full((5, 32, 32), 128, np.uint8)
    curve = ensemble.size_curve(lib, cost, images)
    assert curve.groupby("library").size().to_dict() == {1: 8, 2: 4, 4: 2, 8: 1}
    assert curve[curve["library"] == 2]["train_seconds"].tolist() == [30.0, 70.0, 110.0, 150.0]
    assert (curve[f"predict_seconds_{ensemble.FILMS}"] > 0).all() and (curve["chosen"] <= curve["library"]).all()
    ones = curve[curve["library"] == 1]
    np.testing.assert_allclose(ones["stress bacc"], [ensemble.figures(lib.y_stress, p, 2)["bacc"] for p in lib.probs_stress])
    summary = ensemble.size_summary(curve)
    assert summary["library"].tolist() == [1, 2, 4, 8] and summary["libraries"].tolist() == [8, 4, 2, 1]
