"""The augmentation levels a recipe names (TrainConfig.augment), declared once with their magnitudes and
units. study/data/augment.py applies them (albumentations on the CPU, kornia on a GPU); study/config.py takes
their names from here, so the config sits below the data layer and imports nothing from it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AugmentLevel:
    """Magnitudes of one level; every range is symmetric about "no change" except gamma."""
    rotate: float = 0.0       # deg: rotation uniform in [-rotate, +rotate]
    shift: float = 0.0        # fraction of the side: x and y shift each uniform in [-shift, +shift]
    zoom: float = 0.0         # zoom factor uniform in [1 - zoom, 1 + zoom]
    shear: float = 0.0        # deg: x-shear uniform in [-shear, +shear]
    contrast: float = 0.0     # factor c uniform in [1 - contrast, 1 + contrast]; x -> c x
    brightness: float = 0.0   # offset b uniform in [-brightness, +brightness] (full range = 1); x -> x + b
    gamma: tuple[float, float] = (1.0, 1.0)  # exponent g uniform in [lo, hi]; x -> x ** g
    blur_p: float = 0.0       # probability of a Gaussian blur
    blur_sigma: float = 0.0   # px at 200 px (scaled with the resolution): sigma uniform in [sigma/3, sigma]
    noise_p: float = 0.0      # probability of additive Gaussian noise
    noise_std: float = 0.0    # noise standard deviation (full range = 1)

    def scaled(self, s: float) -> "AugmentLevel":
        """Every magnitude times `s` (gamma on a log scale); probabilities unchanged. s=1: as declared."""
        if s == 1.0:
            return self
        lo, hi = self.gamma
        return replace(self, rotate=self.rotate * s, shift=self.shift * s, zoom=min(self.zoom * s, 0.9),
                       shear=self.shear * s, contrast=min(self.contrast * s, 0.95), brightness=self.brightness * s,
                       gamma=(lo ** s, hi ** s), blur_sigma=self.blur_sigma * s, noise_std=self.noise_std * s)

    @property
    def geometric(self) -> bool:
        return bool(self.rotate or self.shift or self.zoom or self.shear)


# The levels a recipe names (TrainConfig.augment). "strong" is the strongest recipe the team's
# H100 runs measured (issue 11's table: rotation 20 deg, shift 10 %, zoom 0.8-1.2, brightness
# and contrast 30 %, shear 8 deg, gamma 0.7-1.5, blur p .3, noise p .3).
LEVELS: dict[str, AugmentLevel] = {
    "none": AugmentLevel(),
    "light": AugmentLevel(rotate=10, shift=0.05, zoom=0.10, contrast=0.10, brightness=0.10),
    "medium": AugmentLevel(rotate=15, shift=0.08, zoom=0.15, shear=4, contrast=0.20, brightness=0.20,
                           gamma=(0.85, 1.2), blur_p=0.15, blur_sigma=1.0, noise_p=0.15, noise_std=0.02),
    "strong": AugmentLevel(rotate=20, shift=0.10, zoom=0.20, shear=8, contrast=0.30, brightness=0.30,
                           gamma=(0.7, 1.5), blur_p=0.3, blur_sigma=1.5, noise_p=0.3, noise_std=0.03),
}
REFERENCE_PX = 200  # blur_sigma is declared in px at this resolution


def level(name: str, strength: float = 1.0) -> AugmentLevel:
    return LEVELS[name].scaled(strength)


