"""Training-only augmentation with albumentations, deterministic under a seed.

"none": identity. "light": small geometric and photometric changes that keep a chest X-ray
plausible: rotation +-10 deg, shift +-5 % of the side, scale 0.9-1.1, brightness and contrast
+-10 %. No flips: the heart sits on the left and a mirrored film is not a real film.
"""
from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def make_augment(kind: str, seed: int):
    """-> None for "none", else f(batch uint8 [B, H, W]) -> uint8 [B, H, W] drawing from `seed`."""
    if kind == "none":
        return None
    pipeline = A.Compose([
        A.Affine(rotate=(-10, 10), translate_percent=(-0.05, 0.05), scale=(0.9, 1.1),
                 border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=1.0),
    ], seed=seed)

    def apply(batch: np.ndarray) -> np.ndarray:
        return np.stack([pipeline(image=img)["image"] for img in batch])

    return apply
