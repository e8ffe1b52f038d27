"""Output paths, checked before any work starts (no Ray, no folder created).

Output folders go through `writable_folder` (exists as a folder, or can be created; writable either
way), probed by creating and removing one temporary file, which also catches read-only mounts and
root-owned folders, where permission bits alone mislead.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from study.errors import UserError
from study.storage import is_uri


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
    if is_uri(uri):
        return uri
    return str(writable_folder(flag, uri))
