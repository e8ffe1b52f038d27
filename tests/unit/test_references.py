"""Every reference written in prose names something that exists (issue 28): the dotted module paths
(such as study.engine.loop.train_one_epoch) and repository file paths in the code's comments and strings, the README,
RESULTS.md, BENCHMARKS.md, docs/, pyproject.toml, the Dockerfile and cluster/, and every `NAME in path.py`
(the name must appear in that file). A module path resolves if its longest importable prefix has the rest as
attributes; a file path if it exists in the repository (a glob if it holds * or {}).
"""
from __future__ import annotations

import importlib
import io
import re
import tokenize
from pathlib import Path

from helpers.common import REPO

TOP = ("study", "analysis", "search_spaces", "benchmarks")
DOTTED = re.compile(r"(?<![\w./-])((?:study|analysis|search_spaces|benchmarks)(?:\.[A-Za-z_]\w*)+)")
PATH = re.compile(r"(?<![\w./-])((?:study|analysis|search_spaces|benchmarks|tests|docs|cluster|models)/[\w./*{}-]*[\w*}])")
NAME_IN = re.compile(r"`?\b([A-Z][A-Z0-9_]{2,})`? (?:in|from) `?((?:study|analysis|search_spaces|benchmarks)/[\w/]+\.py)")
FILE_SUFFIXES = (".py", ".md", ".pt", ".json", ".txt", ".csv", ".png", ".yaml", ".sh", ".toml", ".log")
# What may be named without existing, and why:
ALLOWED = (
    re.compile(r"\bNAME\b"),                    # a placeholder: search_spaces/NAME.py, models/NAME.pt, runs/ship/NAME
    re.compile(r"cluster/my-cluster\.yaml"),    # the user's own copy of cluster/cluster.yaml
    re.compile(r"docs/[\w.-]+/ensemble-\w+\.pt"),  # a report's ensemble file: written, not committed (model files)
)


def _texts() -> list[tuple[Path, int, str]]:
    """(file, line number, text) of every comment and string in the code, and every line of the prose files."""
    out = []
    code = [p for top in (*TOP, "tests") for p in (REPO / top).rglob("*.py") if p != Path(__file__)]  # not its patterns
    for f in code:
        try:
            for tok in tokenize.generate_tokens(io.StringIO(f.read_text()).readline):
                if tok.type in (tokenize.COMMENT, tokenize.STRING) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                    for i, line in enumerate(tok.string.splitlines()):
                        out.append((f, tok.start[0] + i, line))
        except tokenize.TokenError:
            continue
    prose = [REPO / n for n in ("README.md", "RESULTS.md", "BENCHMARKS.md", "pyproject.toml", "Dockerfile", "Makefile")]
    prose += [p for d in ("docs", "cluster") for p in (REPO / d).rglob("*") if p.is_file()
              and p.suffix in ("", ".md", ".sh", ".yaml", ".yml", ".txt", ".py")]
    for f in prose:
        if f.suffix == ".py" and f in code:
            continue
        out += [(f, i, line) for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1)]
    return out


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for a in parts[i:]:
            if not hasattr(obj, a):
                return False
            obj = getattr(obj, a)
        return True
    return False


def _exists(path: str) -> bool:
    if "*" in path or "{" in path:
        return any(REPO.glob(path.split("{")[0] + ("*" if "{" in path else "")))
    return (REPO / path).exists()


def test_every_module_path_file_path_and_named_symbol_resolves():
    stale = []
    for f, n, line in _texts():
        where = f"{f.relative_to(REPO)}:{n}"
        for m in DOTTED.finditer(line):
            d = m.group(1)
            if not d.endswith(FILE_SUFFIXES) and not _resolves(d):
                stale.append(f"{where}: {d}")
        for m in PATH.finditer(line):
            if not any(a.search(m.group(1)) for a in ALLOWED) and not _exists(m.group(1)):
                stale.append(f"{where}: {m.group(1)}")
        for m in NAME_IN.finditer(line):
            name, path = m.groups()
            if (REPO / path).is_file() and not re.search(rf"\b{name}\b", (REPO / path).read_text()):
                stale.append(f"{where}: {name} is not in {path}")
    assert not stale, f"{len(stale)} references name nothing:\n" + "\n".join(stale)
