import time, statistics, torch, numpy as np
from study.config import TrainConfig
from study.data.layout import targets
from study.data.splits import prepare
from study.model import build_model
from study.engine.device import pick_device
from study.engine.infer import evaluate
cfg = TrainConfig()
t = time.perf_counter(); d = prepare("../shared/data/chest_xray", cfg, progress=False); prep = time.perf_counter() - t
from study.data.stress import stress_images
t = time.perf_counter(); stress_images(d.val.images, 0); build = time.perf_counter() - t
model = build_model(cfg).to(memory_format=torch.channels_last).eval()
x = torch.from_numpy(d.val.images); y = torch.from_numpy(targets(d.val.labels3, 2))
xs = torch.from_numpy(d.stress.images); ys = torch.from_numpy(targets(d.stress.labels3, 2))
plain, both = [], []
for _ in range(3):
    t = time.perf_counter(); evaluate(model, None, x, y, cfg); plain.append(time.perf_counter() - t)
    t = time.perf_counter(); evaluate(model, None, torch.cat([x, xs]), y, cfg, ys); both.append(time.perf_counter() - t)
print(f"prepare {prep:.1f}s (stress set build alone {build:.2f}s for {len(xs)} images); evaluate plain {statistics.median(plain):.2f}s, "
      f"plain+stress {statistics.median(both):.2f}s (medians of 3), threads {torch.get_num_threads()}")
