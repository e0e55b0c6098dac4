"""The whole document from this machine's real /proc and /sys: shape, types, failure isolation, and
the key contract test: the warehouse (fleetscope.warehouse.rows.host_rows) accepts it."""

import datetime
import os
import subprocess
import sys
import time

import pytest

import collectors
from fleetscope.warehouse.rows import host_rows

SUBSYSTEM_KEYS = ("host", "cpu", "load", "memory", "disks", "network", "processes", "gpus", "xid")  # document order


@pytest.fixture(scope="module")
def document():
    return collectors.collect(top_n=5)


def test_every_subsystem_is_present_and_typed(document, check_document):
    check_document(document)
    assert list(document) == ["schema_version", "collector_version", "time", *SUBSYSTEM_KEYS, "errors"]
    assert document["errors"] == []
    # xid: null on a host without the NVIDIA driver (no Xid to read)
    assert all(document[k] is not None for k in SUBSYSTEM_KEYS if k != "xid")
    assert (document["xid"] is None) is not collectors.gpus.driver_present()


def test_real_values_are_sane(document):
    host, cpu, mem = document["host"], document["cpu"], document["memory"]
    assert host["hostname"] and host["kernel"] == os.uname().release
    assert host["cpu_logical"] == cpu["logical"] == os.cpu_count()
    assert 1 <= host["cpu_physical"] <= host["cpu_logical"]
    assert host["mem_total_bytes"] == mem["total_bytes"] > 0
    assert mem["used_bytes"] == mem["total_bytes"] - mem["available_bytes"]
    assert sum(cpu["jiffies"].values()) > 0 and cpu["user_hz"] > 0
    assert document["load"]["procs_total"] >= document["load"]["procs_running"] >= 0
    assert all(fs["fstype"] not in ("tmpfs", "proc", "overlay", "squashfs") for fs in document["disks"]["filesystems"])
    assert all(n["name"] != "lo" for n in document["network"]["interfaces"])
    collected = datetime.datetime.fromisoformat(document["time"]["collected_at"][:-1])
    assert abs((datetime.datetime.utcnow() - collected).total_seconds()) < 60
    assert 0 <= document["time"]["duration_s"] < 30


def test_top_processes_are_the_biggest(document):
    top = document["processes"]["top"]
    assert 0 < len(top) <= 10 and document["processes"]["total"] >= len(top)
    assert [p["cpu_time_s"] for p in top] == sorted((p["cpu_time_s"] for p in top), reverse=True)


def test_every_process_is_seen_but_the_collector_itself():
    child = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)",
                              "child-of-the-test"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"  # exec'd: its command line is the child's own
        time.sleep(0.05)  # and in its sleep
        before = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        processes = collectors.collect(top_n=100000, only=["processes"])["processes"]  # every process
        after = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    finally:
        child.kill()
        child.wait()
    by_pid = {p["pid"]: p for p in processes["top"]}
    # all but one: every process there before and after is listed (one that exits in between, on a busy
    # machine, is counted in total but has no details to list)
    assert (before & after) - {os.getpid()} <= set(by_pid)
    assert len(by_pid) <= processes["total"] - 1
    assert os.getpid() not in by_pid  # ... the collector (here: this pytest process) leaves itself out
    assert "child-of-the-test" in by_pid[child.pid]["command"] and by_pid[child.pid]["state"] in ("S", "R")


def test_the_warehouse_accepts_the_document(document, as_result):
    rows = host_rows(as_result(document), "run-1")
    sample = rows["host_samples"][0]
    assert sample["cpu_total_jiffies"] == sum(document["cpu"]["jiffies"].values())
    assert sample["mem_total_bytes"] == document["memory"]["total_bytes"]
    assert rows["hosts"][0]["hostname"] == document["host"]["hostname"]
    assert len(rows["host_processes"]) == len(document["processes"]["top"])
    assert rows["host_status"][0]["errors"] == 0
    # one sample per GPU this machine has (none here; one on the lent H200, where this once failed)
    assert [r["gpu_index"] for r in rows["gpu_samples"]] == [d["index"] for d in document["gpus"]["devices"]]


def test_a_failing_subsystem_becomes_an_error_and_the_others_stay(monkeypatch, check_document, as_result):
    def broken(ctx):
        raise PermissionError("/proc/diskstats: permission denied")

    monkeypatch.setattr(collectors.disks, "collect", broken)
    document = check_document(collectors.collect(top_n=2))
    assert document["disks"] is None
    assert document["errors"] == [
        {"subsystem": "disks", "type": "PermissionError", "message": "/proc/diskstats: permission denied"}]
    assert all(document[k] is not None for k in SUBSYSTEM_KEYS if k not in ("disks", "xid"))  # xid: no driver
    status = host_rows(as_result(document), "run-1")["host_status"][0]
    assert status["errors"] == 1 and "PermissionError" in status["message"]


def test_every_subsystem_failing_still_gives_a_document(monkeypatch, check_document, as_result):
    for name in SUBSYSTEM_KEYS:
        monkeypatch.setattr(collectors.SUBSYSTEMS[name], "collect", lambda ctx: 1 / 0)
    document = check_document(collectors.collect())
    assert all(document[k] is None for k in SUBSYSTEM_KEYS)
    assert sorted(e["subsystem"] for e in document["errors"]) == sorted(SUBSYSTEM_KEYS)
    assert {e["type"] for e in document["errors"]} == {"ZeroDivisionError"}
    assert host_rows(as_result(document), "run-1")["host_status"][0]["errors"] == len(SUBSYSTEM_KEYS)


def test_only_collects_the_named_subsystems(check_document):
    document = check_document(collectors.collect(only="cpu, load"))
    assert [k for k in document if k in SUBSYSTEM_KEYS] == ["cpu", "load"] and document["errors"] == []


def test_bad_arguments_become_errors_not_exceptions(check_document):
    document = collectors.collect(top_n="many", accounting_since="yesterday", only=["cpu", "disk", "processes"])
    check_document(document)
    kinds = {(e["subsystem"], e["type"]) for e in document["errors"]}
    assert kinds == {("disk", "ValueError"), ("accounting_since", "ValueError"), ("processes", "ValueError")}
    assert document["cpu"] is not None


def test_parse_time_accepts_z_offsets_and_naive_utc():
    expected = datetime.datetime(2026, 11, 23, 9, 20, tzinfo=datetime.timezone.utc).timestamp()
    assert collectors.parse_time("2026-11-23T09:20:00Z") == expected
    assert collectors.parse_time("2026-11-23T10:20:00+01:00") == expected
    assert collectors.parse_time("2026-11-23T09:20:00") == expected
    assert collectors.parse_time("2026-11-23T09:20:00.000000Z") == expected
