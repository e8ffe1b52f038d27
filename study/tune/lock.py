"""One study.run per --storage at a time: STORAGE/.study.lock, taken before anything is written there.

The lock holds its owner's pid, host, start time and a heartbeat its owner refreshes every HEARTBEAT_S.
A second study.run into the same storage is refused at once with one line naming the owner. A lock
is stale, and taken over with a message, when its owner's process is gone (same host) or its heartbeat
is older than STALE_S (any host: a crashed machine, a killed container). On local and NFS storage the
lock file is created exclusively (O_EXCL); on s3:// (and other URIs) it is a marker object checked
and then written, which is advisory: two drivers starting within the same instant can both pass.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time

from study.errors import UserError
from study.names import LOCK_FILE
from study.storage import absolute, exists, is_uri, read_text, remove_file, write_text

HEARTBEAT_S = 30
STALE_S = 120


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class StudyLock:
    def __init__(self, storage: str):
        self.path = f"{absolute(storage).rstrip('/')}/{LOCK_FILE}"
        self.me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _record(self) -> str:
        return json.dumps({**self.me, "heartbeat": time.time()})

    def _holder(self) -> dict | None:
        try:
            return json.loads(read_text(self.path))
        except (OSError, ValueError):
            return None  # vanished, or cut short by a kill while written: nobody's

    def _stale(self, h: dict) -> str | None:
        if h.get("host") == self.me["host"] and isinstance(h.get("pid"), int) and not _alive(h["pid"]):
            return f"its process {h['pid']} is not running"
        if time.time() - float(h.get("heartbeat") or 0) > STALE_S:
            return f"its heartbeat is {time.time() - float(h.get('heartbeat') or 0):.0f} s old"
        return None

    def acquire(self) -> "StudyLock":
        folder = os.path.dirname(self.path)
        self.created = not is_uri(self.path) and not os.path.isdir(folder)  # removed again if nothing else comes
        if not is_uri(self.path):
            os.makedirs(folder, exist_ok=True)
        for _ in range(3):
            if self._create():
                break
            h = self._holder()
            if h is None:
                continue
            why = self._stale(h)
            if why is None:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h.get("started") or 0)))
                raise UserError(f"{self.path}: another study.run (pid {h.get('pid')} on {h.get('host')}, since {since}) "
                                f"is writing into this --storage; wait for it to end, or pass another --storage")
            print(f"taking over the stale lock {self.path} of pid {h.get('pid')} on {h.get('host')} ({why})", flush=True)
            self._remove()
        else:
            raise UserError(f"{self.path}: could not take the lock of this --storage; remove it if no study.run is running")
        self._beat = threading.Thread(target=self._heartbeat, name="study-lock", daemon=True)
        self._beat.start()
        return self

    def _create(self) -> bool:
        if is_uri(self.path):  # advisory on object stores: check, then write
            if exists(self.path):
                return False
            write_text(self.path, self._record())
            return True
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self._record())
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                write_text(self.path, self._record())
            except Exception:  # a missed beat is retried at the next one; the lock only goes stale after STALE_S
                pass

    def _remove(self) -> None:
        try:
            remove_file(self.path)
        except OSError:
            pass

    def release(self) -> None:
        """Let go of the lock (if still ours); a storage folder the lock itself created and nothing else wrote
        into (a data mistake stopped the study) is removed too, so a mistake leaves nothing behind."""
        self._stop.set()
        h = self._holder()
        if h and h.get("pid") == self.me["pid"] and h.get("host") == self.me["host"]:
            self._remove()
        if getattr(self, "created", False):
            try:
                os.rmdir(os.path.dirname(self.path))  # only when empty
            except OSError:
                pass
