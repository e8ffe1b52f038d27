"""The data set for the GPU check, sized so that it travels in the same device call as the project and the
wheels (one call carries at most 64 MiB; docs/gpu-check/run.sh --dry-run adds the parts up).

    python docs/gpu-check/pack_data.py ../shared/data/chest_xray .gpu/check --mib 20

Writes OUT/chest_xray.zip (stored, not deflated: JPEGs do not compress) and OUT/setup.sh. The zip holds all
of val/ and, from train/, the largest patient-level subset (every file of a patient or none, each class
folder in its own share, patients in a seeded order) whose files fit in MIB with val. setup.sh, sourced on
the GPU machine after ../shared/gpu's setup, unpacks it to /tmp/chest_xray and repeats the train subset
under new patient ids (the number after person or IM- shifted, so labels and patients still parse)
until train holds as many files as the full split: the study then trains as many images per epoch as on the
full data, so its throughput figures hold, while its accuracy figures mean nothing. PACK.json (in the zip
and in /tmp/chest_xray) says which: docs/gpu-check/summary.py puts it beside the headline.
"""
from __future__ import annotations

import json
import random
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from study.data.layout import find_root, scan_split  # noqa: E402 - after the sys.path line above

SETUP = r'''# Sourced on the GPU machine after ../shared/gpu's setup.sh (docs/gpu-check/pack_data.py wrote this).
# Unpacks to $GPU_CHECK_DATA (default /tmp/chest_xray) and sets DATA to it.
_check_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DATA=${GPU_CHECK_DATA:-/tmp/chest_xray}
if [ ! -f "$DATA/.ready" ]; then
  rm -rf "$DATA" "$DATA.unzip" && python3 -m zipfile -e "$_check_here/chest_xray.zip" "$DATA.unzip" \
    && mv "$DATA.unzip/chest_xray" "$DATA" && rmdir "$DATA.unzip" && python3 - "$DATA" <<'PY' \
    && touch "$DATA/.ready" || { echo "gpu-check setup: unpacking the data failed" >&2; return 1; }
import json, os, re, shutil, sys
root = sys.argv[1]
pack = json.load(open(f"{root}/PACK.json"))
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(f"{root}/train") for f in fs)
need, copy = pack["train_files_full"] - len(files), 1
while need > 0:  # the subset again under new patient ids: personN / IM-N (study.data.layout) with N shifted by 100000 per copy
    for f in files[:need]:
        head, name = os.path.split(f)
        new = re.sub(r"(person|IM-)(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 100000 * copy), name, count=1,
                     flags=re.I)
        shutil.copyfile(f, os.path.join(head, new))
    need, copy = need - len(files), copy + 1
print("gpu-check data:", pack["note"])
PY
fi
'''


def main(source: str, out: Path, mib: float) -> dict:
    root = find_root(source)
    budget = mib * 2**20
    val = [i.path for i in scan_split(root, "val")[0]]
    items = scan_split(root, "train")[0]
    train = [i.path for i in items]
    used = sum(p.stat().st_size for p in val)
    by_class: dict = {}
    for i in items:  # the study's own labels and patient ids (study.data.layout)
        by_class.setdefault(i.label3, {}).setdefault(i.patient, []).append(i.path)
    total = sum(p.stat().st_size for p in train)
    share = min(1.0, max(0.0, (budget - used) / total))
    rng, kept = random.Random(0), []
    for cls in sorted(by_class):
        patients = sorted(by_class[cls])
        rng.shuffle(patients)
        cap = share * sum(p.stat().st_size for ps in by_class[cls].values() for p in ps)
        size = 0
        for pid in patients:
            files = by_class[cls][pid]
            s = sum(p.stat().st_size for p in files)
            if size + s > cap:
                continue
            kept += files
            size += s
    used += sum(p.stat().st_size for p in kept)
    full = len(kept) == len(train)
    pack = {"source": root.name, "train_files_full": len(train), "train_files_packed": len(kept),
            "val_files": len(val), "bytes": used, "subset_repeated": not full,
            "note": "the full train and val splits" if full else
            f"a patient-level subset of train ({len(kept)} of {len(train)} files) repeated under new patient ids to "
            f"{len(train)}: throughput figures hold, accuracy figures do not"}
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "chest_xray.zip", "w", zipfile.ZIP_STORED) as z:
        for p in val + sorted(kept):
            z.write(p, f"chest_xray/{p.relative_to(root)}")
        z.writestr("chest_xray/PACK.json", json.dumps(pack, indent=1))
    (out / "setup.sh").write_text(SETUP)
    return pack


if __name__ == "__main__":
    args = sys.argv[1:]
    mib = float(args[args.index("--mib") + 1]) if "--mib" in args else 20.0
    print(json.dumps(main(args[0], Path(args[1]), mib)))
