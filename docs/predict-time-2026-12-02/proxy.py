"""A timing proxy for the 624-film official test split (which is held out): 624 train films upscaled to the
size range of the original test JPEGs, so that decoding in `study.predict` costs what it would there.

    python docs/predict-time-2026-12-02/proxy.py ../shared/data/chest_xray OUT_DIR

Seeded: 624 of train's films drawn without replacement (seed 0), each resized (bicubic) to a width of 1244 to
2090 px and an aspect ratio (width / height) of 1.0 to 1.4, saved as JPEG quality 90. Timing only: the
pictures are train films and their predictions mean nothing.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

N, SEED = 624, 0
WIDTH_PX, ASPECT = (1244, 2090), (1.0, 1.4)

root, out = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(p for p in (root / "train").rglob("*.jpeg") if "__MACOSX" not in p.parts)
rng = np.random.default_rng(SEED)
out.mkdir(parents=True, exist_ok=True)
for i, k in enumerate(rng.choice(len(files), N, replace=False)):
    w = int(rng.integers(WIDTH_PX[0], WIDTH_PX[1] + 1))
    h = int(round(w / rng.uniform(*ASPECT)))
    Image.open(files[k]).convert("L").resize((w, h), Image.BICUBIC).save(out / f"{i:03d}.jpeg", quality=90)
print(f"wrote {N} films to {out}")
