"""Small file helpers: atomic writes and names that are safe for any host name."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, reserved: frozenset[str] = frozenset()) -> str:
    """A file name for an arbitrary (possibly hostile) host name: readable, unique, no path tricks; never one
    of ``reserved`` (a folder's own files)."""
    slug = _UNSAFE.sub("_", name).strip("._")[:80] or "host"
    # GPU01 and gpu01 must not share a file on a case-blind disk
    if slug == name and name == name.lower() and slug not in reserved:
        return slug
    return f"{slug}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def legacy_safe_name(name: str) -> str:
    """What safe_name gave before upper case got a hash too (69ee18a): GPU01 kept its own name, GPU01. Only to
    read back files an older version wrote (a run left in the spool across an upgrade)."""
    slug = _UNSAFE.sub("_", name).strip("._")[:80] or "host"
    if slug == name:
        return slug
    return f"{slug}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def write_atomic(path: Path, data: bytes, keep_mode: bool = False) -> None:
    """Write a whole file or nothing: a reader never sees it half-written, a crash leaves no partial file.
    ``keep_mode``: the file keeps the permissions and owner it had (a file made by hand, such as an
    inventory, that other users read), or, new, gets the permissions the umask gives. Keeping another
    user's owner takes root: PermissionError otherwise, the file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_mode:
            try:
                before = path.stat()
                mode, owner = before.st_mode & 0o7777, (before.st_uid, before.st_gid)
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode, owner = 0o666 & ~umask, None
            os.chmod(tmp, mode)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                os.chown(tmp, *owner)  # root; a user may only keep its own files' owner (callers check)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (a rename or a new file in it), to the disk. A filesystem that
    cannot sync a folder (EINVAL) is left as it is: there is nothing more to do."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def remove_stale(paths, age_s: float, keep: Path | None = None, now: float | None = None) -> int:
    """Remove the files or folders among `paths` untouched for `age_s` seconds (leftovers of a killed run), but
    `keep`; returns how many. One another process removed first, or one this user may not remove, is left
    alone. ``now``: the time to count from (default: the clock)."""
    now = time.time() if now is None else now
    gone = 0
    for path in paths:
        try:
            if path != keep and now - path.stat().st_mtime > age_s:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
                gone += 1
        except OSError:
            pass
    return gone


def write_json_atomic(path: Path, obj) -> None:
    try:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a host (JSON allows "\ud800"): keep it, escaped
        data = json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    write_atomic(path, data)
