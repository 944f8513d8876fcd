"""One sweep driver per results folder.

    with FolderLock(folder) as lock:   # raises LockHeld (one line: who holds it, since when)
        print(lock.note)               # set when a lock left by a dead driver was taken over

The lock is an exclusive `flock` on `<folder>/.sweep.lock`, so the kernel releases it when
its holder dies, however it dies. The file also records the holder (host, pid, start time),
which is what a refused driver prints, and what the next driver reads to say that it took
over a lock left behind. Across hosts (a results folder on NFS) flock is as good as the file
system's locking: a record naming a live-looking holder on another host is refused, with the
file to delete if that holder is gone.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from harness.errors import HarnessError

LOCK_FILE = ".sweep.lock"


class LockHeld(HarnessError):
    """Another driver holds the folder: the folder, its holder, and the fix."""


class FolderLock:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.fd: int | None = None
        self.note: str | None = None

    def _record(self) -> dict:
        try:
            return json.loads(os.pread(self.fd, 4096, 0).decode() or "{}")
        except ValueError:
            return {}

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._record()
            os.close(self.fd)
            self.fd = None
            raise LockHeld(str(self.folder), f"in use by another sweep (host {holder.get('host', '?')}, "
                           f"pid {holder.get('pid', '?')}, since {holder.get('since', '?')})",
                           "wait for it to finish or stop it, or give this sweep another --results folder") from None
        previous = self._record()
        if previous and not previous.get("released"):
            here = previous.get("host") == socket.gethostname()
            if not here:
                self.release()
                raise LockHeld(str(self.path), f"names a sweep on host {previous.get('host')} (pid "
                               f"{previous.get('pid')}, since {previous.get('since')}) that this host cannot check",
                               f"if it is no longer running, delete {self.path}")
            # same host and flock succeeded: the recorded holder died without releasing it
            self.note = (f"took over the lock of a sweep that is no longer running "
                         f"(pid {previous.get('pid')} on {previous.get('host')}, since {previous.get('since')})")
        record = {"host": socket.gethostname(), "pid": os.getpid(),
                  "since": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(record).encode(), 0)
        os.fsync(self.fd)
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            record = self._record()
            if record.get("pid") == os.getpid():
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, json.dumps({**record, "released": True}).encode(), 0)
        finally:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
