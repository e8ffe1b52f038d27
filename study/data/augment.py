"""Augmentation: the levels of study/levels.py by two backends that draw from the same distributions.

    python -m study.inspect augment     # prints the level table below, as the code declares it

Why it matters here: the official test films come from another acquisition (framing, exposure,
processing) than train's, and a network fitted to train's look calls normal test films
pneumonia (issue 11: test specificity 0.42 without augmentation, 0.76-0.84 with the strong
level, on the team's H100 runs). Every change below keeps a chest film plausible: small
rotations and shifts of the patient, zoom (distance to the detector), shear (a tilted patient),
exposure (brightness, contrast, gamma), detector blur and noise. No flips: the heart sits on the
left and a mirrored film is not a real film.

Per image, independently: affine (rotation, x/y shift, zoom, x-shear about the centre; bilinear,
black fill) -> contrast (x * c) -> brightness (x + b) -> gamma (x ** g) -> Gaussian blur (with
probability blur_p) -> Gaussian noise (with probability noise_p) -> clip to [0, 1].
  CPU trials: albumentations, one uint8 image at a time (`cpu_augment`), seeded per epoch.
  GPU trials: kornia, the whole float batch on the device (`gpu_augment`), its parameters drawn
  on the device from torch's generator there, seeded per epoch. tests/unit/test_augment.py checks that both backends draw the same
  parameters and give the same output statistics.

The stress validation (study/data/stress.py) is a separate, fixed, seeded set of acquisition-style
changes; the test-time views (TTA_VIEWS, below) are a few mild fixed ones for prediction.
"""
from __future__ import annotations

import functools
import math
from dataclasses import fields

import numpy as np

from study.levels import LEVELS, REFERENCE_PX, AugmentLevel, level

__all__ = ["LEVELS", "AugmentLevel", "level"]  # declared in study/levels.py, used from here too



def _sigma(lv: AugmentLevel, resolution: int) -> tuple[float, float]:
    hi = lv.blur_sigma * resolution / REFERENCE_PX
    return hi / 3, hi


# ---- CPU backend: albumentations -------------------------------------------------------------------
def albumentations_pipeline(lv: AugmentLevel, resolution: int, seed: int, save_params: bool = False):
    """The level as an albumentations Compose for one uint8 [H, W] image (None: nothing to do)."""
    import albumentations as A
    import cv2
    t = []
    if lv.geometric:
        t.append(A.Affine(rotate=(-lv.rotate, lv.rotate), translate_percent=(-lv.shift, lv.shift),
                          scale=(1 - lv.zoom, 1 + lv.zoom), shear={"x": (-lv.shear, lv.shear), "y": (0, 0)},
                          keep_ratio=True, interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0,
                          p=1.0))
    if lv.contrast or lv.brightness:  # x * alpha + beta * 255, alpha = 1 + U(+-contrast), beta = U(+-brightness)
        t.append(A.RandomBrightnessContrast(brightness_limit=(-lv.brightness, lv.brightness),
                                            contrast_limit=(-lv.contrast, lv.contrast), brightness_by_max=True, p=1.0))
    if lv.gamma != (1.0, 1.0):
        t.append(A.RandomGamma(gamma_limit=(lv.gamma[0] * 100, lv.gamma[1] * 100), p=1.0))
    if lv.blur_p and lv.blur_sigma:
        t.append(A.GaussianBlur(sigma_limit=_sigma(lv, resolution), blur_limit=0, p=lv.blur_p))
    if lv.noise_p and lv.noise_std:
        t.append(A.GaussNoise(std_range=(lv.noise_std, lv.noise_std), p=lv.noise_p))
    return A.Compose(t, seed=seed, save_applied_params=save_params) if t else None


def cpu_augment(name: str, strength: float, resolution: int, seed: int):
    """-> None for no change, else f(uint8 [B, H, W]) -> uint8 [B, H, W] drawing from `seed`."""
    pipeline = albumentations_pipeline(level(name, strength), resolution, seed)
    if pipeline is None:
        return None

    def apply(batch: np.ndarray) -> np.ndarray:
        return np.stack([pipeline(image=img)["image"] for img in batch])

    return apply


# ---- GPU backend: kornia ---------------------------------------------------------------------------
def kornia_pipeline(lv: AugmentLevel, resolution: int):
    """The level as a kornia AugmentationSequential for float [B, 1, H, W] in [0, 1] (None: nothing to
    do). Parameters are drawn per image from torch's generator on the batch's device."""
    import kornia.augmentation as K
    t = []
    if lv.geometric:
        t.append(K.RandomAffine(degrees=lv.rotate, translate=(lv.shift, lv.shift), scale=(1 - lv.zoom, 1 + lv.zoom),
                                shear=(-lv.shear, lv.shear), padding_mode="zeros", p=1.0))
    if lv.contrast:
        t.append(K.RandomContrast((1 - lv.contrast, 1 + lv.contrast), p=1.0))
    if lv.brightness:  # kornia adds (factor - 1)
        t.append(K.RandomBrightness((1 - lv.brightness, 1 + lv.brightness), p=1.0))
    if lv.gamma != (1.0, 1.0):
        t.append(K.RandomGamma(lv.gamma, p=1.0))
    if lv.blur_p and lv.blur_sigma:
        lo, hi = _sigma(lv, resolution)
        k = 2 * math.ceil(3 * hi) + 1  # covers +-3 sigma, as albumentations sizes its kernel from sigma
        t.append(_device_blur_class()((k, k), (lo, hi), p=lv.blur_p))
    if lv.noise_p and lv.noise_std:
        t.append(K.RandomGaussianNoise(std=lv.noise_std, p=lv.noise_p))
    return K.AugmentationSequential(*t) if t else None


