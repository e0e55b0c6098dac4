"""One writer at a time per data directory (collect, ingest, rollup, bookings sync), with a lock the kernel
releases on death."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class Busy(RuntimeError):
    """Another fleetscope process holds the lock on this data directory."""


class DataLock:
    """An flock on <data>/.<name>.lock: a killed run (even kill -9) releases it, so it is never stale.
    ``wait_s``: how long to wait for a holder to let go before Busy (0: not at all)."""

    def __init__(self, data_dir: Path, name: str = "collect", wait_s: float = 0):
        self.path = Path(data_dir) / f".{name}.lock"
        self.wait_s = wait_s
        self._fd: int | None = None

    def __enter__(self) -> DataLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        try:
            while not self._take(fd):
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise Busy(f"another fleetscope run (pid {holder}) is using {self.path.parent}")
                time.sleep(0.05)
        except BaseException:  # Busy, or Ctrl-C while waiting
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _take(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def admin_actions_lock(data_dir: Path) -> DataLock:
    """admin_actions' own lock. `fleetscope admin` records its actions without the data lock (a collect may hold
    it for minutes), so each record, and a rollup's compaction or a recovery of that table's days, take this one
    while they touch the table: a record written into a day while it is swapped would go with the old day. A
    record is one small file and the table's compaction a few: each waits up to a minute for the other."""
    return DataLock(data_dir, "admin_actions", wait_s=60)
