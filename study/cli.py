"""What every command line of the project shares: one argparse parser whose mistakes are one `error:` line,
the number types of its flags, and one decorator that turns the project's errors into their exit codes
(study/errors.py) with one `error: ...` line on stderr."""
from __future__ import annotations

import argparse
import functools
import math
import sys
from typing import Callable

from study.errors import IO_FAILURE, USAGE, IOFailure, UserError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error: ...` line (exit 2), like every other mistake."""

    def error(self, message: str):
        self.exit(USAGE, f"error: {message} (see {self.prog} --help)\n")


def command(main: Callable[..., int]) -> Callable[..., int]:
    """A CLI's main(argv) -> exit code, with UserError -> 2 and IOFailure (or an OSError naming its file) -> 3,
    each one `error:` line."""
    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return USAGE
        except IOFailure as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return IO_FAILURE
        except OSError as e:  # a file the command wrote or read (disk full, a read-only mount...): named, one line
            if e.filename is None:
                raise
            print(f"error: {IOFailure.writing(e.filename, e)}", file=sys.stderr, flush=True)
            return IO_FAILURE
    return run


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
