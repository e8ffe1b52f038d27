"""The budget grid's kept models scored on the stress validation before and after 2026-12-04 (RESULTS.md section 1),
and the class-wise sharpness cue per resolution under each stress change. Inference only.

    PYTHONPATH=. .venv/bin/python docs/budget-cpu-2026-12-04/stress_rank.py runs/budget > docs/budget-cpu-2026-12-04/stress_rank.txt

"Before" rebuilds the stress set as study/data/stress.py made it until 2026-12-04 (changes at the run's
resolution, blur scaled by resolution / 200); "after" is study.data.splits.prepare's stress set today.
Sharpness: the mean absolute difference of horizontally adjacent pixels (grey levels, 0-255) per class.
"""
import sys

import albumentations as A
import cv2
import numpy as np
from scipy.stats import spearmanr

from analysis.results.load import load_results
from study.config import TrainConfig
from study.data.layout import targets
from study.data.splits import prepare
from study.data.stress import STRESS
from study.engine.checkpoint import path_of
from study.engine.infer import load_predictor
from study.engine.metrics import classification_metrics

DATA = "../shared/data/chest_xray"


def old_pipelines(resolution: int, seed: int) -> dict:
    """study/data/stress.py _stress_pipelines as of commit ae3a216, kept verbatim here as the "before" of the
    comparison (the library has only today's definition)."""
    px = resolution / 200
    return {
        "processing": A.Compose([A.CLAHE(clip_limit=(1.5, 2.5), tile_grid_size=(8, 8), p=1.0),
                                 A.Sharpen(alpha=(0.1, 0.25), lightness=(0.9, 1.0), p=1.0)], seed=seed),
        "exposure": A.Compose([A.OneOf([A.RandomGamma(gamma_limit=(160, 190), p=1.0),
                                        A.RandomGamma(gamma_limit=(50, 65), p=1.0)], p=1.0),
                               A.RandomBrightnessContrast(brightness_limit=(-0.05, 0.05), contrast_limit=(-0.3, -0.2),
                                                          p=1.0)], seed=seed + 1),
        "framing": A.Compose([A.Affine(scale=(0.70, 0.80), translate_percent=(-0.08, 0.08), rotate=(-5, 5),
                                       border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)], seed=seed + 2),
        "detector": A.Compose([A.Downscale(scale_range=(0.35, 0.5), p=1.0),
                               A.GaussianBlur(sigma_limit=(0.8 * px, 1.2 * px), blur_limit=0, p=1.0),
                               A.GaussNoise(std_range=(0.04, 0.05), p=1.0)], seed=seed + 3)}


def sharpness(images: np.ndarray) -> float:
    return float(np.abs(np.diff(images.astype(np.int16), axis=-1)).mean())


def main(root: str) -> None:
    res = load_results(root)
    data, rows = {}, []
    for exp in res.experiments:
        r = int(exp.meta["base_config"]["resolution"])
        if r not in data:
            d = prepare(DATA, TrainConfig(resolution=r), progress=False)
            old = old_pipelines(r, d.data_key[4])
            old_imgs = np.concatenate([np.stack([old[n](image=i)["image"] for i in d.val.images]) for n in old])
            data[r] = (d, old_imgs)
            y = d.train.labels3 > 0
            n_val, k = len(d.val.labels3), len(STRESS)
            yv = d.val.labels3 > 0
            cue = [f"{sharpness(d.train.images[~y]):.2f}/{sharpness(d.train.images[y]):.2f} train"]
            for i, name in enumerate(STRESS):
                s = d.stress.images[i * n_val:(i + 1) * n_val]
                cue.append(f"{sharpness(s[~yv]):.2f}/{sharpness(s[yv]):.2f} {name}")
            print(f"{r:4d} px sharpness normal/pneumonia: " + ", ".join(cue))
        d, old_imgs = data[r]
        for _, t in exp.trials.iterrows():
            p = load_predictor(path_of(t["checkpoint"]))
            y_new = targets(d.stress.labels3, 2)
            y_old = np.tile(targets(d.val.labels3, 2), 4)
            new = classification_metrics(y_new, p.probabilities(d.stress.images), 2)["bacc"]
            before = classification_metrics(y_old, p.probabilities(old_imgs), 2)["bacc"]
            rows.append((r, t["config"]["seed"], before, new))
    print("\nresolution seed  before(4 changes at the run's px)  after(5 changes in the film frame)")
    for r, s, b, n in sorted(rows):
        print(f"{r:4d} {s}  {b:.4f}  {n:.4f}")
    res_ = np.array([r[0] for r in rows])
    print(f"\nSpearman(resolution, score): before {spearmanr(res_, [r[2] for r in rows])[0]:+.2f}, "
          f"after {spearmanr(res_, [r[3] for r in rows])[0]:+.2f}")
    for r in sorted(set(res_)):
        b = np.mean([x[2] for x in rows if x[0] == r]); n = np.mean([x[3] for x in rows if x[0] == r])
        print(f"{r:4d} px mean: before {b:.4f}, after {n:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
