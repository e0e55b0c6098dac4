"""The /proc path (the default on Linux, FLEETSCOPE_PSUTIL unset or 0) gives the same keys and types as the
psutil path (FLEETSCOPE_PSUTIL=1), and the same values where both read the same counters."""

import os
import subprocess
import time

import pytest

import collectors
from collectors import _util, parse_time

psutil = pytest.importorskip("psutil")


def shape(value):
    """Keys and leaf types of a document; a list by its first item; null matches anything."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None if value is None else type(value).__name__


def merge_nulls(a, b):
    """Compare two shapes, treating null on either side as a wildcard."""
    if a is None or b is None:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(merge_nulls(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or merge_nulls(a[0], b[0])
    return a == b


@pytest.fixture
def both(monkeypatch):
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "1")
    assert _util.get_psutil() is psutil
    with_psutil = collectors.collect(top_n=5)
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    assert _util.get_psutil() is None
    without = collectors.collect(top_n=5)
    return with_psutil, without


def test_the_proc_path_has_the_psutil_paths_shape(both, check_document):
    with_psutil, without = both
    for document in both:
        check_document(document)
        assert document["errors"] == []
    assert merge_nulls(shape(with_psutil), shape(without)), (shape(with_psutil), shape(without))
    for key in ("filesystems", "io"):
        assert bool(with_psutil["disks"][key]) == bool(without["disks"][key])


def test_both_paths_read_the_same_things(both):
    a, b = both
    assert a["memory"]["total_bytes"] == b["memory"]["total_bytes"]
    assert a["memory"]["swap_total_bytes"] == b["memory"]["swap_total_bytes"]
    assert abs(a["memory"]["cached_bytes"] - b["memory"]["cached_bytes"]) < 0.2 * a["memory"]["total_bytes"]
    assert [(f["mount"], f["device"]) for f in a["disks"]["filesystems"]] == \
        [(f["mount"], f["device"]) for f in b["disks"]["filesystems"]]
    assert [d["device"] for d in a["disks"]["io"]] == [d["device"] for d in b["disks"]["io"]]
    assert [n["name"] for n in a["network"]["interfaces"]] == [n["name"] for n in b["network"]["interfaces"]]
    for first, second in zip(a["disks"]["io"], b["disks"]["io"]):  # counters only grow
        assert second["read_bytes"] >= first["read_bytes"] and second["reads"] >= first["reads"]
    top_a = {p["pid"]: p for p in a["processes"]["top"]}
    for p in b["processes"]["top"]:
        if p["pid"] in top_a:
            q = top_a[p["pid"]]
            assert (p["user"], p["command"]) == (q["user"], q["command"])
            # from the boot time, which the kernel may report a second apart in two reads (clock adjustments)
            assert abs(parse_time(p["started_at"]) - parse_time(q["started_at"])) <= 1, (p, q)


def test_psutil_is_used_only_without_proc_unless_asked_for(monkeypatch, tmp_path):
    monkeypatch.delenv("FLEETSCOPE_PSUTIL", raising=False)
    assert _util.get_psutil() is None  # Linux: /proc/stat is there
    monkeypatch.setattr(_util, "PROC", str(tmp_path))  # a host without /proc
    assert _util.get_psutil() is psutil
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    assert _util.get_psutil() is None
    monkeypatch.setattr(_util, "PROC", "/proc")
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "1")
    assert _util.get_psutil() is psutil


def test_a_zombie_keeps_its_owner_on_both_paths(monkeypatch):
    """A GPU process that exited but is not reaped yet (a defunct CUDA job can still hold GPU memory): its
    owner is what the report needs. psutil's path lost it (cmdline() raises ZombieProcess)."""
    import pwd

    from collectors._util import owner_and_command

    child = subprocess.Popen(["sleep", "0"])
    try:
        deadline = time.monotonic() + 10
        while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.05)
        me = pwd.getpwuid(os.getuid()).pw_name
        for choice in ("1", "0"):
            monkeypatch.setenv("FLEETSCOPE_PSUTIL", choice)
            assert owner_and_command(child.pid) == (me, "[sleep]"), choice
    finally:
        child.wait()
