"""Bad data fails loudly: a class with no readable image, skipped files reported beside the results,
--strict, symlinked folders and dangling links, and a cache that never remembers a read failure."""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.common import SAMPLE_BACT, SAMPLE_NORMAL, SAMPLE_VIRUS, counts, make_root, truncate
from study import train as train_mod
from study.config import TrainConfig
from study.data import cache as cache_mod
from study.data.cache import decode, load_or_build
from study.data.layout import summarize
from study.data.splits import prepare
from study.errors import UserError
from study.names import SKIPPED_FILE

RES = 32


def test_class_with_no_readable_image_stops_training(tmp_path, capsys):
    """Issue 12's row: 30 truncated NORMAL + 60 good PNEUMONIA trained on one class and printed
    val_accuracy 1.0; now one line names the class, how many were skipped and the first reason."""
    root = make_root(tmp_path / "data", n_normal=0, n_bact=0, n_virus=0)
    for i in range(30):
        truncate(root / "train" / "NORMAL" / f"IM-{i + 1:04d}-0001.jpeg")
    for i in range(60):
        src = (SAMPLE_BACT + SAMPLE_VIRUS)[i]
        shutil.copyfile(src, root / "train" / "PNEUMONIA" / f"person{i + 1}_{'bacteria' if i < 40 else 'virus'}_{i}.jpeg")
    out = tmp_path / "r"
    assert train_mod.main(["--data", str(root), "--set", f"resolution={RES}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "no readable NORMAL image" in err and "30 skipped" in err and "truncated" in err, err
    assert str(root / "train" / "NORMAL") in err and not out.exists()


def test_a_class_missing_after_the_carve_is_named(tmp_path, cache):
    root = make_root(tmp_path / "data", n_normal=6, n_bact=6, n_virus=0)
    prepare(root, TrainConfig(resolution=RES, holdout_fraction=0.0, val_fraction=0.3), cache_dir=cache, progress=False)
    with pytest.raises(UserError, match="training split: no VIRUS image"):
        prepare(root, TrainConfig(resolution=RES, holdout_fraction=0.0, val_fraction=0.3, num_classes=3),
                cache_dir=cache, progress=False)


def test_a_fraction_below_one_patient_is_a_user_error(tmp_path, cache):
    root = make_root(tmp_path / "data")
    with pytest.raises(UserError, match=r"holdout_fraction=0.01 is less than one of the 7 patients"):
        prepare(root, TrainConfig(resolution=RES, holdout_fraction=0.01), cache_dir=cache, progress=False)


def test_symlinked_folders_are_followed_and_dangling_links_reported(tmp_path, cache):
    root = make_root(tmp_path / "data")
    elsewhere = tmp_path / "more_normals"
    elsewhere.mkdir()
    for i in range(3, 6):
        shutil.copyfile(SAMPLE_NORMAL[i], elsewhere / f"IM-{i + 10:04d}-0001.jpeg")
    (root / "train" / "NORMAL" / "batch2").symlink_to(elsewhere, target_is_directory=True)
    (root / "train" / "NORMAL" / "loop").symlink_to(root / "train" / "NORMAL", target_is_directory=True)  # must end
    dangling = root / "train" / "PNEUMONIA" / "person9_bacteria_9.jpeg"
    dangling.symlink_to(tmp_path / "gone.jpeg")
    s = summarize(root, RES, cache_dir=cache)
    assert counts(s) == (6, 2, 2), "images under a symlinked folder were not read"
    assert s["skipped"] == [{"file": str(dangling), "reason": s["skipped"][0]["reason"]}]
    assert "dangling symbolic link" in s["skipped"][0]["reason"] and "gone.jpeg" in s["skipped"][0]["reason"]
    data = prepare(root, TrainConfig(resolution=RES, holdout_fraction=0.0, val_fraction=0.3), cache_dir=cache,
                   progress=False)
    assert [k["file"] for k in data.skipped] == [str(dangling)]
    with pytest.raises(UserError, match="dangling symbolic link"):
        summarize(root, RES, strict=True, cache_dir=cache)


def test_train_lists_skipped_files_beside_its_results_and_strict_refuses(tmp_path, capsys):
    root = make_root(tmp_path / "data", n_normal=6, n_bact=4, n_virus=3)
    bad = root / "train" / "NORMAL" / "IM-0099-0001.jpeg"
    truncate(bad)
    out = tmp_path / "strict"
    assert train_mod.main(["--data", str(root), "--set", f"resolution={RES}", "--strict", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "--strict" in err and not out.exists()

    out = tmp_path / "r"
    argv = ["--data", str(root), "--set", f"resolution={RES}", "--set", "epochs=1", "--set", "holdout_fraction=0",
            "--set", "val_fraction=0.3", "--out", str(out)]
    assert train_mod.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "1 file(s) skipped" in stdout and str(out / SKIPPED_FILE) in stdout
    listed = json.loads((out / SKIPPED_FILE).read_text())
    assert [k["file"] for k in listed] == [str(bad)] and "truncated" in listed[0]["reason"]


# ---- the cache -------------------------------------------------------------------------------
def test_a_read_failure_is_not_cached(tmp_path, monkeypatch):
    """An OSError while reading (an NFS hiccup) skips the file for this run only; a decode error of
    bytes that were read is remembered."""
    paths = [tmp_path / f"IM-{i:04d}-0001.jpeg" for i in range(4)]
    for p, src in zip(paths, SAMPLE_NORMAL):
        shutil.copyfile(src, p)
    truncate(paths[3])
    real = Path.read_bytes

    def flaky(self):
        if self == paths[1]:
            raise OSError(errno.EIO, "Input/output error")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", flaky)
    first = load_or_build(paths, RES, "t", tmp_path / "c", progress=False)
    assert first["ok"].tolist() == [True, False, True, False]
    assert "cannot read" in first["errors"][1] and "truncated" in first["errors"][3]

    monkeypatch.setattr(Path, "read_bytes", real)
    decoded = []
    monkeypatch.setattr(cache_mod, "decode", lambda p, r: decoded.append(Path(p)) or decode(p, r))
    second = load_or_build(paths, RES, "t", tmp_path / "c", progress=False)
    assert decoded == [paths[1]], "only the file that could not be read is read again"
    assert second["ok"].tolist() == [True, True, True, False]
    np.testing.assert_array_equal(second["images"][1], decode(paths[1], RES)[0])
    decoded.clear()
    third = load_or_build(paths, RES, "t", tmp_path / "c", progress=False)
    assert decoded == [] and not third["built"] and third["ok"].tolist() == [True, True, True, False]


def test_a_changed_file_is_read_again_even_with_its_old_size_and_mtime(tmp_path):
    good = SAMPLE_NORMAL[0].read_bytes()
    p = tmp_path / "IM-0001-0001.jpeg"
    p.write_bytes(b"\0" * len(good))  # same size, not an image
    st = p.stat()
    assert not load_or_build([p], RES, "t", tmp_path / "c", progress=False)["ok"][0]
    p.write_bytes(good)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before: only the ctime moved
    assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
    again = load_or_build([p], RES, "t", tmp_path / "c", progress=False)
    assert again["built"] and again["ok"][0]
