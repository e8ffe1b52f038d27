"""Look at what the study is made of, one command line for all of it:

    python -m study.inspect config                  # every TrainConfig field's rule, and the rules between fields
    python -m study.inspect augment                 # the augmentation levels' magnitudes, as declared
    python -m study.inspect model                   # the seed network (720,545 parameters) and the default recipe's
    python -m study.inspect data [ROOT] [--resolution 200] [--json] [--strict]
                                                    # a data set's counts per split and class, patients, image sizes
    python -m study.inspect checkpoint PATH         # what a model file holds (config, epochs, kept metric, members)

ROOT: the Kaggle download as it comes, its chest_xray/ folder, or an s3:// (gs://...) prefix (copied
once to the image cache); no ROOT: the bundled sample. Exit 0, or 2 with one `error:` line.
"""
from __future__ import annotations

import json
import sys

from study import cli
from study.errors import OK


def _data(args) -> None:
    from study.data.layout import summarize
    s = summarize(args.root, args.resolution, args.strict)
    if args.json:
        print(json.dumps(s))
        return
    print(f"data set: {s['root']}")
    for name, c in s["splits"].items():
        print(f"  {name:5s}  normal {c['normal']:5d}  bacteria {c['bacteria']:5d}  virus {c['virus']:5d}  "
              f"patients {c['patients']:5d}  sides {c['min_side']}-{c['max_side']} px")
    for sk in s["skipped"]:
        print(f"  skipped {sk['file']}: {sk['reason']}")
    print(f"  {len(s['skipped'])} file(s) skipped")


def _model(args) -> None:
    from study.config import SEED_RECIPE, TrainConfig
    from study.model import build_model, count_parameters
    for name, cfg in (("the seed network", TrainConfig(**SEED_RECIPE)), ("the default recipe", TrainConfig())):
        m = build_model(cfg)
        print(f"{name}:\n{m}\n{count_parameters(m):,} trainable parameters\n")


def _checkpoint(args) -> None:
    from study.engine.checkpoint import describe, load
    print(json.dumps(describe(load(args.path)), indent=1, default=str))


def _config(args) -> None:
    from study.config import describe_rules
    print(describe_rules())


def _augment(args) -> None:
    from study.data.augment import describe
    print(describe())


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m study.inspect", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True, parser_class=cli.Parser)
    sub.add_parser("config", help="TrainConfig's rules").set_defaults(run=_config)
    sub.add_parser("augment", help="the augmentation levels").set_defaults(run=_augment)
    sub.add_parser("model", help="the seed network and the default recipe's").set_defaults(run=_model)
    d = sub.add_parser("data", help="a data set's counts, patients and image sizes")
    d.add_argument("root", nargs="?", default=None, help="data set folder (default: the bundled sample)")
    d.add_argument("--resolution", type=cli.positive_int, default=200, help="px side of the cached images (default 200)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--strict", action="store_true", help="an unreadable file is an error, not a skip")
    d.set_defaults(run=_data)
    c = sub.add_parser("checkpoint", help="what a model file holds")
    c.add_argument("path", metavar="PATH")
    c.set_defaults(run=_checkpoint)
    args = ap.parse_args(argv)
    args.run(args)
    return OK


if __name__ == "__main__":
    sys.exit(main())
