"""benchmarks/cold_cpu.py sorts process accounting records into the kinds of process it reports."""

import pytest

from benchmarks.cold_cpu import KINDS, by_kind


def test_processes_are_counted_by_name_and_ancestry():
    records = [
        {"comm": "python", "pid": 10, "ppid": 1, "cpu": 9.0},  # the benchmark itself: not in a run's tree
        {"comm": "fleetscope", "pid": 100, "ppid": 10, "cpu": 0.7},
        {"comm": "python", "pid": 101, "ppid": 100, "cpu": 1.1},  # ansible-playbook
        {"comm": "python", "pid": 102, "ppid": 101, "cpu": 0.02},  # a worker
        {"comm": "python", "pid": 103, "ppid": 101, "cpu": 0.03},
        {"comm": "ssh", "pid": 104, "ppid": 102, "cpu": 0.01},  # a worker's ssh
        {"comm": "ssh", "pid": 105, "ppid": 100, "cpu": 0.12},  # a warm-up opening
        {"comm": "ssh", "pid": 106, "ppid": 1, "cpu": 0.0},  # its master, daemonized
        {"comm": "sshd", "pid": 200, "ppid": 50, "cpu": 0.05},  # a host's session (its listener never ends)
        {"comm": "timeout", "pid": 201, "ppid": 200, "cpu": 0.0},
        {"comm": "python3", "pid": 202, "ppid": 201, "cpu": 0.03},  # the collector, under the session
        {"comm": "ldconfig", "pid": 107, "ppid": 101, "cpu": 0.01},
        {"comm": "accton", "pid": 108, "ppid": 10, "cpu": 0.0},
        {"comm": "python3.10", "pid": 109, "ppid": 100, "cpu": 0.2},  # compiling the collector for 3.10 hosts
    ]
    kinds = by_kind(records)
    assert set(kinds) <= set(KINDS)
    assert kinds["fleetscope"] == pytest.approx(0.7)
    assert kinds["ansible-playbook"] == pytest.approx(1.1)
    assert kinds["ansible workers"] == pytest.approx(0.05)
    assert kinds["ssh clients"] == pytest.approx(0.13)
    assert kinds["hosts"] == pytest.approx(0.08)
    assert kinds["other"] == pytest.approx(9.21)  # the benchmark's own process, ldconfig, the compiling Python
