"""study.predict: a tiny model trained by the real CLI predicts real sample images, skips bad files
with one stderr line each, and gives exactly what evaluate() gives in-process; checkpoints round-trip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.common import REPO
from study import predict, train
from study.config import TrainConfig
from study.data.layout import SAMPLE_ROOT, targets
from study.data.splits import prepare
from study.engine.checkpoint import load_model
from study.engine.infer import evaluate
from study.engine.loop import fit
from study.model import build_model

GOOD = sorted(str(p) for p in (SAMPLE_ROOT / "val").rglob("*.jpeg"))[:6]


def _train(out: Path, *sets: str) -> Path:
    args = ["--set", "resolution=32", "--set", "epochs=1", *[a for s in sets for a in ("--set", s)], "--out", str(out)]
    assert train.main(args) == 0
    return out


@pytest.fixture(scope="module")
def model2(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("m2"))


@pytest.fixture(scope="module")
def model3(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("m3"), "num_classes=3")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.jpeg").write_bytes(b"")
    (d / "text.jpeg").write_text("this is not a chest X-ray\n")
    raw = Path(GOOD[0]).read_bytes()
    (d / "truncated.jpeg").write_bytes(raw[: len(raw) // 2])
    (d / "notes.txt").write_text("wrong suffix\n")
    return {"empty": d / "empty.jpeg", "text": d / "text.jpeg", "truncated": d / "truncated.jpeg",
            "suffix": d / "notes.txt", "missing": d / "missing.jpeg"}


def _run(capsys, *argv) -> tuple[int, list[str], list[str]]:
    """Exit code, stdout lines (the one-time "not for clinical use" line checked and dropped), stderr lines."""
    rc = predict.main([str(a) for a in argv])
    cap = capsys.readouterr()
    out = cap.out.splitlines()
    if "--json" in map(str, argv):
        assert not any(line.startswith("#") for line in out)  # JSON mode: nothing but JSON
    elif out:
        assert out[0] == predict.NOT_CLINICAL and "not for clinical use" in out[0]
        assert sum("not for clinical use" in line for line in out) == 1
        out = out[1:]
    return rc, out, cap.err.splitlines()


def test_binary_text_output(model2, capsys):
    rc, out, err = _run(capsys, "--model", model2, *GOOD)
    assert rc == 0 and err == []
    assert [line.split("\t")[0] for line in out] == GOOD  # input order
    for line in out:
        fields = dict(kv.split("=") for kv in line.split("\t")[1].split())
        assert list(fields) == ["pneumonia", "threshold", "label"] and 0.0 <= float(fields["pneumonia"]) <= 1.0
        assert fields["label"] == ("pneumonia" if float(fields["pneumonia"]) >= 0.5 else "normal")


def test_binary_json_output(model2, capsys):
    rc, out, err = _run(capsys, "--model", model2, "--json", *GOOD)
    assert rc == 0 and err == []
    recs = [json.loads(line) for line in out]
    assert [r["path"] for r in recs] == GOOD
    assert all(set(r) == {"path", "pneumonia", "threshold", "label"} and 0.0 <= r["pneumonia"] <= 1.0 for r in recs)
    assert all(r["threshold"] == 0.5 and r["label"] == ("pneumonia" if r["pneumonia"] >= 0.5 else "normal")
               for r in recs)  # a model without a release threshold decides at 0.5
    rc, out, _ = _run(capsys, "--model", model2, "--json", "--threshold", "0.01", *GOOD)
    assert all(json.loads(line)["threshold"] == 0.01 for line in out)


def test_a_model_carries_its_threshold(model2, tmp_path, capsys):
    from study.engine import checkpoint as ckpt_io
    shipped = ckpt_io.save(tmp_path / "m.pt", {**ckpt_io.load(model2), "release": {"threshold": 0.35}},
                           inference_only=True)
    rc, out, _ = _run(capsys, "--model", shipped, "--json", GOOD[0])
    r = json.loads(out[0])
    assert rc == 0 and r["threshold"] == 0.35 and r["label"] == ("pneumonia" if r["pneumonia"] >= 0.35 else "normal")


def test_bad_files_are_skipped_one_line_each(model2, bad_files, capsys):
    bad = list(bad_files.values())
    mixed = [GOOD[0], *bad[:3], GOOD[1], *bad[3:], GOOD[2]]
    rc, out, err = _run(capsys, "--model", model2, "--json", *mixed)
    assert rc == 1
    assert [json.loads(line)["path"] for line in out] == [GOOD[0], GOOD[1], GOOD[2]]
    per_file = [line for line in err if "(skipped)" in line]
    assert len(per_file) == len(bad)
    for path, line in zip(bad, per_file):
        assert line.startswith(f"predict: {path}: ")
    reasons = dict(zip(bad_files, per_file))
    assert "empty file" in reasons["empty"]
    assert "not an image" in reasons["text"]
    assert "truncated" in reasons["truncated"]
    assert "not an image file name" in reasons["suffix"]
    assert "no such file" in reasons["missing"]
    assert err[-1] == f"predict: {len(bad)} of {len(mixed)} file(s) skipped"


def test_only_bad_files_exit_1(model2, bad_files, capsys):
    rc, out, err = _run(capsys, "--model", model2, bad_files["empty"])
    assert rc == 1 and out == [] and len(err) == 2


@pytest.mark.parametrize("make", ["missing", "empty", "corrupt"])
def test_bad_model_dir_is_exit_2_one_line(model2, tmp_path, capsys, make):
    d = tmp_path / "m"
    if make != "missing":
        d.mkdir()
    if make == "corrupt":
        (d / "checkpoint.pt").write_bytes(b"not a checkpoint")
    rc, out, err = _run(capsys, "--model", d, GOOD[0])
    assert rc == 2 and out == []
    assert len(err) == 1 and err[0].startswith("error: ") and str(d) in err[0]


def test_usage_mistake_is_exit_2_one_line(model2, capsys):
    with pytest.raises(SystemExit) as e:
        predict.main(["--model", str(model2)])
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_three_class_model(model3, capsys):
    rc, out, err = _run(capsys, "--model", model3, "--json", *GOOD)
    assert rc == 0 and err == []
    for line in out:
        r = json.loads(line)
        probs = [r["normal"], r["bacteria"], r["virus"]]
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(("normal", "bacteria", "virus"), key=lambda c: r[c])
    rc, out, _ = _run(capsys, "--model", model3, GOOD[0])
    assert [kv.split("=")[0] for kv in out[0].split("\t")[1].split()] == ["normal", "bacteria", "virus", "label"]


@pytest.mark.parametrize("which", ["model2", "model3"])
def test_predict_equals_evaluate(which, request, capsys):
    """Same images through the CLI (decode per file) and through training's evaluate() (the cache)."""
    d = request.getfixturevalue(which)
    model, cfg = load_model(d, torch.device("cpu"))
    data = prepare(None, cfg, progress=False)
    x = torch.from_numpy(data.val.images)
    y = torch.from_numpy(targets(data.val.labels3, cfg.num_classes))
    _, expected, _ = evaluate(model, None, x, y, cfg)
    rc, out, _ = _run(capsys, "--model", d, "--json", *data.val.paths)
    assert rc == 0
    recs = [json.loads(line) for line in out]
    assert [r["path"] for r in recs] == data.val.paths
    keys = ["pneumonia"] if cfg.num_classes == 2 else ["normal", "bacteria", "virus"]
    got = np.array([[r[k] for k in keys] for r in recs]).squeeze(-1 if cfg.num_classes == 2 else ())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_checkpoint_round_trip(tmp_path):
    cfg = TrainConfig.from_overrides({"resolution": 32, "epochs": 2})
    data = prepare(None, cfg, progress=False)
    state = fit(cfg, data, device=torch.device("cpu"))
    state.save(tmp_path)
    in_memory = build_model(cfg).to(memory_format=torch.channels_last)  # as load_model lays it out
    in_memory.load_state_dict(state.best_state)
    in_memory.eval()
    loaded, cfg2 = load_model(tmp_path)
    assert cfg2 == cfg
    x = torch.from_numpy(data.val.images).unsqueeze(1).float() / 255.0
    with torch.no_grad():
        assert torch.equal(loaded(x), in_memory(x))
    for k, v in state.best_state.items():
        assert torch.equal(loaded.state_dict()[k], v)
    if state.best_epoch == state.epoch:  # the live model is the best one: same logits too
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), state.model.eval()(x), rtol=1e-5, atol=1e-5)


def test_module_entry_point(model2):
    """`python -m study.predict` as a user runs it."""
    p = subprocess.run([sys.executable, "-m", "study.predict", "--model", str(model2), GOOD[0], "/nonexistent.jpeg"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stdout.splitlines()[0] == predict.NOT_CLINICAL
    assert p.stdout.splitlines()[1].startswith(GOOD[0] + "\tpneumonia=")
    assert "predict: /nonexistent.jpeg: no such file (skipped)" in p.stderr
