"""One writer at a time per data directory (collect, ingest, rollup, bookings sync), with a lock the kernel
releases on death."""

from __future__ import annotations

import fcntl
import os
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
