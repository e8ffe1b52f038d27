"""Config, model builder and training loop, without Ray."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.common import REPO, tiny
from study.config import TrainConfig
from study.data.splits import prepare
from study.engine import device as device_mod
from study.engine.checkpoint import load_model, load_resume
from study.engine.device import resolve_precision
from study.engine.loop import fit, make_loss, make_optimizer, train_one_epoch
from study.errors import UserError
from study.model import build_model, count_parameters, probabilities
from study.names import BEST_METRIC, EPOCH_SECONDS, METRIC


def test_seed_network_parameter_count():
    from study.config import SEED_RECIPE
    assert count_parameters(build_model(TrainConfig(**SEED_RECIPE))) == 720_545  # the seed notebook's Keras summary
    assert count_parameters(build_model(TrainConfig())) == 720_545 + 4 * 2 * 32  # the default recipe's 4 BatchNorm2d


def test_seed_network_shapes():
    from study.config import SEED_RECIPE
    m = build_model(TrainConfig(**SEED_RECIPE))
    assert m(torch.zeros(2, 1, 200, 200)).shape == (2, 1)
    convs = [x for x in m if isinstance(x, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32] * 4 and all(c.kernel_size == (3, 3) for c in convs)
    assert [x for x in m if isinstance(x, torch.nn.Linear)][0].in_features == 13 * 13 * 32


@pytest.mark.parametrize("extra", [(), ("batchnorm",)])
def test_pool_before_relu_equals_the_seed_order(extra):
    """build_model runs MaxPool before ReLU for speed; the seed's Keras order (Conv, ReLU, MaxPool)
    must give the same outputs and the same gradients, bit for bit."""
    cfg = TrainConfig(resolution=48, extra_layers=extra)
    torch.manual_seed(0)
    ours = build_model(cfg).train()
    layers, swapped = list(ours), 0
    for i in range(len(layers) - 1):
        if isinstance(layers[i], torch.nn.MaxPool2d) and isinstance(layers[i + 1], torch.nn.ReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
            swapped += 1
    assert swapped == 4
    seed_order = torch.nn.Sequential(*layers)
    x = torch.randn(4, 1, 48, 48)
    out_ours = ours(x)
    out_ours.sum().backward()
    grads_ours = [p.grad.clone() for p in ours.parameters()]
    ours.zero_grad()
    out_seed = seed_order(x)  # same module objects, so the same weights
    out_seed.sum().backward()
    assert torch.equal(out_ours, out_seed)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads_ours, seed_order.parameters()))


def test_unknown_key_rejected_with_its_name():
    with pytest.raises(UserError, match="learning_rate"):
        TrainConfig.from_overrides({"learning_rate": 0.1})


@pytest.mark.parametrize("bad", [{"optimizer": "adagrad"}, {"kernel_sizes": [4, 4, 4, 4]}, {"dropout": 1.0},
                                 {"filters": [32, 32]}, {"epochs": 2.5}, {"extra_layers": ["lstm"]}])
def test_bad_values_rejected(bad):
    with pytest.raises(UserError):
        TrainConfig.from_overrides(bad)


def test_config_is_frozen_and_coerces_lists():
    cfg = TrainConfig.from_overrides({"filters": [16, 16, 16, 16], "extra_layers": ["conv"], "lr": "0.01"})
    assert cfg.filters == (16, 16, 16, 16) and cfg.extra_layers == ("conv",) and cfg.lr == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert TrainConfig.from_strings(["filters=[8,8,8,8]", "optimizer=sgd"]).filters == (8, 8, 8, 8)


VARIANTS = [
    {"optimizer": o} for o in ("sgd", "sgd_momentum", "nesterov", "adam", "rmsprop")
] + [
    {"extra_layers": [x]} for x in ("conv", "dense", "batchnorm", "dropout")
] + [
    {"extra_layers": ["conv", "conv"]}, {"extra_layers": ["batchnorm", "dropout"]},
    {"dropout": 0.3, "dropout_place": "conv"}, {"dropout": 0.3, "dropout_place": "both"}, {"dropout": 0.3},
    {"filters": [8, 16, 32, 64], "kernel_sizes": [5, 5, 3, 3]}, {"filters": [8, 8], "kernel_sizes": [7, 3]},
    {"num_classes": 3}, {"num_classes": 3, "class_balance": "weights"}, {"class_balance": "weights"},
    {"class_balance": "sampler"},
    {"norm": "batch"}, {"augment": "strong"}, {"augment": "medium", "augment_strength": 0.5},
    {"augment": "light"}, {"precision": "bf16"}, {"channels_last": False}, {"weight_decay": 1e-4},
    {"early_stopping_patience": 1}, {"dense_units": 8},
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_field_builds_and_trains_one_step(overrides, tiny_data):
    cfg = tiny(**overrides, batch_size=8)
    model = build_model(cfg)
    opt = make_optimizer(cfg, model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.from_numpy(tiny_data.train.images[:8])
    y = torch.from_numpy((tiny_data.train.labels3[:8] > 0).astype(np.int64) if cfg.num_classes == 2
                         else tiny_data.train.labels3[:8])
    out = train_one_epoch(model, opt, make_loss(cfg, tiny_data.train.labels3, torch.device("cpu")),
                          tiny_data.train.images[:8], x, y, cfg, epoch=1)
    assert np.isfinite(out["train_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no weight changed"


def test_three_class_head_gives_distributions():
    cfg = tiny(num_classes=3)
    logits = build_model(cfg)(torch.rand(4, 1, 32, 32))
    assert logits.shape == (4, 3)
    p = probabilities(logits, 3)
    assert torch.allclose(p.sum(1), torch.ones(4))


def _strip(records):
    return [{k: v for k, v in r.items() if k != EPOCH_SECONDS} for r in records]


def test_same_seed_same_numbers_on_cpu(tiny_data):
    cfg = tiny(epochs=2, augment="light")
    a, b = fit(cfg, tiny_data), fit(cfg, tiny_data)
    assert _strip(a.records) == _strip(b.records)
    c = fit(dataclasses.replace(cfg, seed=1), tiny_data)
    assert _strip(c.records) != _strip(a.records)


def test_data_stays_on_an_accelerator_between_fits_and_only_the_latest_data_set():
    """on_device keeps a non-CPU copy for the next trial in the same (reused) worker: the same host
    arrays give the same device tensors, other arrays new ones, and the previous set is let go.
    The meta device stands in for a GPU; on the CPU the tensors are views of the arrays."""
    a, b = np.zeros((4, 8, 8), np.uint8), np.ones((2, 8, 8), np.uint8)
    cpu = device_mod.on_device([a], torch.device("cpu"))[0]
    assert cpu.data_ptr() == a.__array_interface__["data"][0]
    meta = torch.device("meta")
    first = device_mod.on_device([a, b], meta)
    again = device_mod.on_device([a, b], meta)
    assert all(x is y and x.device.type == "meta" for x, y in zip(first, again))
    c = np.ones((2, 8, 8), np.uint8)  # same shape and values as b, another array
    other = device_mod.on_device([a, c], meta)
    assert other[0] is first[0] and other[1] is not first[1]
    assert device_mod.kept_on_device() == 2  # b's copy went with the old set
    device_mod.on_device([], meta)  # keeps nothing


def test_resume_from_checkpoint_matches_uninterrupted(tiny_data, tmp_path):
    cfg = tiny(epochs=3)
    full = fit(cfg, tiny_data)
    fit(dataclasses.replace(cfg, epochs=3), tiny_data,
        on_epoch=lambda rec, st: st.save(tmp_path) if rec["epoch"] == 1 else None)
    resumed = fit(cfg, tiny_data, resume=load_resume(tmp_path))
    assert _strip(resumed.records) == _strip(full.records)


def test_checkpoint_round_trip(tiny_data, tmp_path):
    state = fit(tiny(epochs=2), tiny_data)
    state.save(tmp_path)
    model, cfg = load_model(tmp_path)
    assert cfg == tiny(epochs=2)
    reference = build_model(cfg).to(memory_format=torch.channels_last)  # load_model lays it out as training does
    reference.load_state_dict(state.best_state)
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(model(x), reference.eval()(x))
    from study.engine import checkpoint as ckpt_io
    ckpt = ckpt_io.load(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # one file per checkpoint
    assert ckpt["format_version"] == ckpt_io.FORMAT_VERSION and ckpt["records"][-1][BEST_METRIC] == state.best_metric
    assert {"model", "last_model", "optimizer", "config", "epoch", "best_epoch", "best_metric", "bad_epochs",
            "precision", "records", "rng"} <= set(ckpt)
    shipped = ckpt_io.save(tmp_path / "m.pt", {**ckpt, "release": {"threshold": 0.4}}, inference_only=True)
    small = ckpt_io.load(shipped)
    assert "optimizer" not in small and "last_model" not in small and small["release"]["threshold"] == 0.4
    assert torch.equal(load_model(shipped)[0](x), model(x))
    with pytest.raises(UserError, match="inference-only"):
        load_resume(shipped)


def test_older_checkpoint_folders_still_load_and_others_are_refused(tiny_data, tmp_path):
    """The five-file folders written before the one-file format, with the old class_weight field."""
    state = fit(tiny(epochs=1, class_balance="weights", norm="none"), tiny_data)  # as before norm existed
    old = tmp_path / "old"
    old.mkdir()
    config = {**state.cfg.to_dict(), "class_weight": "balanced"}
    del config["class_balance"], config["norm"], config["augment_strength"]
    torch.save(state.best_state, old / "model.pt")
    (old / "config.json").write_text(json.dumps(config))
    model, cfg = load_model(old)
    assert cfg.class_balance == "weights" and cfg.norm == "none"
    with pytest.raises(UserError, match="cannot resume"):  # its best_metric was plain validation accuracy
        load_resume(old)
    for bad, match in (("nothing", "not a checkpoint"), ("garbage", "cannot read")):
        p = tmp_path / bad
        p.mkdir()
        if bad == "garbage":
            (p / "checkpoint.pt").write_bytes(b"not a checkpoint")
        with pytest.raises(UserError, match=match):
            load_model(p)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_precision_takes_bf16_only_where_native(monkeypatch, device):
    dev = torch.device(device)
    for native in (True, False):
        monkeypatch.setattr(device_mod, "native_bf16", lambda d, native=native: native)
        assert resolve_precision(TrainConfig(), dev) == ("bf16" if native else "fp32")
        assert resolve_precision(TrainConfig(precision="fp32"), dev) == "fp32"
        assert resolve_precision(TrainConfig(precision="bf16"), dev) == "bf16"


def test_native_bf16_is_false_off_cpu_and_cuda():
    assert device_mod.native_bf16(torch.device("meta")) is False


def test_resolved_precision_is_saved(tiny_data, tmp_path):
    from study.engine.checkpoint import load
    fit(tiny(precision="fp32"), tiny_data).save(tmp_path / "a")
    assert load(tmp_path / "a")["precision"] == "fp32"
    fit(tiny(), tiny_data).save(tmp_path / "b")
    assert load(tmp_path / "b")["precision"] == resolve_precision(tiny(), torch.device("cpu"))


def test_best_epoch_weights_are_kept(tiny_data):
    state = fit(tiny(epochs=3, lr=0.01), tiny_data)
    best = max(r[METRIC] for r in state.records)
    assert state.best_metric == best
    assert state.records[state.best_epoch - 1][METRIC] == best


def test_early_stopping_stops_after_patience(tiny_data):
    state = fit(tiny(epochs=8, early_stopping_patience=1, lr=1e-6), tiny_data)
    assert len(state.records) < 8 and state.records[-1]["early_stopped"]
    assert state.records[-1]["epoch"] - state.best_epoch == 1


def test_data_fields_must_match_prepared_data(tiny_data):
    with pytest.raises(UserError, match="data fields"):
        fit(tiny(resolution=48), tiny_data)


def test_train_cli_writes_metrics_config_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "study.train", "--set", "resolution=32", "--set", "epochs=2",
                           "--set", "dense_units=16", "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2]
    assert load_model(out)[1].resolution == 32
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "skipped_files.json"]
    assert "epoch   2" in proc.stdout


def test_train_cli_user_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "study.train", "--set", "lr_typo=1", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ") and "lr_typo" in proc.stderr


def test_prepare_is_cached_between_calls():
    a = prepare(None, tiny(), progress=False)
    b = prepare(None, tiny(), progress=False)
    assert np.array_equal(a.train.images, b.train.images)


def test_kept_epoch_and_patience_follow_the_selection_metric(tiny_data):
    """METRIC (balanced accuracy on the stress validation) picks the kept epoch and drives patience."""
    from study.names import BEST_METRIC, METRIC, VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC
    state = fit(tiny(epochs=4, lr=3e-3, early_stopping_patience=2), tiny_data)
    recs = state.records
    assert all(k in r for r in recs for k in (METRIC, VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC))
    for i, r in enumerate(recs):
        assert r[BEST_METRIC] == max(x[METRIC] for x in recs[:i + 1])
    assert recs[state.best_epoch - 1][METRIC] == state.best_metric
    bad = len(recs) - state.best_epoch
    assert bad <= 2 and (len(recs) == 4 or bad == 2)  # stops after 2 epochs without a better METRIC
