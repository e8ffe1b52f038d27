"""Where results and data live: a local path or a URI that pyarrow.fs opens (s3://, gs://, hdfs://, file://).

The one wrapper of pyarrow.fs in the project: is a name a URI (`is_uri`), open it (`open_uri`), and the
small files a study writes and reads (`write_text` atomically: to a temporary name, then moved, so a
kill leaves the old file; `read_text`, `exists`, `remove_tree`). A write that fails is an IOFailure
naming the path and the OS error (exit 3), a URI that cannot be opened a UserError.
"""
from __future__ import annotations

import os
from pathlib import Path

from pyarrow import fs as pafs

from study.errors import IOFailure, UserError

CREDENTIALS = "this machine's credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL for another S3 server)"


def is_uri(where) -> bool:
    """A URI (scheme://...), as opposed to a path on this machine: the one rule."""
    return "://" in str(where)


def absolute(where: str | Path) -> str:
    """A URI as it is; a path made absolute (Ray and pyarrow want absolute paths)."""
    return str(where) if is_uri(where) else os.path.abspath(os.path.expanduser(str(where)))


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def open_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path on it) for a URI; UserError naming the URI if pyarrow cannot open it."""
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except ValueError as e:  # ArrowInvalid: not a URI pyarrow knows
        raise UserError(f"{uri}: cannot open it ({first_line(e)}); expected a URI such as s3://BUCKET/PREFIX, "
                        f"gs://BUCKET/PREFIX or file:///ABSOLUTE/PATH") from None
    except OSError as e:  # e.g. S3 looks up the bucket's region here
        raise UserError(f"{uri}: cannot reach it ({first_line(e)}); check the URI, the network and {CREDENTIALS}") from None
    return filesystem, path.rstrip("/") or path


def _fs(where: str | Path) -> tuple[pafs.FileSystem, str]:
    return open_uri(str(where)) if is_uri(where) else (pafs.LocalFileSystem(), absolute(where))


def local_path(uri: str) -> str | None:
    """The path of a file:// URI (or any URI on the local filesystem); None for remote storage."""
    filesystem, path = open_uri(uri)
    return path if isinstance(filesystem, pafs.LocalFileSystem) else None


def write_text(where: str | Path, text: str) -> None:
    """Write a small file at a path or URI: to a temporary name, then moved (a kill leaves the old file)."""
    filesystem, path = _fs(where)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(tmp) as f:
            f.write(text.encode())
        filesystem.move(tmp, path)
    except OSError as e:
        try:
            filesystem.delete_file(tmp)
        except OSError:
            pass
        raise IOFailure.writing(where, e) from None


def read_text(where: str | Path) -> str:
    filesystem, path = _fs(where)
    with filesystem.open_input_stream(path) as f:
        return f.read().decode()


def exists(where: str | Path) -> bool:
    filesystem, path = _fs(where)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def remove_file(where: str | Path) -> None:
    filesystem, path = _fs(where)
    filesystem.delete_file(path)


def remove_tree(where: str | Path) -> None:
    filesystem, path = _fs(where)
    filesystem.delete_dir(path)
