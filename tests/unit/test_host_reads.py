"""Issue 22: nothing inside the training step loop reads the device from the host, and the same seed still
gives the same numbers.

The host-read test runs the accelerator's path on this CPU (kornia on the whole batch, the data set as
device tensors) and counts, between the start of the first optimizer step and the end of the last, every
call that would make the host wait for a GPU: `.item()`, `.cpu()`, `.tolist()`, `.numpy()`, `bool()`,
`float()` and `int()` of a tensor, and `.to()` the CPU from another device. The epoch's bookkeeping (its
loss and accuracy) is read once, after the last step, and is not counted.
"""
from __future__ import annotations

import json
import traceback

import pytest
import torch

from helpers.common import REPO, tiny
from study.engine import loop

HOST_READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")
# Reads of tensors that live on the host by design, so nothing waits for the device: torch.optim's step
# counters (CPU tensors unless the optimizer is fused or capturable; on CUDA Adam is fused). Named by (file,
# function) of the reading frame. Nothing else: kornia's blur read its sigmas back (a sync per step on CUDA)
# until study/data/augment.py's gaussian_blur replaced it, and this test runs on the CPU, where every read
# looks host-side, so a whitelist entry cannot tell a host copy from a device tensor.
HOST_SIDE = {("torch/optim/optimizer.py", "_get_value")}


def _reader() -> tuple[str, str]:
    frame = traceback.extract_stack()[-3]
    return frame.filename.split("site-packages/")[-1], frame.name


@pytest.fixture
def counted(monkeypatch):
    """-> list of (method, steps started, steps finished) for every host read while training."""
    log: list = []
    state = {"started": 0, "finished": 0}
    for name in HOST_READS:
        real = getattr(torch.Tensor, name)

        def spy(self, *a, _real=real, _name=name, **k):
            if _reader() not in HOST_SIDE:
                log.append((_name, state["started"], state["finished"]))
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, spy)
    real_to = torch.Tensor.to

    def to(self, *a, **k):
        target = next((x for x in (*a, k.get("device")) if isinstance(x, (torch.device, str))), None)
        if target is not None and torch.device(target).type == "cpu" and self.device.type != "cpu":
            log.append(("to(cpu)", state["started"], state["finished"]))
        return real_to(self, *a, **k)
    monkeypatch.setattr(torch.Tensor, "to", to)
    real_step = loop.train_step

    def step(*a, **k):
        state["started"] += 1
        out = real_step(*a, **k)
        state["finished"] += 1
        return out
    monkeypatch.setattr(loop, "train_step", step)
    return log, state


@pytest.mark.parametrize("recipe", [dict(augment="medium"), dict(augment="none", lr_schedule="cosine"),
                                    dict(class_balance="sampler", num_classes=3)])
def test_no_host_read_inside_the_training_step_loop(recipe, tiny_data, counted, monkeypatch):
    monkeypatch.setattr(loop, "augment_backend", lambda device: "kornia")  # the GPU path, on this CPU
    log, state = counted
    cfg = tiny(batch_size=8, epochs=2, **recipe)  # 37 steps an epoch: more than the 32 between the old finite-loss checks
    device = torch.device("cpu")
    model = loop.build_model(cfg).to(memory_format=torch.channels_last)
    optimizer = loop.make_optimizer(cfg, model.parameters())
    schedule = loop.make_schedule(cfg, optimizer, len(tiny_data.train.labels3))
    loss_fn = loop.make_loss(cfg, tiny_data.train.labels3, device)
    x = torch.from_numpy(tiny_data.train.images)
    labels = loop.targets(tiny_data.train.labels3, cfg.num_classes)
    y = torch.from_numpy(labels)
    log.clear()
    loop.train_one_epoch(model, optimizer, loss_fn, tiny_data.train.images, x, y, cfg, 1, schedule, labels)
    steps = state["started"]
    assert steps == state["finished"] == 37
    inside = [(name, s, f) for name, s, f in log if s >= 1 and f < steps]
    assert not inside, f"host reads inside the step loop: {inside[:10]} ({len(inside)} in all)"
    assert [name for name, s, f in log if f == steps] == ["item", "item"]  # loss and accuracy, once, at the end


PINNED = REPO / "tests" / "helpers" / "pinned_epochs.json"


