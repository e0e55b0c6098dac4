"""fleetscope/files.py's atomic writes, on their own: what a crash may leave, and the permissions a new file gets.
The writers that use them (spool, catalog, hosts) are tested through their own commands elsewhere."""

from __future__ import annotations

import os
import stat

import pytest

from fleetscope import files
from fleetscope.files import write_atomic


def test_the_data_is_on_the_disk_before_the_file_takes_the_old_ones_place(tmp_path, monkeypatch):
    """A power cut after the rename must find the new content or the old one, never an empty file: the
    temporary file is synced before it is renamed over the old one."""
    path = tmp_path / "run.json"
    path.write_bytes(b"old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda src, dst: events.append(("replace", str(src)))
                        or real_replace(src, dst))
    write_atomic(path, b"new")
    assert [kind for kind, _ in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1]  # the very file that is renamed
    assert path.read_bytes() == b"new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_bytes(b"old")
    monkeypatch.setattr(files.os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(28, "No space")))
    with pytest.raises(OSError):
        write_atomic(path, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"] and path.read_bytes() == b"old"


def test_a_new_file_kept_as_others_read_it_gets_the_umasks_permissions(tmp_path):
    """keep_mode (the catalog's stamp, an inventory): a file that did not exist gets what the umask gives, as
    a file made by hand would, not the temporary file's 0600 that keeps every other user out."""
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.stamp", b"x", keep_mode=True)
        (tmp_path / "kept.ini").write_bytes(b"")
        (tmp_path / "kept.ini").chmod(0o640)
        write_atomic(tmp_path / "kept.ini", b"x", keep_mode=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.stamp").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "kept.ini").stat().st_mode) == 0o640
