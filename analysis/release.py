"""Package trained models as a shipped model file: weights, config, headline threshold, validation figures.

    python -m analysis.release CHECKPOINT --data ROOT --out models/binary.pt --command "the command that trained it"
    python -m analysis.release CKPT CKPT ... --data ROOT --out models/binary.pt --command "..."   # an ensemble
    python -m analysis.release CKPT ... --data ROOT --out models/three_class.pt --gate models/binary.pt --command "..."

One CHECKPOINT (study/engine/checkpoint.py: a study.train folder, a trial's checkpoint, or an
ensemble file such as the report's ensemble-binary.pt) is packaged as it is; several are first
ensemble-selected on the stress validation (analysis.ensemble, Caruana's greedy selection). The
model is scored on its own validation split and stress validation (re-prepared from ROOT with its
data fields; never a test split). Test-time views (--tta): `auto` (default) keeps
study/data/augment.py's TTA_VIEWS only when they lower the selection rule (balanced log-loss) on the
stress validation and members x views (+ a gate's) stays within analysis/packaging.py's MAX_FORWARDS,
`none`, `all`, or names joined by commas (refused past MAX_FORWARDS). Binary: the headline threshold is
Youden's J on the stress validation, as the report chooses it (the Q2 best-F1 threshold is recorded
too). 3-class with --gate BINARY (a released binary model file): the two-stage decision (the gate
decides normal vs pneumonia at its threshold, the 3-class model bacterial vs viral among the films
the gate calls pneumonia) is compared with the 3-class model's own argmax on the stress validation,
by macro recall, with normal recall at least the gate's specificity there; the file embeds the gate
when two-stage wins. OUT is an inference-only model file whose `release` entry holds all of that,
the members, the data description and the training command (paths written relative to the
repository or the data root), and the date; OUT's folder's MODEL_CARD.md is rewritten from every
shipped model there. Prints the release entry as JSON. Scores and chooses only: it never trains.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analysis.packaging import release
from study import checks, cli
from study.errors import OK, UserError


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m analysis.release", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                    help="a model file (checkpoint.pt or its folder, or an ensemble file); several: ensemble-selected")
    ap.add_argument("--data", default=None, help="the data set it was trained on (default: the bundled sample)")
    ap.add_argument("--out", required=True, type=Path, help="the shipped model file to write, e.g. models/binary.pt")
    ap.add_argument("--command", required=True, help="the command that trained the checkpoint(s) (kept in the model)")
    ap.add_argument("--tta", default="auto", metavar="VIEWS", help="test-time views: auto (default: kept only if they "
                    "help on the stress validation), none, all, or names joined by commas")
    ap.add_argument("--gate", default=None, metavar="BINARY", help="3-class only: a released binary model file; the "
                    "two-stage decision is kept if it wins on the stress validation")
    args = ap.parse_args(argv)
    if args.out.is_dir():
        raise UserError(f"--out {args.out}: is a folder; pass the model file to write, e.g. models/binary.pt")
    out = checks.writable_folder("--out", args.out.parent) / args.out.name
    print(json.dumps(release(args.checkpoints, args.data, out, args.command, args.tta, args.gate), indent=1))
    return OK


if __name__ == "__main__":
    sys.exit(main())
