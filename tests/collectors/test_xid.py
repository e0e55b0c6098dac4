"""Xid events from the kernel log (collectors/xid.py): parsed from /dev/kmsg records, new ones only, and a log
the account may not read is a reason, not an error. The kernel log is real: root writes a record into it as the
NVIDIA driver would (a message tagged with this test's own id), and the collector reads it back."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from collectors import gpus, xid

NOBODY = 65534


def record(seq: int, usec: int, message: str) -> bytes:
    return f"4,{seq},{usec},-;{message}\n".encode()


def test_a_kmsg_record_of_the_driver_is_an_event_and_others_are_not():
    started = 1_700_000_000.0
    event = xid.parse_record(record(812, 5_000_000, "NVRM: Xid (PCI:0000:18:00): 79, pid=1234, name=python, "
                                                     "GPU has fallen off the bus."), started)
    assert event == {"at_s": started + 5.0, "seq": 812, "pci": "0000:18:00", "xid": 79,
                     "message": "pid=1234, name=python, GPU has fallen off the bus."}
    old = xid.parse_record(record(3, 1, "NVRM: Xid (PCI:0000:02:00): 31, Ch 00000010, engmask 00000101"), started)
    assert (old["pci"], old["xid"], old["message"]) == ("0000:02:00", 31, "Ch 00000010, engmask 00000101")
    with_keys = record(4, 2, "NVRM: Xid (PCI:0000:3b:00): 119, Timeout waiting for RPC from GSP!") + \
        b" SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n"
    assert xid.parse_record(with_keys, started)["message"] == "Timeout waiting for RPC from GSP!"
    long = xid.parse_record(record(5, 3, "NVRM: Xid (PCI:0000:18:00): 13, " + "x" * 1000), started)
    assert len(long["message"]) == xid.MAX_MESSAGE
    for other in (b"6,1,2,-;usb 1-1: new high-speed USB device\n", b"garbage", b"4,x,y,-;NVRM: Xid (PCI:0): 1, a",
                  record(6, 4, "NVRM: Xid (PCI:0000:18:00): not a number"), record(7, 5, "NVRM: GPU at PCI:0000")):
        assert xid.parse_record(other, started) is None, other
    odd = xid.parse_record(b"4,8,6,-;NVRM: Xid (PCI:0000:18:00): 79, name=\xff\xfe\n", started)
    assert odd["message"] == "name=\ufffd\ufffd"  # not UTF-8: replaced, valid JSON


def test_no_driver_no_xid(monkeypatch):
    monkeypatch.setattr(gpus, "driver_present", lambda: False)
    assert xid.collect({"accounting_since": None}) is None


def writable_kmsg() -> bool:
    return os.geteuid() == 0 and os.access(xid.KMSG, os.W_OK)


@pytest.mark.skipif(not writable_kmsg(), reason="writing a kernel log record needs root and /dev/kmsg")
def test_an_xid_the_driver_logs_is_read_back_once_from_the_kernel_log(monkeypatch):
    """A record written into the real kernel log, as the driver writes one: the next collection has it, with
    its time (the boot time plus the record's microseconds) within a second or two of when it was written; a
    collection asked for what came after it has it no more."""
    monkeypatch.setattr(gpus, "driver_present", lambda: True)
    tag = uuid.uuid4().hex
    before = time.time()
    with open(xid.KMSG, "w") as log:
        log.write(f"<4>NVRM: Xid (PCI:0000:9a:00): 79, pid=1, name={tag}, GPU has fallen off the bus.\n")
    doc = xid.collect({"accounting_since": before - 2})
    assert doc["available"] and doc["reason"] is None
    from tests.collectors.conftest import XID, check

    check(doc, XID, "xid")
    (mine,) = [e for e in doc["events"] if tag in e["message"]]
    assert (mine["pci"], mine["xid"]) == ("0000:9a:00", 79)
    from collectors import parse_time

    assert abs(parse_time(mine["at"]) - before) < 1, (mine["at"], before)  # the log's clock, not btime's second
    assert doc["boot_id"] == open(xid.BOOT_ID).read().strip()
    # sent again by the runs of the next hour (the warehouse keeps it once), not after
    again = xid.collect({"accounting_since": parse_time(mine["at"]) + xid.MARGIN_S - 60})
    assert [e["seq"] for e in again["events"] if tag in e["message"]] == [mine["seq"]]
    later = xid.collect({"accounting_since": parse_time(mine["at"]) + xid.MARGIN_S + 1})
    assert not [e for e in later["events"] if tag in e["message"]]
    assert len(later["events"]) <= 2 * xid.MAX_EVENTS


def test_a_kernel_log_the_account_may_not_read_is_a_reason_not_an_error(tmp_path):
    """kernel.dmesg_restrict=1 (Debian's default): nobody may not open /dev/kmsg. The collector run as nobody,
    from a copy it may read, by the system's python3."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or python is None:
        pytest.skip("runs the collector as nobody: needs root and /usr/bin/python3 (CI runs as root)")
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict is 0 here: every account reads the log")
    top = Path(tempfile.mkdtemp(prefix="fleetscope-xid-", dir="/tmp"))  # pytest's tmp_path: root's only
    try:
        shutil.copytree(Path(xid.__file__).parent, top / "collectors", ignore=shutil.ignore_patterns("__pycache__"))
        for path in (top, *top.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from collectors import gpus, xid; "
                "gpus.driver_present = lambda: True; print(json.dumps(xid.collect({})))")
        out = subprocess.run([python, "-sE", "-c", code, str(top)], capture_output=True, text=True, timeout=60,
                             user=NOBODY, group=NOBODY, extra_groups=[], cwd="/")
    finally:
        shutil.rmtree(top)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc == {"available": False, "events": [], "truncated": False, "boot_id": None, "reason": (
        "the kernel log is not readable by this account (kernel.dmesg_restrict=1: root or CAP_SYSLOG)")}


def test_a_code_too_large_for_an_xid_is_no_xid():
    """Review: a digit string of any length was taken, and an Xid over 2^31 refused the host's whole document
    in the warehouse, run after run (the same record is read again until the log wraps)."""
    assert xid.parse_record(record(1, 1, "NVRM: Xid (PCI:0000:18:00): 2147483648, pid=1"), 0.0) is None
    assert xid.parse_record(record(1, 1, "NVRM: Xid (PCI:0000:18:00): 154, pid=1"), 0.0)["xid"] == 154


@pytest.mark.skipif(not writable_kmsg(), reason="writing kernel log records needs root and /dev/kmsg")
def test_a_flood_of_an_applications_faults_does_not_push_out_the_gpus_own_errors(monkeypatch):
    """Review: the latest 50 events of any kind were kept: an application faulting in a loop (Xid 13) pushed
    an Xid 79 logged just before out of the run, and nothing said so."""
    monkeypatch.setattr(gpus, "driver_present", lambda: True)
    tag = uuid.uuid4().hex
    before = time.time()
    with open(xid.KMSG, "w") as log:
        log.write(f"<4>NVRM: Xid (PCI:0000:9a:00): 79, pid=1, name={tag}, GPU has fallen off the bus.\n")
    for i in range(xid.MAX_EVENTS + 10):
        with open(xid.KMSG, "w") as log:
            log.write(f"<4>NVRM: Xid (PCI:0000:9a:00): 13, pid={i}, name={tag}, Graphics Exception\n")
    doc = xid.collect({"accounting_since": before - 2 + xid.MARGIN_S})
    mine = [e for e in doc["events"] if tag in e["message"]]
    assert [e["xid"] for e in mine].count(79) == 1 and [e["xid"] for e in mine].count(13) == xid.MAX_EVENTS
    assert doc["truncated"] is True and [e["seq"] for e in doc["events"]] == sorted(e["seq"] for e in doc["events"])


def test_a_log_that_no_longer_reaches_back_to_the_last_run_says_events_may_be_lost():
    """Review: when the kernel log's ring buffer wrapped between two runs, the events it dropped were lost and
    nothing said so. Its oldest record is then not the boot's first (sequence number > 0) and is newer than the
    time the run asks from."""
    started = 1_700_000_000.0
    log = [record(100, 10_000_000, "usb 1-1: new device"),
           record(101, 11_000_000, "NVRM: Xid (PCI:0000:18:00): 79, pid=1, GPU has fallen off the bus.")]
    events, truncated = xid.select(iter(log), started, started + 5)  # asks from 5 s, the log holds from 10 s on
    assert [e["xid"] for e in events] == [79] and truncated is True
    assert xid.select(iter(log), started, started + 10.5) == (events, False)  # the log reaches back to it
    assert xid.select(iter(log), started, None)[1] is False  # the first run: all the log holds, nothing to miss
    from_boot = [record(0, 1_000_000, "Linux version 6.1.0")] + log  # the boot's first record is there
    assert xid.select(iter(from_boot), started, started - 100)[1] is False
