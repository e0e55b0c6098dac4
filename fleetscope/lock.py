"""One writer at a time per data directory (collect, ingest, rollup, bookings sync), with a lock the kernel
releases on death."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Busy(RuntimeError):
    """Another fleetscope process holds the lock on this data directory."""


class DataLock:
    """An flock on <data>/.collect.lock: a killed run (even kill -9) releases it, so it is never stale."""

    def __init__(self, data_dir: Path, name: str = "collect"):
        self.path = Path(data_dir) / f".{name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> DataLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise Busy(f"another fleetscope run (pid {holder}) is using {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


#: flock's errors where the file system cannot lock the file (some NFS set-ups, where an exclusive lock needs a
#: file open for writing): the lock is then done without, as before there was one.
CANNOT_LOCK = frozenset({errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})


@contextmanager
def admin_actions_lock(data_dir: Path, wait_s: float = 60) -> Iterator[None]:
    """admin_actions' own lock. `fleetscope admin` records its actions without the data lock (a collect may hold
    it for minutes), so each record, and a rollup's compaction or a recovery of that table's days, take this one
    while they touch the table: a record written into a day while it is swapped would go with the old day. A
    record is one small file and the table's compaction a few: each waits up to ``wait_s`` for the other.
    The lock is an flock on admin_actions/.lock, made group-writable by whoever makes it first; an account that
    may not write it opens it to read, which locks as well on a local file system. Where the file system cannot
    lock it (CANNOT_LOCK), or the file cannot be made or opened (a folder this account may only read, which it
    will not write either), the table is touched without the lock."""
    folder = Path(data_dir) / "admin_actions"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except PermissionError:  # made by another account, which this one may only read
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # not made yet, in a folder this account may not write: as where nothing can lock
            fd = None
    if fd is None:
        yield
        return
    try:
        try:
            st = os.fstat(fd)
            if st.st_uid == os.geteuid() and st.st_mode & 0o777 != 0o664:
                os.fchmod(fd, 0o664)  # whatever the umask: the cron user's group may write it too
        except OSError:
            pass
        deadline = time.monotonic() + wait_s
        while _take(fd) is False:
            if time.monotonic() >= deadline:
                raise Busy(f"another fleetscope process is writing {folder}")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _take(fd: int) -> bool | None:
    """True: the flock on ``fd`` is taken; False: another holds it; None: the file system cannot lock it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in CANNOT_LOCK:
            return None
        raise
    return True