def gaussian_blur(x, kernel: int, sigma):
    """float [B, C, H, W] blurred per image by a Gaussian of std `sigma` [B] (px, > 0), `kernel` taps a side,
    reflect border: two grouped 1-D convolutions whose kernels are built on x's device, so nothing is read
    back to the host (kornia's gaussian_blur2d checks `bool((sigma > 0).all())` on the device tensor)."""
    import torch
    import torch.nn.functional as F
    b, c, h, w = x.shape
    r = kernel // 2
    t = torch.arange(kernel, device=x.device, dtype=x.dtype) - r
    g = torch.exp(-(t * t) / (2 * sigma.to(x.dtype).view(b, 1) ** 2))
    g = (g / g.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B * C, kernel]
    y = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g.view(b * c, 1, 1, kernel), groups=b * c)
    y = F.conv2d(y, g.view(b * c, 1, kernel, 1), groups=b * c)
    return y.reshape(b, c, h, w)


@functools.cache
def _device_blur_class():
    """kornia's RandomGaussianBlur (its parameters: sigma per image, applied with probability p) with the blur
    itself done by gaussian_blur above. Sigma is drawn from [lo, hi] with lo = hi / 3 > 0, so kornia's
    positivity check is not needed."""
    import kornia.augmentation as K

    class DeviceGaussianBlur(K.RandomGaussianBlur):
        def apply_transform(self, input, params, flags, transform=None):
            return gaussian_blur(input, self.flags["kernel_size"][0], params["sigma"])

    return DeviceGaussianBlur


def gpu_augment(name: str, strength: float, resolution: int, device=None):
    """-> None for no change, else f(float [B, 1, H, W] in [0, 1]) -> the same shape, clipped to [0, 1].
    The pipeline and its random generator live on `device` (kornia draws per-image parameters there, so a
    step makes no host round trip); the caller seeds torch's generators (the loop reseeds every epoch)."""
    pipeline = kornia_pipeline(level(name, strength), resolution)
    if pipeline is None:
        return None
    if device is not None:
        pipeline = pipeline.to(device)

    def apply(x):
        return pipeline(x).clamp_(0.0, 1.0)

    return apply


# ---- test-time augmentation --------------------------------------------------------------------------
# A few mild, fixed views of each image at prediction time (the model's probabilities are averaged over
# them). Each view is one deterministic change well inside the training levels (no flips, for the same
# reason as above): a slightly wider or closer field of view and a small tilt either way. "identity" is
# the image as it is and always comes first; `--tta none` predicts it alone.
TTA_VIEWS: dict[str, dict] = {
    "identity": {},
    "zoom_out": {"scale": 0.93},   # a 7 % wider field of view (the patient a little further away)
    "zoom_in": {"scale": 1.07},    # a 7 % closer field of view
    "tilt_left": {"rotate": -4.0},  # deg
    "tilt_right": {"rotate": 4.0},  # deg
}
TTA_SEED = 0  # the views draw nothing at random; the seed only pins albumentations' generator


def tta_views(images: np.ndarray, views: tuple[str, ...]) -> np.ndarray:
    """uint8 [N, R, R] -> uint8 [len(views) * N, R, R]: every image under every view, view-major (the
    first N are views[0]); the same arrays for the same images."""
    import albumentations as A
    import cv2
    unknown = [v for v in views if v not in TTA_VIEWS]
    if unknown:
        raise ValueError(f"unknown test-time view(s) {unknown}; declared: {', '.join(TTA_VIEWS)}")
    out = []
    for name in views:
        p = TTA_VIEWS[name]
        if not p:
            out.append(images)
            continue
        s, r = p.get("scale", 1.0), p.get("rotate", 0.0)
        t = A.Compose([A.Affine(scale=(s, s), rotate=(r, r), translate_percent=(0, 0), keep_ratio=True,
                                interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)],
                      seed=TTA_SEED)
        out.append(np.stack([t(image=img)["image"] for img in images]) if len(images) else images)
    return np.concatenate(out) if out else images[:0]


def describe() -> str:
    names = [f.name for f in fields(AugmentLevel)]
    rows = [" | ".join(["level", *names])]
    for name, lv in LEVELS.items():
        rows.append(" | ".join([name, *(str(getattr(lv, n)) for n in names)]))
    return "\n".join(rows)
