"""Command-line flags and paths, checked before any work starts (no Ray, no folder created).

Every CLI of the project parses with `Parser`: a usage mistake is one `error: ...` line on stderr
naming the flag, exit 2. Number flags use the types below; output folders go through
`writable_folder` (exists as a folder, or can be created; writable either way), probed by
creating and removing one temporary file, which also catches read-only mounts and root-owned
folders, where permission bits alone mislead.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from study.config import UserError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error: ...` line (exit 2), like every other mistake."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(kind, low: float, inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return value
    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, True, "a positive integer")
nonnegative_int = _number(int, 0, True, "an integer >= 0")
positive_float = _number(float, 0, False, "a number > 0")
nonnegative_float = _number(float, 0, True, "a number >= 0")


def _probe(folder: Path) -> str | None:
    """None when a file can be created in `folder`, else why not."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            return None
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"


def writable_folder(flag: str, path: str | Path) -> Path:
    """`path` as a folder results can be written to: an existing writable folder, or a missing one
    whose nearest existing parent is a writable folder. UserError naming the flag and the path."""
    p = Path(os.path.abspath(os.path.expanduser(str(path))))
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{flag} {path}: is a file, not a folder; pass a folder for the results")
        why = _probe(p)
        if why:
            raise UserError(f"{flag} {path}: folder is not writable ({why}); pass a folder you can write to")
        return p
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: cannot be created, {parent} is a file; pass a folder for the results")
    why = _probe(parent)
    if why:
        raise UserError(f"{flag} {path}: cannot be created, {parent} is not writable ({why}); "
                        f"pass a folder you can write to")
    return p


def storage(flag: str, uri: str) -> str:
    """A local --storage is checked like any output folder; a URI (s3://, gs://) is left to Ray."""
    if "://" in uri:
        return uri
    return str(writable_folder(flag, uri))
