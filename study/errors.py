"""The errors a user meets, and the exit codes every command line gives them (study/cli.py applies them).

    0    done
    1    the work ran but did not all succeed: a diverged run (study.train), a skipped file
         (study.predict), an errored trial (study.run)
    2    a usage or data mistake: one `error: ...` line naming the flag, field, path or class, before any work
    3    an I/O failure: a checkpoint, results or output file that could not be written (disk full, a file
         size limit, a read-only mount); one `error: ...` line naming the path and the OS error
    130  interrupted (Ctrl-C or SIGTERM); `study.run --resume` continues
"""
from __future__ import annotations

OK, PARTIAL, USAGE, IO_FAILURE, INTERRUPTED = 0, 1, 2, 3, 130


class UserError(Exception):
    """A mistake a user can fix: CLIs print `error: <message>` on one line and exit USAGE (2)."""


class IOFailure(Exception):
    """A file that could not be written (an OSError on a path the program chose, e.g. a checkpoint): CLIs
    print `error: <message>` on one line and exit IO_FAILURE (3)."""

    @classmethod
    def writing(cls, path, e: OSError, after: str = "") -> "IOFailure":
        return cls(f"{path}: cannot be written ({type(e).__name__}: {e.strerror or e})" + (f"; {after}" if after else ""))
