"""What a host can hold that must not cost the document: megabytes of arguments, counters past 64 bits, mount
paths that are not UTF-8, ZFS pools, a /proc/stat without btime, processes that exit while being read.

The /proc path against copies of the fixture tree (test_proc_values.py), with the one change each case needs."""

import os
import shutil

import pytest

from collectors import _util, disks, host, network, processes
from collectors.redact import MAX_COMMAND, MAX_INPUT, redact_argv
from fleetscope.warehouse.rows import host_rows
from tests.collectors.test_proc_values import PROC, SELF_PID, SYS_BLOCK, fixture_proc  # noqa: F401 - a fixture


@pytest.fixture
def proc_copy(tmp_path, monkeypatch):
    """A writable copy of the fixture /proc, every module reading it, psutil off."""
    root = tmp_path / "proc"
    shutil.copytree(PROC, root)
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    for module in (_util, disks, network, processes):
        monkeypatch.setattr(module, "PROC", str(root))
    monkeypatch.setattr(_util, "_boot_time", [])
    monkeypatch.setattr(disks, "SYS_BLOCK", str(SYS_BLOCK))
    monkeypatch.setattr(os, "getpid", lambda: SELF_PID)
    return root


def test_megabytes_of_arguments_are_read_and_redacted_only_as_far_as_they_are_shown(proc_copy):
    """15 such processes took 35-39 s to redact whole, past the host timeout, and the host's document was lost:
    now the first MAX_INPUT bytes are read, and the command line ends in "..." where it was cut."""
    argv = [b"python3", b"--token=hunter2"] + [b"a=;"] * 2_000_000
    (proc_copy / "1500" / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (raw,) = _util.read_many([f"{_util.PROC}/1500/cmdline"], most=MAX_INPUT)  # as owners_and_commands reads it
    read = _util.argv_from_cmdline(raw)
    assert read[:2] == ["python3", "--token=hunter2"]
    assert sum(len(a) + 1 for a in read) <= MAX_INPUT + 4096  # one read past the bound at most
    command = _util.command_from_argv(read, None)
    assert command.startswith("python3 --token=<redacted> a=; a=;") and command.endswith("...")
    assert len(command) == MAX_COMMAND


def test_a_long_argv_from_psutil_is_bounded_too():
    words = ["x"] * 3_000_000
    command = redact_argv(["mysql", "-p", "hunter2", *words])
    assert command.startswith("mysql -p <redacted> x x") and len(command) == MAX_COMMAND
    assert redact_argv(["ls", "-l"]) == "ls -l"  # short ones as before, no "..."
    cut = redact_argv(["x" * (MAX_INPUT + 10)], limit=None)  # cut inside one argument: marked
    assert cut == "x" * MAX_INPUT + "..."


def test_counters_past_64_bits_are_unknown_not_the_end_of_the_document(proc_copy):
    dev = (proc_copy / "net" / "dev").read_text().splitlines()
    name, _, rest = dev[3].partition(":")
    fields = rest.split()
    fields[0] = str(2**64 - 1)  # a u64 counter near its wrap
    dev[3] = f"{name}: {' '.join(fields)}"
    (proc_copy / "net" / "dev").write_text("\n".join(dev) + "\n")
    interfaces = {i["name"]: i for i in network.collect({})["interfaces"]}
    nic = interfaces[name.strip()]
    assert nic["rx_bytes"] is None and nic["tx_bytes"] == int(fields[8])
    stats = [line.split() for line in (proc_copy / "diskstats").read_text().splitlines()]
    disk = next(f for f in stats if f[2] == "vda")
    disk[5] = str(2**62)  # sectors: x 512 is past 2**63
    (proc_copy / "diskstats").write_text("\n".join(" ".join(f) for f in stats) + "\n")
    vda = next(d for d in disks.io_counters() if d["device"] == "vda")
    assert vda["read_bytes"] is None and vda["write_bytes"] == int(disk[9]) * 512


def test_a_mount_path_that_is_not_utf8_is_measured_and_named(proc_copy, tmp_path, monkeypatch):
    odd = os.fsencode(str(tmp_path)) + b"/pool \xff\xfe data"
    os.mkdir(odd)
    escaped = odd.replace(b" ", b"\\040")
    (proc_copy / "filesystems").write_bytes(b"nodev\tproc\nnodev\ttmpfs\nnodev\tzfs\n\text4\n")
    (proc_copy / "self" / "mounts").write_bytes(
        b"/dev/vda1 / ext4 rw,relatime 0 0\n"
        b"tank/home " + escaped + b" zfs rw,xattr 0 0\n"
        b"tmpfs /run tmpfs rw 0 0\n")
    measured = []
    real_statvfs = os.statvfs

    def statvfs(path):
        measured.append(path)
        return real_statvfs(path)

    monkeypatch.setattr(os, "statvfs", statvfs)
    got = {fs["mount"]: fs for fs in disks.filesystems()}
    name = odd.decode("utf-8", "replace")
    assert set(got) == {"/", name}  # ZFS kept (as psutil keeps it), tmpfs not; the path measured as bytes
    assert got[name]["fstype"] == "zfs" and got[name]["device"] == "tank/home"
    assert odd in measured


def test_fuse_network_filesystems_are_not_local_disks(proc_copy, monkeypatch):
    """A FUSE mount's type ("fuse.sshfs") is not in /proc/filesystems, where only "nodev fuse" is: it is a
    network filesystem, left out as psutil leaves it out, and never given to statvfs (whose server may
    never answer). fuseblk (ntfs-3g on a local disk) is listed without nodev: kept."""
    (proc_copy / "filesystems").write_bytes(b"nodev\tproc\nnodev\tfuse\n\tfuseblk\n\text4\nnodev\tnfs4\n")
    (proc_copy / "self" / "mounts").write_bytes(
        b"/dev/vda1 / ext4 rw,relatime 0 0\n"
        b"monitor@nas:/data /mnt/nas fuse.sshfs rw,nosuid,nodev 0 0\n"
        b"nas:/export /mnt/nfs nfs4 rw 0 0\n"
        b"/dev/sdb1 /mnt/win fuseblk rw 0 0\n")
    measured = []
    monkeypatch.setattr(os, "statvfs", lambda path: measured.append(path) or os.statvfs_result((4096,) * 10))
    assert [(fs["mount"], fs["fstype"]) for fs in disks.filesystems()] == [("/", "ext4"), ("/mnt/win", "fuseblk")]
    assert measured == [b"/", b"/mnt/win"]


def test_no_btime_costs_the_boot_time_and_the_start_times_only(proc_copy):
    stat = [line for line in (proc_copy / "stat").read_text().splitlines() if not line.startswith("btime")]
    (proc_copy / "stat").write_text("\n".join(stat) + "\n")
    ctx = {"errors": [], "nvidia": {"nvidia_driver": None, "cuda_version": None, "nvml_version": None,
                                    "gpu_models": []}}
    facts = host.collect(ctx)
    assert facts["boot_time"] is None and facts["hostname"] and facts["kernel"] and facts["mem_total_bytes"]
    assert [e["subsystem"] for e in ctx["errors"]] == ["host.boot_time"]
    top = processes.collect({"top_n": 3})["top"]
    assert top and all(p["started_at"] is None and p["cpu_percent"] is None for p in top)
    assert all(p["command"] for p in top)


def test_a_process_that_exits_between_the_two_passes_is_skipped_not_listed_without_a_command(proc_copy):
    listed = {p["pid"] for p in processes.collect({"top_n": 15})["top"]}
    gone = max(listed)
    (proc_copy / str(gone) / "cmdline").unlink()  # as the kernel answers once the process is reaped
    (proc_copy / str(gone) / "comm").unlink()
    again = processes.collect({"top_n": 15})["top"]
    assert {p["pid"] for p in again} == listed - {gone}
    assert all(p["command"] is not None for p in again)


def test_every_case_above_still_gives_a_document_the_warehouse_takes(proc_copy, monkeypatch):
    """The whole collector on the same hostile tree: a document, with no subsystem lost."""
    import collectors

    (proc_copy / "1500" / "cmdline").write_bytes(b"\0".join([b"python3"] + [b"a=;"] * 100_000) + b"\0")
    monkeypatch.setattr(host, "PROC", str(proc_copy))
    (proc_copy / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU @ 2.00GHz\n\n")
    doc = collectors.collect(only=["cpu", "memory", "load", "disks", "network", "processes", "host"])
    assert not doc["errors"] and all(doc[name] is not None for name in ("disks", "network", "processes", "host"))
    rows = host_rows({"host": "h", "status": "ok", "message": "", "ts": doc["time"]["collected_at"],
                      "document": doc}, "run")
    assert rows["host_samples"][0]["host"] == "h"
    assert any(p["command"].endswith("...") for p in doc["processes"]["top"])
    assert doc["host"]["cpu_model"] == "Test CPU @ 2.00GHz"
