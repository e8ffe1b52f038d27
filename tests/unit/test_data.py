"""The data layer: layout, bad inputs, labels and patient ids.

    .venv/bin/python -m pytest -q tests/unit/test_data.py

Synthetic data sets are built in tmp dirs from real images of the bundled sample (renamed like
Kaggle's files); every such test decodes into its own tmp cache.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.common import REPO, SAMPLE_NORMAL, counts, make_root, truncate
from study.config import TrainConfig
from study.data.cache import decode
from study.data.layout import CLASSES, find_root, load_split, scan_split, summarize
from study.data.splits import prepare
from study.errors import UserError

RES = 32  # px; small so every decode is cheap





def one_line_naming(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg, f"error message spans lines: {msg!r}"
    assert str(path) in msg, f"error message does not name {path}: {msg!r}"
    return msg


def terminal_lines(text: str) -> list[str]:
    """The non-blank lines a terminal would show: a carriage return redraws its line (tqdm)."""
    shown = (line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return [line for line in shown if line.strip()]


def run_cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PNEUMONIA_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "study.inspect", "data", *args], cwd=REPO, env=env,
                       capture_output=True, timeout=120)
    # decoded by hand: text=True would turn tqdm's carriage returns into newlines
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())



# ---- unreadable single files: skipped, counted with their reason; --strict makes them errors ---


def _zero(p: Path) -> None:
    p.write_bytes(b"")


def _text(p: Path) -> None:
    p.write_text("this is not an image\n")


BAD_FILES = {
    "truncated": (truncate, "truncated"),
    "zero_byte": (_zero, "empty file (0 bytes)"),
    "text_as_jpeg": (_text, "not an image"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
@pytest.mark.parametrize("where", ["NORMAL/IM-0099-0001.jpeg", "PNEUMONIA/person77_bacteria_9.jpeg"])
def test_unreadable_file_is_skipped_with_reason(root, cache, kind, where):
    make, reason = BAD_FILES[kind]
    bad = root / "train" / where
    make(bad)
    s = summarize(root, RES, cache_dir=cache)
    assert counts(s) == (3, 2, 2)  # the good files, nothing else
    assert s["skipped"] == [{"file": str(bad), "reason": s["skipped"][0]["reason"]}]
    assert reason in s["skipped"][0]["reason"]

    split = load_split(root, "train", RES, cache_dir=cache, progress=False)
    assert split.images.shape == (7, RES, RES)
    assert str(bad) not in split.paths and len(split.paths) == len(split.labels3) == len(split.sizes) == 7

    with pytest.raises(UserError) as e:
        summarize(root, RES, strict=True, cache_dir=cache)
    msg = one_line_naming(e, bad)
    assert "--strict" in msg


def test_skips_are_reported_per_file(root, cache):
    """Several bad files: each is listed once with its own reason; a wrong extension too."""
    truncate(root / "train" / "NORMAL" / "IM-0098-0001.jpeg")
    _zero(root / "train" / "PNEUMONIA" / "person60_virus_1.jpeg")
    (root / "train" / "NORMAL" / "notes.txt").write_text("hi")
    s = summarize(root, RES, cache_dir=cache)
    reasons = {Path(k["file"]).name: k["reason"] for k in s["skipped"]}
    assert len(s["skipped"]) == 3
    assert "truncated" in reasons["IM-0098-0001.jpeg"]
    assert reasons["person60_virus_1.jpeg"] == "empty file (0 bytes)"
    assert "not an image file name" in reasons["notes.txt"]
    assert counts(s) == (3, 2, 2)


def test_all_files_unreadable_is_a_user_error(tmp_path, cache):
    root = tmp_path / "data"
    for cls, name in (("NORMAL", "IM-0001-0001.jpeg"), ("PNEUMONIA", "person1_virus_1.jpeg")):
        (root / "train" / cls).mkdir(parents=True)
        _zero(root / "train" / cls / name)
    with pytest.raises(UserError) as e:
        summarize(root, RES, cache_dir=cache)
    one_line_naming(e, root / "train")


# ---- odd but valid images: read, not skipped, right shape ------------------------------------
def test_16bit_png_is_read_and_scaled(root, cache):
    a = np.full((120, 160), 1000, np.uint16)
    a[:, 80:] = 50000  # left half dark, right half bright, 16-bit range
    p = root / "train" / "NORMAL" / "IM-0050-0001.png"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode == "I;16"
    s = summarize(root, RES, cache_dir=cache)
    assert s["skipped"] == [] and counts(s) == (4, 2, 2)

    arr, size = decode(p, RES)
    assert arr.shape == (RES, RES) and arr.dtype == np.uint8 and size == (160, 120)
    assert arr[:, :RES // 2 - 2].max() == 0 and arr[:, RES // 2 + 2:].min() == 255  # min-max scaled


def test_rgba_png_is_read_as_luminance(root, cache):
    p = root / "train" / "PNEUMONIA" / "person50_virus_7.png"
    Image.new("RGBA", (90, 70), (10, 200, 30, 40)).save(p)
    s = summarize(root, RES, cache_dir=cache)
    assert s["skipped"] == [] and counts(s) == (3, 2, 3)
    arr, size = decode(p, RES)
    assert arr.shape == (RES, RES) and size == (90, 70)
    lum = round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)  # ITU-R 601, alpha dropped
    assert abs(int(arr.mean()) - lum) <= 1 and arr.min() == arr.max()


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_4000px_image_is_read(root, cache, fmt):
    g = np.tile(np.linspace(0, 255, 4000).astype(np.uint8), (4000, 1))  # horizontal ramp
    p = root / "train" / "NORMAL" / f"IM-0060-0001.{fmt}"
    Image.fromarray(g).save(p, **({"quality": 90} if fmt == "jpeg" else {}))
    split = load_split(root, "train", RES, cache_dir=cache, progress=False)
    assert split.skipped == []
    assert split.images.shape == (8, RES, RES)
    i = split.paths.index(str(p))
    assert split.sizes[i] == (4000, 4000)
    row = split.images[i][RES // 2].astype(int)
    assert row[0] < 20 and row[-1] > 235 and np.all(np.diff(row) >= -2)  # still the ramp


def test_grayscale_and_rgb_jpegs_both_read(root, cache):
    src = SAMPLE_NORMAL[0]
    with Image.open(src) as im:
        assert im.mode == "RGB"
        im.convert("L").save(root / "train" / "NORMAL" / "IM-0070-0001.jpeg", quality=95)
    gray = root / "train" / "NORMAL" / "IM-0070-0001.jpeg"
    assert Image.open(gray).mode == "L"
    split = load_split(root, "train", RES, cache_dir=cache, progress=False)
    assert split.skipped == [] and split.images.shape == (8, RES, RES)
    a_rgb, _ = decode(src, RES)
    a_gray, _ = decode(gray, RES)
    assert np.abs(a_rgb.astype(int) - a_gray.astype(int)).max() <= 4  # same picture either way


# ---- structural mistakes: one-line UserError naming the path ---------------------------------
def test_empty_class_folder(root, cache):
    pneu = root / "train" / "PNEUMONIA"
    shutil.rmtree(pneu)
    pneu.mkdir()
    (pneu / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden files don't count
    with pytest.raises(UserError) as e:
        summarize(root, RES, cache_dir=cache)
    assert "empty class folder" in one_line_naming(e, pneu)


def test_missing_class_folder(root, cache):
    shutil.rmtree(root / "train" / "NORMAL")
    with pytest.raises(UserError) as e:
        summarize(root, RES, cache_dir=cache)
    assert "NORMAL" in one_line_naming(e, root / "train")


def test_missing_train(tmp_path, cache):
    root = make_root(tmp_path / "data", splits=("val",))
    with pytest.raises(UserError) as e:
        summarize(root, RES, cache_dir=cache)
    one_line_naming(e, root / "train")
    with pytest.raises(UserError) as e:
        prepare(root, TrainConfig(resolution=RES), cache_dir=cache, progress=False)
    one_line_naming(e, root / "train")


def test_root_not_a_data_set(tmp_path, cache):
    junk = tmp_path / "Downloads"
    (junk / "photos").mkdir(parents=True)
    (junk / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(UserError) as e:
        summarize(junk, RES, cache_dir=cache)
    assert "not a chest X-ray data set" in one_line_naming(e, junk)
    with pytest.raises(UserError) as e:
        prepare(junk, TrainConfig(resolution=RES), cache_dir=cache, progress=False)
    one_line_naming(e, junk)
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as e:
        find_root(missing)
    one_line_naming(e, missing)
    afile = tmp_path / "chest_xray.zip"
    afile.write_bytes(b"PK\3\4")
    with pytest.raises(UserError) as e:
        summarize(afile, RES, cache_dir=cache)
    one_line_naming(e, afile)


def test_unknown_class_folder(root, cache):
    covid = root / "train" / "COVID"
    covid.mkdir()
    shutil.copyfile(SAMPLE_NORMAL[0], covid / "covid1.jpeg")
    with pytest.raises(UserError) as e:
        summarize(root, RES, cache_dir=cache)
    assert "unknown class folder" in one_line_naming(e, covid)


# ---- CLI -------------------------------------------------------------------------------------
def test_cli_json(root, cache):
    bad = root / "train" / "NORMAL" / "IM-0099-0001.jpeg"
    truncate(bad)
    make_root(root, splits=("val",), n_normal=1, n_bact=1, n_virus=0)
    r = run_cli([str(root), "--json", "--resolution", str(RES)], cache)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    s = json.loads(lines[0])
    assert set(s) == {"root", "splits", "skipped"}
    assert s["root"] == str(root)
    assert set(s["splits"]) == {"train", "val"}
    for split in s["splits"].values():
        assert set(split) == {*CLASSES, "patients", "min_side", "max_side"}
    assert s["splits"]["train"] == {"normal": 3, "bacteria": 2, "virus": 2, "patients": 7,
                                    "min_side": 224, "max_side": 224}
    assert counts(s, "val") == (1, 1, 0)
    assert len(s["skipped"]) == 1 and s["skipped"][0]["file"] == str(bad)
    assert "truncated" in s["skipped"][0]["reason"]


@pytest.mark.parametrize("mistake", ["missing_root", "strict_bad_file", "unknown_class"])
def test_cli_user_error_is_one_line_exit_2(tmp_path, root, cache, mistake):
    args = [str(root), "--json", "--resolution", str(RES)]
    if mistake == "missing_root":
        args[0] = str(tmp_path / "does-not-exist")
    elif mistake == "strict_bad_file":
        _zero(root / "train" / "PNEUMONIA" / "person9_virus_9.jpeg")
        args.append("--strict")
    else:
        (root / "train" / "Pneumonia_old").mkdir()
    r = run_cli(args, cache)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    err = terminal_lines(r.stderr)
    assert len(err) == 1 and err[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr


def test_cli_error_is_the_only_stderr_output_when_piped(root, cache):
    _zero(root / "train" / "PNEUMONIA" / "person9_virus_9.jpeg")
    r = run_cli([str(root), "--strict", "--resolution", str(RES)], cache)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), repr(r.stderr)


# ---- Kaggle zip nesting, __MACOSX, .DS_Store -------------------------------------------------
def test_kaggle_zip_nesting_and_mac_debris(tmp_path, cache):
    outer = tmp_path / "download"
    inner = make_root(outer / "chest_xray" / "chest_xray", splits=("train", "val"))
    mac = outer / "chest_xray" / "__MACOSX" / "chest_xray" / "train" / "NORMAL"
    mac.mkdir(parents=True)
    (mac / "._IM-0001-0001.jpeg").write_bytes(b"\0\5\26\7junk")
    for d in (outer, outer / "chest_xray", inner, inner / "train", inner / "train" / "NORMAL",
              inner / "train" / "PNEUMONIA", inner / "val" / "PNEUMONIA"):
        (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1junk")
    (inner / "train" / "PNEUMONIA" / "._person1_bacteria_1.jpeg").write_bytes(b"\0\5\26\7junk")
    (inner / "train" / "__MACOSX" / "NORMAL").mkdir(parents=True)
    (inner / "train" / "__MACOSX" / "NORMAL" / "._IM-0001-0001.jpeg").write_bytes(b"junk")
    (inner / "train" / "NORMAL" / "__MACOSX").mkdir()
    (inner / "train" / "NORMAL" / "__MACOSX" / "._IM-0002-0001.jpeg").write_bytes(b"junk")

    for given in (outer, outer / "chest_xray", inner):
        assert find_root(given) == inner
        s = summarize(given, RES, cache_dir=cache)
        assert s["root"] == str(inner)
        assert s["skipped"] == []
        assert counts(s) == (3, 2, 2) and counts(s, "val") == (3, 2, 2)
    data = prepare(outer, TrainConfig(resolution=RES, val_source="official", holdout_fraction=0.0),
                   cache_dir=cache, progress=False)
    assert len(data.train.paths) == 7 and len(data.val.paths) == 7
    assert all("__MACOSX" not in p and "/._" not in p for p in data.train.paths + data.val.paths)


# ---- labels and patient ids from file names --------------------------------------------------
def test_labels_and_patients_from_names(tmp_path):
    root = tmp_path / "data"
    names = {
        "NORMAL": {
            "IM-0001-0001.jpeg": ("normal", "IM-0001"),
            "IM-0001-0002.jpeg": ("normal", "IM-0001"),
            "IM-0453-0001-0002.jpeg": ("normal", "IM-0453"),
            "NORMAL2-IM-0123-0001.jpeg": ("normal", "NORMAL2-IM-0123"),
            "normal2-im-0124-0001.JPEG": ("normal", "NORMAL2-IM-0124"),
        },
        "PNEUMONIA": {
            "person1_bacteria_1.jpeg": ("bacteria", "person1"),
            "person1_bacteria_2.jpeg": ("bacteria", "person1"),
            "person2_virus_3.jpeg": ("virus", "person2"),
            "person447_virus_921_1.jpeg": ("virus", "person447"),
            "person1946_bacteria_4874.jpeg": ("bacteria", "person1946"),
            "Person3_Virus_4.jpg": ("virus", "person3"),
        },
    }
    for cls, files in names.items():
        (root / "train" / cls).mkdir(parents=True)
        for n in files:
            (root / "train" / cls / n).write_bytes(b"")  # names only: scan_split decodes nothing
    (root / "train" / "PNEUMONIA" / "scan_0001.jpeg").write_bytes(b"")
    items, skipped = scan_split(root, "train")
    got = {it.path.name: (CLASSES[it.label3], it.patient) for it in items}
    assert got == {**names["NORMAL"], **names["PNEUMONIA"]}
    assert [Path(s["file"]).name for s in skipped] == ["scan_0001.jpeg"]
    assert "neither bacteria nor virus" in skipped[0]["reason"]


def test_sample_labels_match_folders(sample_root):
    """The bundled sample: every PNEUMONIA file is bacteria or virus, every patient id parses."""
    items, skipped = scan_split(sample_root, "train")
    assert skipped == []
    for it in items:
        assert (it.label3 == 0) == (it.path.parent.name == "NORMAL")
        assert not it.patient.startswith("file:")
        assert it.patient in it.path.name or it.patient.upper() in it.path.name.upper()
