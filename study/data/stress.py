"""The stress validation: the validation images under fixed, seeded, acquisition-style changes.

It is what model selection scores (METRIC: balanced accuracy on it). Its changes differ from the
training levels (study/data/augment.py) in kind or reach beyond them on purpose (other
post-processing, a smaller field of view, a coarser detector): a model that merely fits train's
look loses on them, and a recipe cannot win them by having trained on them.
"""
from __future__ import annotations

import numpy as np

from study.data.augment import REFERENCE_PX


# Acquisition-style changes, each applied once to every validation image with a fixed seed.
def _stress_pipelines(resolution: int, seed: int) -> dict:
    import albumentations as A
    import cv2
    px = resolution / REFERENCE_PX
    return {
        # another vendor's post-processing: local histogram equalisation and edge enhancement
        "processing": A.Compose([A.CLAHE(clip_limit=(1.5, 2.5), tile_grid_size=(8, 8), p=1.0),
                                 A.Sharpen(alpha=(0.1, 0.25), lightness=(0.9, 1.0), p=1.0)], seed=seed),
        # over- or under-exposure beyond the strong level's gamma range, lower contrast
        "exposure": A.Compose([A.OneOf([A.RandomGamma(gamma_limit=(160, 190), p=1.0),
                                        A.RandomGamma(gamma_limit=(50, 65), p=1.0)], p=1.0),
                               A.RandomBrightnessContrast(brightness_limit=(-0.05, 0.05), contrast_limit=(-0.3, -0.2),
                                                          p=1.0)], seed=seed + 1),
        # a wider field of view (abdomen, arms, borders in the film) and an off-centre patient
        "framing": A.Compose([A.Affine(scale=(0.70, 0.80), translate_percent=(-0.08, 0.08), rotate=(-5, 5),
                                       border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)], seed=seed + 2),
        # a coarser, noisier detector
        "detector": A.Compose([A.Downscale(scale_range=(0.35, 0.5), p=1.0),
                               A.GaussianBlur(sigma_limit=(0.8 * px, 1.2 * px), blur_limit=0, p=1.0),
                               A.GaussNoise(std_range=(0.04, 0.05), p=1.0)], seed=seed + 3),
    }


STRESS = ("processing", "exposure", "framing", "detector")


def stress_images(images: np.ndarray, seed: int) -> np.ndarray:
    """uint8 [N, R, R] -> uint8 [len(STRESS) * N, R, R]: every image under every change in STRESS, in
    that order; the same arrays for the same images and seed."""
    if not len(images):
        return images[:0]
    pipes = _stress_pipelines(images.shape[-1], seed)
    return np.concatenate([np.stack([pipes[name](image=img)["image"] for img in images]) for name in STRESS])
