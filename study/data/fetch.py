"""Copies of remote files and folders (s3://, gs://, any URI pyarrow.fs opens) on this machine.

`local_data(root)` turns `--data` into a folder here: a path comes back as it is; a URI is copied
once into the image cache (PNEUMONIA_CACHE, else ~/.cache/pneumonia-tune, under data/) and reused
while the remote listing (every file's name and size) is unchanged, so a cluster node downloads the
data set once. `fetch(uri, dest)` is the copy itself (pyarrow.fs.copy_files); analysis.results.tree uses it
to bring single checkpoints of a remote results tree to a temporary folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from pyarrow import fs as pafs

from study.data.cache import default_cache_dir
from study.errors import UserError
from study.storage import CREDENTIALS, first_line, is_uri, local_path, open_uri

MARKER = ".fetched"  # in a finished copy: the signature of the remote listing it copied


def _files(uri: str, filesystem: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    try:
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [info]
        if info.type == pafs.FileType.NotFound:
            return []
        return [f for f in filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
                if f.type == pafs.FileType.File]
    except OSError as e:
        raise UserError(f"{uri}: cannot list it ({first_line(e)}); check the URI and {CREDENTIALS}") from None


def fetch(uri: str, dest: Path) -> Path:
    """A complete local copy of the file or folder at `uri`, in the folder `dest`: returns `dest` for a
    folder, `dest/NAME` for a file. Nothing is copied when `dest` already holds a copy of the same
    listing; otherwise the copy is made beside `dest` and then takes its place, so a copy cut short is
    never used and files deleted remotely do not linger."""
    filesystem, path = open_uri(uri)
    files = _files(uri, filesystem, path)
    if not files:
        raise UserError(f"{uri}: nothing there; check the URI (upload the data with e.g. "
                        f"aws s3 sync ~/chest_xray/ s3://BUCKET/chest_xray/)")
    single = len(files) == 1 and files[0].path.rstrip("/") == path
    name = posixpath.basename(path)
    signature = hashlib.sha256(json.dumps(sorted((f.path[len(path):], f.size) for f in files)).encode()).hexdigest()
    target = dest / name if single else dest
    marker = dest / MARKER
    if marker.is_file() and marker.read_text() == signature:
        return target
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    try:
        part.mkdir(parents=True)
    except OSError as e:
        raise UserError(f"{dest}: cannot write the local copy of {uri} there ({type(e).__name__}: {e.strerror or e}); "
                        f"set PNEUMONIA_CACHE to a folder you can write to") from None
    try:
        pafs.copy_files(path, str(part / name) if single else str(part), source_filesystem=filesystem,
                        destination_filesystem=pafs.LocalFileSystem(), use_threads=True)
    except OSError as e:
        shutil.rmtree(part, ignore_errors=True)
        raise UserError(f"{uri}: copy to {dest} failed ({first_line(e)})") from None
    (part / MARKER).write_text(signature)
    shutil.rmtree(dest, ignore_errors=True)
    try:
        part.rename(dest)
    except OSError:  # another process finished the same copy first
        shutil.rmtree(part, ignore_errors=True)
        if not (marker.is_file() and marker.read_text() == signature):
            raise
    return target


def cache_folder(uri: str) -> Path:
    """Where `local_data` keeps the copy of `uri`: CACHE/data/SCHEME/HOST/PATH (query left out)."""
    parts = urlsplit(uri)
    rel = "/".join(p for p in f"{parts.scheme}/{parts.netloc}/{parts.path}".split("/") if p not in ("", ".", ".."))
    return default_cache_dir() / "data" / re.sub(r"[^\w.@=/-]", "_", rel)


def local_data(root: str | Path | None) -> str | Path | None:
    """`--data` as a folder on this machine: None (the bundled sample) and paths as they are, a URI's
    copy in the cache (downloaded the first time, and again only when the remote files change)."""
    if root is None or not is_uri(root):
        return root
    here = local_path(str(root))
    if here is not None:
        return here
    return fetch(str(root), cache_folder(str(root)))
