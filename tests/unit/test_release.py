"""Shipping a model: analysis.release packages a checkpoint with its validation-chosen threshold and
figures and writes the model card; the committed models in models/ load and screen real images."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.common import REPO
from study import predict, train
from study.data.layout import SAMPLE_ROOT
from study.engine import checkpoint as ckpt_io

SAMPLE_IMAGES = sorted(str(p) for p in (SAMPLE_ROOT / "val").rglob("*.jpeg"))


def test_release_packages_threshold_figures_and_card(tmp_path, capsys):
    from analysis import release
    assert train.main(["--set", "resolution=32", "--set", "epochs=1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    out = tmp_path / "models" / "binary.pt"
    assert release.main([str(tmp_path / "run"), "--out", str(out), "--command", "python -m study.train ..."]) == 0
    info = json.loads(capsys.readouterr().out)
    ckpt = ckpt_io.load(out)
    assert ckpt["release"] == info and "optimizer" not in ckpt
    assert info["threshold_rule"].startswith("Youden's J") and 0.1 <= info["threshold"] <= 0.9
    assert {"at 0.50"} <= set(info["validation"]) and "specificity" in info["stress_validation"]["at 0.50"]
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "not for clinical use" in card and "binary.pt" in card and "python -m study.train ..." in card
    assert predict.main(["--model", str(out), "--json", SAMPLE_IMAGES[0]]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == info["threshold"]


@pytest.mark.parametrize("name,num_classes", [("binary.pt", 2), ("three_class.pt", 3)])
def test_shipped_models_load_and_screen_the_bundled_sample(name, num_classes):
    """The committed models, as a user runs them right after install: no --model."""
    path = predict.SHIPPED[num_classes]
    assert path.name == name and path.is_file() and path.stat().st_size < 25_000_000  # issue 19: at most 25 MB
    ckpt = ckpt_io.load(path)
    r = ckpt["release"]
    for member, _ in ckpt_io.members(ckpt):  # one model or an ensemble
        c = member["config"]
        # the budget question's pick (RESULTS.md section 1): 64 px, 20 epochs, all of train but the validation carve
        assert c["num_classes"] == num_classes and c["resolution"] == 64 and c["epochs"] == 20
        assert c["holdout_fraction"] == 0
    assert "trained_with" in r and "validation" in r and "stress_validation" in r
    args = ["--json", *SAMPLE_IMAGES] if num_classes == 2 else ["--three-class", "--json", *SAMPLE_IMAGES]
    proc = subprocess.run([sys.executable, "-m", "study.predict", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["path"] for x in recs] == SAMPLE_IMAGES
    if num_classes == 2:
        assert all(x["threshold"] == r["threshold"] for x in recs)
        labels = [x["label"] for x in recs]
        truth = ["normal" if "/NORMAL/" in p else "pneumonia" for p in SAMPLE_IMAGES]
        assert sum(a == b for a, b in zip(labels, truth)) >= 12  # of the 16 official val images (16 when shipped)
        assert "normal" in labels and "pneumonia" in labels
    else:
        assert all(x["label"] in ("normal", "bacteria", "virus") for x in recs)
    assert (predict.MODELS / "MODEL_CARD.md").is_file()