def _run(**kw) -> list[dict]:
    """fp32 on one thread: the same numbers on any CPU thread count (more threads sum in another order)."""
    from study.data.splits import prepare
    from study.engine.loop import fit
    cfg = tiny(epochs=2, precision="fp32", **kw)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [{k: v for k, v in r.items() if k != "epoch_seconds"}
                for r in fit(cfg, prepare(None, cfg, progress=False)).records]
    finally:
        torch.set_num_threads(threads)


def test_same_seed_same_numbers_pinned():
    """A short CPU run's per-epoch metrics, pinned in tests/helpers/pinned_epochs.json (fp32, so no CPU's bf16
    path changes them): a change to the loop that moves any number fails here. Without augmentation: OpenCV's
    kernels under albumentations differ by CPU (train loss 1.8e-4 apart at epoch 1 between an AMD EPYC and an
    Intel Xeon with AMX, 2026-12-04), so augmented runs are checked for determinism on one machine instead."""
    want = json.loads(PINNED.read_text())
    got = {"default_no_augment": _run(augment="none"),
           "seed_recipe_cosine": _run(augment="none", norm="none", class_balance="none", lr_schedule="cosine", seed=3)}
    for name in want:
        for a, b in zip(got[name], want[name]):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], float):
                    assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), (name, a["epoch"], k)
                else:
                    assert a[k] == b[k], (name, a["epoch"], k)


def test_augmented_run_repeats_exactly_on_this_machine():
    """The default recipe (augment=medium) twice with one seed: every per-epoch number equal."""
    assert _run() == _run()


# ---- the cheap GPU settings (issue 22, item 2), checked on this CPU ---------------------------------------
def test_cudnn_benchmark_on_cuda_only(monkeypatch):
    from study.engine.device import tune_backend
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    tune_backend(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    tune_backend(torch.device("cuda"))  # sets the flag only; needs no GPU
    assert torch.backends.cudnn.benchmark is True


def test_adam_is_fused_on_cuda_and_default_on_the_cpu():
    params = [torch.nn.Parameter(torch.zeros(3))]
    cuda = loop.make_optimizer(tiny(), params, torch.device("cuda"))
    cpu = loop.make_optimizer(tiny(), params, torch.device("cpu"))
    assert cuda.defaults["fused"] is True and not cpu.defaults.get("fused") and not cpu.defaults.get("foreach")
    assert not loop.make_optimizer(tiny(optimizer="sgd"), params, torch.device("cuda")).defaults.get("fused")


def test_plain_and_stress_validation_in_one_pass_equal_two(tiny_data):
    from study.engine.infer import evaluate, predict_logits
    from study.model import probabilities
    cfg = tiny()
    model = loop.build_model(cfg).eval()
    y = torch.from_numpy(loop.targets(tiny_data.val.labels3, 2))
    ys = torch.from_numpy(loop.targets(tiny_data.stress.labels3, 2))
    m, p, ps = evaluate(model, None, torch.from_numpy(tiny_data.eval_images), y, cfg, ys)
    alone = probabilities(predict_logits(model, torch.from_numpy(tiny_data.stress.images), cfg), 2).numpy()
    assert len(p) == len(y) and len(ps) == len(ys)
    assert abs(ps - alone).max() < 1e-6 and "val_shift_bacc" in m
    assert tiny_data.eval_images.shape[0] == len(tiny_data.val.images) + len(tiny_data.stress.images)


def test_a_study_keeps_every_checkpoint_for_ray_and_prunes_only_below_the_saved_state():
    """No experiment snapshot forced per epoch (num_to_keep=None: Ray deletes nothing) and the pruner in place."""
    import dataclasses

    from study.tune.callbacks import CheckpointPruner
    from study.tune.tuner import build_tuner
    tuner = build_tuner(None, {"lr": 1e-3}, name="x", storage="/tmp/unused", max_epochs=2, asha=None, num_samples=1,
                        resources={"cpu": 1}, fn=lambda config, data, quiet=False: None)
    rc = tuner._local_tuner._run_config
    assert rc.checkpoint_config.num_to_keep is None
    assert any(isinstance(c, CheckpointPruner) for c in rc.callbacks)
    assert dataclasses.is_dataclass(rc.checkpoint_config)
