"""Rebuild the bundled sample from the real data set (run once; the output is committed).

    python study/sample/build.py ../shared/data/chest_xray

Takes whole patients (every image of a patient, so patient ids stay intact), stratified by class
(normal / bacteria / virus) in the train set's proportions, ~TARGET train images in all, plus
the official val split (16 images) as it is. Images are copied byte for byte (224 px JPEGs).
"""
import random
import shutil
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# the project's modules are imported after the sys.path line above
from study.data.layout import CLASSES, find_root, scan_split

TARGET = 360
SEED = 0


def main(src: str) -> None:
    root = find_root(src)
    out = Path(__file__).resolve().parent / "chest_xray"
    shutil.rmtree(out, ignore_errors=True)
    items, _ = scan_split(root, "train")
    by_patient = defaultdict(list)
    for it in items:
        by_patient[it.patient].append(it)
    per_class = defaultdict(list)
    for pid, its in by_patient.items():
        per_class[max(it.label3 for it in its)].append(pid)  # a patient's class: its worst finding
    total = len(items)
    rng = random.Random(SEED)
    for c, pids in sorted(per_class.items()):
        quota = round(TARGET * sum(1 for it in items if it.label3 == c) / total)
        rng.shuffle(pids)
        taken = 0
        for pid in sorted(pids, key=lambda p: (len(by_patient[p]) > 3, pids.index(p))):
            if taken >= quota:
                break
            for it in by_patient[pid]:
                dst = out / "train" / it.path.parent.name / it.path.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(it.path, dst)
                taken += 1
        print(f"{CLASSES[c]}: {taken} images")
    for f in (root / "val").rglob("*.jpeg"):
        dst = out / "val" / f.parent.name / f.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)


if __name__ == "__main__":
    main(sys.argv[1])
