"""Ray's reuse_actors on and off, on `make study`'s experiment (quick: 8 trials, ASHA, bundled sample,
64 px), same Ray session, alternating, REPS each; prints one JSON line per run and the medians.

    .venv/bin/python docs/reuse-actors-2026-12-01/measure.py [REPS] [OUT_DIR]

`wall` is Tuner.fit's wall time; `compute` the sum of the trials' own epoch times (fit's EPOCH_SECONDS);
`idle per trial` = (wall - compute / slots) / trials: what a trial costs beyond its epochs (worker start,
data from the object store, model build, reports), shared out.
"""
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import ray  # noqa: E402

import search_spaces  # noqa: E402
from study.config import TrainConfig  # noqa: E402
from study.names import EPOCH_SECONDS  # noqa: E402
from study.data.splits import prepare  # noqa: E402
from study.tune.tuner import build_tuner  # noqa: E402

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
out = Path(sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp())
space = search_spaces.load("quick")
base = TrainConfig.from_overrides({**space.FIXED, "epochs": space.MAX_EPOCHS})
data = prepare(None, base, progress=False)
SLOTS = 2
ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, configure_logging=False)
runs = []
for rep in range(reps):
    for reuse in (True, False):
        t0 = time.time()
        results = build_tuner(data, {**base.to_dict(), **space.SPACE}, name=f"r{rep}-{reuse}", storage=str(out),
                              max_epochs=base.epochs, asha=space.ASHA, num_samples=1, resources={"cpu": 1},
                              reuse_actors=reuse).fit()
        wall = time.time() - t0
        lines = [json.loads(x) for r in results for x in Path(r.path, "result.json").read_text().splitlines()]
        compute = sum(x[EPOCH_SECONDS] for x in lines)
        run = {"reuse_actors": reuse, "wall_s": round(wall, 1), "compute_s": round(compute, 1), "epochs": len(lines),
               "workers": len({x["pid"] for x in lines}), "trials": len(results), "errors": len(results.errors),
               "idle_per_trial_s": round((wall - compute / SLOTS) / len(results), 2)}
        print(json.dumps(run), flush=True)
        runs.append(run)
ray.shutdown()
for reuse in (True, False):
    mine = [r for r in runs if r["reuse_actors"] == reuse]
    print(f"reuse_actors={reuse}: median wall {statistics.median(r['wall_s'] for r in mine)} s, median idle per trial "
          f"{statistics.median(r['idle_per_trial_s'] for r in mine)} s, workers {[r['workers'] for r in mine]}, "
          f"epochs {[r['epochs'] for r in mine]}")
