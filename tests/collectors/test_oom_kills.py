"""memory.oom_kills: the kernel's count of processes its OOM killer killed, checked against a real OOM kill (a
child in a memory cgroup limited to 64 MiB asking for 300 MiB), and against /proc/vmstat files without it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import collectors
from collectors import memory

CGROUP_V1 = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup/unified")  # a hybrid layout's v2 tree; a pure v2 host mounts it at /sys/fs/cgroup


def small_cgroup() -> tuple[Path, Path] | None:
    """A new memory cgroup limited to 64 MiB: (its folder, the file a pid joins it by), or None where none can
    be made here (not root, no memory controller)."""
    limit = str(64 * 1024 * 1024)
    candidates = [(CGROUP_V1, "memory.limit_in_bytes")]
    for root in (Path("/sys/fs/cgroup"), CGROUP_V2):
        try:
            if "memory" in (root / "cgroup.controllers").read_text().split():
                candidates.append((root, "memory.max"))
        except OSError:
            continue
    for root, limit_file in candidates:
        folder = root / f"fleetscope-test-{uuid.uuid4().hex[:8]}"
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            (folder / limit_file).write_text(limit)
        except OSError:
            folder.rmdir()
            continue
        # no swap either, where the host has some: the child must be killed, not swapped out
        swap_file, swap_limit = (("memory.memsw.limit_in_bytes", limit) if limit_file == "memory.limit_in_bytes"
                                 else ("memory.swap.max", "0"))
        try:
            (folder / swap_file).write_text(swap_limit)
        except OSError:  # no swap accounting (or no swap): nothing to limit
            pass
        return folder, folder / "cgroup.procs"
    return None


def test_a_real_oom_kill_is_counted():
    made = small_cgroup()
    if made is None:
        pytest.skip("no memory cgroup can be made here (root and a memory controller needed)")
    folder, procs = made
    before = memory.oom_kills()
    try:
        child = subprocess.run(
            [sys.executable, "-c", "x = bytearray(300 * 1024 * 1024)"],
            preexec_fn=lambda: procs.write_text(str(os.getpid())), timeout=60)
    finally:
        folder.rmdir()
    assert child.returncode == -9  # SIGKILL, from the OOM killer
    after = collectors.collect(only="memory")["memory"]["oom_kills"]
    assert before is not None and after >= before + 1  # other kills on the machine may add to it, never less


@pytest.mark.parametrize("vmstat, expected", [
    ("nr_free_pages 100\noom_kill 7\nnr_zspages 0\n", 7),
    ("oom_kill 3\nnr_free_pages 100\n", 3),  # the first line
    ("nr_free_pages 100\nnr_zspages 0\n", None),  # a kernel before 4.13
    ("nr_free_pages 100\npgfault 12\noom_kill_other 5\n", None),  # another name that starts alike
    ("nr_free_pages 100\noom_kill x\n", None),
])
def test_oom_kills_from_vmstat(tmp_path, monkeypatch, vmstat, expected):
    (tmp_path / "vmstat").write_text(vmstat)
    monkeypatch.setattr(memory, "PROC", str(tmp_path))
    assert memory.oom_kills() == expected


def test_no_vmstat_is_not_known(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "PROC", str(tmp_path))
    assert memory.oom_kills() is None
