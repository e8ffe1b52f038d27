"""Where a results tree is (a local folder, or a URI that pyarrow.fs opens: s3://, gs://, hdfs://,
file://) and how the analysis reads it: listings and single files, never the whole tree.

`local_checkpoint(checkpoint)` is the one place a remote checkpoint comes to this machine: the
report calls it right before loading a model (analysis.thresholds).
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pyarrow import fs as pafs

from study.data.fetch import fetch
from study.errors import UserError
from study.storage import CREDENTIALS, first_line, is_uri, open_uri


@dataclass(frozen=True)
class Tree:
    """Where a results tree is: a pyarrow filesystem and a path on it. Files are named as the user named
    the tree: local paths for a local tree, URIs (with the given URI's query, if any) for a remote one."""
    given: str
    fs: pafs.FileSystem
    base: str

    @classmethod
    def of(cls, where: str | Path) -> "Tree":
        where = str(where)
        if is_uri(where):
            filesystem, base = open_uri(where)
        else:
            filesystem, base = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(where))
        return cls(where, filesystem, base)

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def name(self, path: str) -> str:
        """`path` (on this filesystem, under `base`) as the report names it: a local path or a URI."""
        if self.local:
            return path
        rel = path[len(self.base):].strip("/")
        parts = urlsplit(self.given)
        return urlunsplit(parts._replace(path=posixpath.join(parts.path.rstrip("/") or "/", rel).rstrip("/")))

    def info(self, paths: list[str]) -> list[pafs.FileInfo]:
        try:
            return self.fs.get_file_info(paths)
        except OSError as e:
            raise UserError(f"{self.given}: cannot read it ({first_line(e)}); check the URI and {CREDENTIALS}") from None

    def listing(self, path: str, recursive: bool = False) -> list[pafs.FileInfo]:
        try:
            return self.fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
        except OSError as e:
            raise UserError(f"{self.name(path)}: cannot list it ({first_line(e)})") from None

    def read(self, path: str) -> bytes:
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except OSError as e:
            raise UserError(f"{self.name(path)}: cannot read it ({first_line(e)})") from None


@functools.lru_cache(maxsize=None)
def _scratch() -> Path:
    """This process's folder for checkpoint copies, removed when it exits."""
    d = tempfile.mkdtemp(prefix="pneumonia-checkpoints-")
    atexit.register(shutil.rmtree, d, True)
    return Path(d)


@functools.lru_cache(maxsize=None)
def local_checkpoint(checkpoint: str) -> str:
    """A checkpoint (the trials frame's `checkpoint`) as a local path for study.train's loaders: a local
    path as it is; a remote one (s3://...) copied, once per process, into a temporary folder."""
    checkpoint = str(checkpoint)
    if not is_uri(checkpoint):
        return checkpoint
    tree = Tree.of(checkpoint)
    if tree.local:
        return tree.base
    return str(fetch(checkpoint, _scratch() / hashlib.sha256(checkpoint.encode()).hexdigest()[:16]))
