"""Broken hosts for the fault tests, made of real parts.

Each fault is a python3 "interpreter" for `ansible_python_interpreter=`: a shell script that starts the
host's real python3 with a sitecustomize.py that breaks one thing the way a real host breaks (a stalled
filesystem, an unreadable /proc file, a clock hours off, an old Python), or that mangles the module's
output. Plus servers that accept a TCP connection and never answer. Nothing in fleetscope is patched.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from pathlib import Path

SITE = {
    # statvfs() on a stalled network filesystem never returns: the collector must be stopped by its timeout.
    "hang": """
        import os, time
        open(os.path.join(os.path.dirname(__file__), "pid"), "w").write(str(os.getpid()))
        def statvfs(path):
            time.sleep(3600)
        os.statvfs = statvfs
    """,
    # The same, stuck in C: a call that retries on EINTR (as a driver's ioctl, or glibc's system() waiting for
    # its child) returns to Python only when it is done, so a SIGALRM handler would wait for it.
    "stuck_in_c": """
        import ctypes, os
        open(os.path.join(os.path.dirname(__file__), "pid"), "w").write(str(os.getpid()))
        libc = ctypes.CDLL(None)
        def statvfs(path):
            libc.system(b"exec sleep 20 </dev/null >/dev/null 2>&1")  # holding no pipe of the answer
        os.statvfs = statvfs
    """,
    # /proc/self/mounts unreadable: the disks subsystem fails, the rest of the document stays.
    "disks_error": """
        import builtins, os
        _open, _os_open = builtins.open, os.open
        def guarded(file, *args, **kwargs):
            if str(file) == "/proc/self/mounts":
                raise PermissionError(13, "Permission denied", str(file))
            return _open(file, *args, **kwargs)
        def os_guarded(path, *args, **kwargs):
            if os.fsdecode(path) == "/proc/self/mounts":
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return _os_open(path, *args, **kwargs)
        builtins.open, os.open = guarded, os_guarded
    """,
    # The host's clock runs three hours ahead.
    "clock_ahead": """
        import time
        _time = time.time
        time.time = lambda: _time() + 3 * 3600
    """,
    # A python3 that reports itself as 3.6.
    "old_python": """
        import sys
        sys.version_info = (3, 6, 9, "final", 0)
        sys.version = "3.6.9 (default) [GCC 8.4.0]"
    """,
}

OUTPUT = {
    # The module's output cut half-way (a dropped connection, a full disk on the host).
    "truncated": '"$PY" "$@" | head -c 300',
    # A healthy host that keeps what the controller sent it (stdin), one file per run and sshd port.
    "record_stdin": 'tee "$(dirname "$0")/stdin-${SSH_CONNECTION##* }-$$" | "$PY" "$@"',
    # An interpreter that hangs before Python starts (a wrapper waiting on a dead network filesystem), and
    # reads nothing: it notices no closed connection.
    "stall": 'echo $$ > "$(dirname "$0")/pid"; exec sleep 3600',
    # Something that is not JSON at all (a login banner or a broken wrapper on the host).
    "garbage": 'cat > /dev/null; echo "Welcome to gpu42! Last login: never"; echo "{{{ not json"',
}


def recorded(folder: Path) -> list[tuple[int | None, dict, bytes]]:
    """What the record_stdin interpreter in `folder` received, one entry per run, oldest first: (the sshd
    port, None without SSH; the collector's arguments; the collector bundle), cut as the bootstrap cuts its
    stdin (fleetscope.stage.payload): the bootstrap, then the arguments, each a length line and its bytes."""
    runs = []
    for f in sorted(Path(folder).glob("stdin-*"), key=lambda f: f.stat().st_mtime_ns):
        length, _, rest = f.read_bytes().partition(b"\n")
        length, _, rest = rest[int(length):].partition(b"\n")
        port = f.name.split("-")[1]
        runs.append((int(port) if port else None, json.loads(rest[:int(length)]), rest[int(length):]))
    return runs


def interpreter(root: Path, fault: str, python: str) -> Path:
    """A python3 wrapper for `fault` under root/fault/; returns its path."""
    folder = Path(root) / fault
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "python3"
    if fault in SITE:
        (folder / "sitecustomize.py").write_text(textwrap.dedent(SITE[fault]))
        body = f'PYTHONPATH="{folder}" exec "$PY" "$@"'
    else:
        body = OUTPUT[fault]
    script.write_text(f'#!/bin/sh\nPY="{python}"\n{body}\n')
    script.chmod(0o755)
    return script


class SilentServer:
    """Accepts TCP connections on address:port and never sends a byte (a hung sshd, a tarpit)."""

    def __init__(self, address: str):
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.address, self.port = address, self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def alive(pid: int) -> bool:
    """The process is running (a zombie, ended but not yet reaped by its parent, is not): for tests that check
    what a stopped run leaves behind."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"
