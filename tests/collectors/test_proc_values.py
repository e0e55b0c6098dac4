"""The values the /proc path reads, checked exactly against a fixture /proc tree.

tests/collectors/data/proc (and data/sys/block) is a small /proc with known contents, in the kernel's formats
(copied from a real host, numbers edited so that every field differs from its neighbours). Each subsystem's
module is pointed at it, psutil is turned off (FLEETSCOPE_PSUTIL=0), and every expected value below was worked
out by hand from the fixture's numbers: a field read from the wrong column, a unit left out or a top list cut
short gives another number. The only OS calls replaced are the ones that /proc cannot stand in for:
os.statvfs (free space), os.getpid (the collector's own process), the clock, and sysconf's page size and
clock tick (fixed at the common 4096 and 100 so that the numbers hold on any host).
"""

import os
import pwd
import shutil
import types
from pathlib import Path

import pytest

from collectors import _util, cpu, disks, load, memory, network, processes

DATA = Path(__file__).parent / "data"
PROC = DATA / "proc"
SYS_BLOCK = DATA / "sys" / "block"
KB = 1024
PAGE = 4096  # page size and clock tick the tests give the collector (os.sysconf's on x86-64)
HZ = 100
BTIME = 1700000000  # btime in data/proc/stat: 2023-11-14T22:13:20Z
NOW = BTIME + 100000  # the clock during the processes tests: 100000 s after boot
SELF_PID = 4000  # data/proc/4000 stands for the collector itself


@pytest.fixture
def fixture_proc(monkeypatch):
    """Every module's PROC at the fixture tree (each module holds its own name for it), psutil off."""
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    for module in (_util, cpu, disks, load, memory, network, processes):
        monkeypatch.setattr(module, "PROC", str(PROC))
    monkeypatch.setattr(_util, "_boot_time", [])  # read btime from the fixture, not a cached real one
    monkeypatch.setattr(disks, "SYS_BLOCK", str(SYS_BLOCK))
    return PROC


def copied_proc(tmp_path, monkeypatch, module, **files):
    """A copy of the fixture tree with some files replaced, and `module` (and _util) reading it."""
    root = tmp_path / "proc"
    shutil.copytree(PROC, root)
    for name, content in files.items():
        (root / name).write_text(content)
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    monkeypatch.setattr(module, "PROC", str(root))
    monkeypatch.setattr(_util, "PROC", str(root))
    return root


# -- cpu -----------------------------------------------------------------------------------------------------
def test_cpu_jiffies_are_the_aggregate_line_field_by_field(fixture_proc):
    # data/proc/stat: "cpu  6082658 157232 1414258 7032356 52311 1187 19707 256552 0 0", then cpu0, cpu1
    got = cpu.collect({})
    assert got["jiffies"] == {
        "user": 6082658, "nice": 157232, "system": 1414258, "idle": 7032356,
        "iowait": 52311, "irq": 1187, "softirq": 19707, "steal": 256552,
    }
    assert got["user_hz"] == os.sysconf("SC_CLK_TCK")
    assert got["logical"] == os.cpu_count()


def test_cpu_without_steal_counts_it_as_zero(tmp_path, monkeypatch):
    """Kernels before 2.6.11 write seven counters: steal is then 0, the others keep their places."""
    copied_proc(tmp_path, monkeypatch, cpu, stat="cpu  600 50 140 7000 52 11 19\ncpu0 600 50 140 7000 52 11 19\n")
    assert cpu.collect({})["jiffies"] == {
        "user": 600, "nice": 50, "system": 140, "idle": 7000, "iowait": 52, "irq": 11, "softirq": 19, "steal": 0,
    }


# -- load ----------------------------------------------------------------------------------------------------
def test_load_averages_and_scheduler_counts(fixture_proc):
    # data/proc/loadavg: "0.52 1.06 1.25 3/812 26705"
    assert load.collect({}) == {"load1": 0.52, "load5": 1.06, "load15": 1.25, "procs_running": 3, "procs_total": 812}


# -- memory --------------------------------------------------------------------------------------------------
def test_memory_from_meminfo(fixture_proc):
    # data/proc/meminfo (kB): MemTotal 24684096, MemFree 9672788, MemAvailable 14220856, Buffers 21992,
    # Cached 4478964, SReclaimable 360632, SwapTotal 8388604, SwapFree 8126460
    assert memory.collect({}) == {
        "total_bytes": 24684096 * KB,
        "available_bytes": 14220856 * KB,  # MemAvailable, not MemFree (9672788 kB)
        "used_bytes": (24684096 - 14220856) * KB,  # 10463240 kB: total - available
        "buffers_bytes": 21992 * KB,
        "cached_bytes": (4478964 + 360632) * KB,  # Cached + SReclaimable
        "swap_total_bytes": 8388604 * KB,
        "swap_used_bytes": (8388604 - 8126460) * KB,  # 262144 kB
        "oom_kills": 4,  # data/proc/vmstat: oom_kill 4
    }


def test_memory_before_memavailable_estimates_it(tmp_path, monkeypatch):
    """Kernels before 3.14 have no MemAvailable: available is then MemFree + Buffers + Cached."""
    copied_proc(tmp_path, monkeypatch, memory, meminfo=(
        "MemTotal:        2000000 kB\nMemFree:          300000 kB\nBuffers:           40000 kB\n"
        "Cached:           500000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
        "HugePages_Total:       0\n"
    ))
    got = memory.collect({})
    assert got["available_bytes"] == 840000 * KB
    assert got["used_bytes"] == 1160000 * KB
    assert (got["total_bytes"], got["swap_total_bytes"], got["swap_used_bytes"]) == (2000000 * KB, 0, 0)


# -- network -------------------------------------------------------------------------------------------------
def test_network_counters_per_interface(fixture_proc):
    # data/proc/net/dev: receive columns (bytes packets errs drop fifo frame compressed multicast), then transmit
    # (bytes packets errs drop fifo colls carrier compressed); every interface but lo, by name
    assert network.collect({}) == {"interfaces": [
        {"name": "docker0", "rx_bytes": 40960, "tx_bytes": 81920, "rx_packets": 512, "tx_packets": 1024,
         "rx_errors": 0, "tx_errors": 0, "rx_dropped": 1, "tx_dropped": 2},
        {"name": "eth0", "rx_bytes": 5675902214, "tx_bytes": 8876098, "rx_packets": 164214, "tx_packets": 84550,
         "rx_errors": 3, "tx_errors": 5, "rx_dropped": 7, "tx_dropped": 9},
        {"name": "ib0", "rx_bytes": 987654321012, "tx_bytes": 123456789098, "rx_packets": 4400100,
         "tx_packets": 3300200, "rx_errors": 13, "tx_errors": 29, "rx_dropped": 17, "tx_dropped": 31},
    ]}


# -- disks ---------------------------------------------------------------------------------------------------
def statvfs(bsize, frsize, blocks, bfree, bavail, files, ffree):
    return os.statvfs_result((bsize, frsize, blocks, bfree, bavail, files, ffree, ffree, 0, 255))


# what statvfs answers for each mount of data/proc/self/mounts; /mnt/private refuses (PermissionError)
STATVFS = {
    "/sys": statvfs(4096, 4096, 0, 0, 0, 0, 0),
    "/proc": statvfs(4096, 4096, 0, 0, 0, 0, 0),
    "/": statvfs(4096, 4096, 10000000, 4000000, 3500000, 6000000, 5000000),
    "/run": statvfs(4096, 4096, 617103, 616000, 616000, 3085512, 3084000),
    "/boot/efi": statvfs(512, 512, 213000, 200000, 200000, 0, 0),
    "/scratch data": statvfs(4096, 4096, 500000000, 300000000, 300000000, 250000000, 249000000),
    "/var/lib/docker": statvfs(4096, 4096, 10000000, 4000000, 3500000, 6000000, 5000000),  # bind of /
    "/snap/core20/2105": statvfs(131072, 131072, 509, 0, 0, 11906, 0),
    "/var/lib/docker/overlay2/abc/merged": statvfs(4096, 4096, 10000000, 4000000, 3500000, 6000000, 5000000),
}


def fake_statvfs(path):
    path = os.fsdecode(path)  # the /proc path measures mounts by their bytes (a path need not be UTF-8)
    if path in STATVFS:
        return STATVFS[path]
    raise PermissionError(13, "Permission denied", path)


def test_filesystems_capacity_and_inodes(fixture_proc, monkeypatch):
    """Device-backed mounts in mount order: no nodev types (sysfs, proc, tmpfs, overlay), no squashfs, a device
    once (the bind mount of / on /var/lib/docker is left out), none that statvfs refuses; the mount point's
    octal escape undone. free_bytes is what an unprivileged user can write: f_bavail, not f_bfree."""
    monkeypatch.setattr(os, "statvfs", fake_statvfs)
    assert disks.filesystems() == [
        {"mount": "/", "device": "/dev/vda1", "fstype": "ext4",
         "total_bytes": 10000000 * 4096, "used_bytes": 6000000 * 4096, "free_bytes": 3500000 * 4096,
         "inodes_total": 6000000, "inodes_used": 1000000},
        {"mount": "/boot/efi", "device": "/dev/vda15", "fstype": "vfat",
         "total_bytes": 213000 * 512, "used_bytes": 13000 * 512, "free_bytes": 200000 * 512,
         "inodes_total": 0, "inodes_used": 0},
        {"mount": "/scratch data", "device": "/dev/nvme0n1", "fstype": "xfs",
         "total_bytes": 500000000 * 4096, "used_bytes": 200000000 * 4096, "free_bytes": 300000000 * 4096,
         "inodes_total": 250000000, "inodes_used": 1000000},
    ]


def test_filesystem_sizes_count_fragments_not_blocks(fixture_proc, monkeypatch):
    """Sizes are in f_frsize units; f_bsize is only the preferred I/O size and may differ."""
    monkeypatch.setattr(os, "statvfs", lambda path: statvfs(65536, 1024, 3000, 1000, 800, 10, 4))
    root = disks.filesystems()[0]
    assert root["mount"] == "/"
    assert (root["total_bytes"], root["used_bytes"], root["free_bytes"]) == (3000 * 1024, 2000 * 1024, 800 * 1024)
    assert (root["inodes_total"], root["inodes_used"]) == (10, 6)


def test_disk_io_counters_of_whole_disks(fixture_proc):
    """Only the names with a device under /sys/block (vda, nvme0n1, cciss!c0d0 for cciss/c0d0): not loop0, dm-0,
    zram0, nor the partition vda1. Sectors are 512 bytes; the 14-field line of an old kernel reads the same."""
    assert disks.io_counters() == [
        {"device": "cciss/c0d0", "read_bytes": 11200 * 512, "write_bytes": 4800 * 512,
         "reads": 700, "writes": 300, "io_time_ms": 150},
        {"device": "nvme0n1", "read_bytes": 802112 * 512, "write_bytes": 9123456 * 512,
         "reads": 5012, "writes": 70123, "io_time_ms": 61004},
        {"device": "vda", "read_bytes": 21374602 * 512, "write_bytes": 47219864 * 512,
         "reads": 361277, "writes": 1288401, "io_time_ms": 1120452},
    ]


# -- processes -----------------------------------------------------------------------------------------------
def owner():
    uid = (PROC / "1").stat().st_uid  # the fixture's files belong to whoever checked them out
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def row(pid, command, cpu_time_s, cpu_percent, rss_pages, started_at, state):
    return {"pid": pid, "user": owner(), "command": command, "cpu_time_s": cpu_time_s, "cpu_percent": cpu_percent,
            "rss_bytes": rss_pages * PAGE, "started_at": started_at, "state": state}


# Every process of data/proc but the collector's own (4000), by (cpu time, rss), highest first. cpu_time_s is
# (utime + stime) / 100; cpu_percent is 100 * cpu time / (NOW - (BTIME + starttime / 100)).
ROWS = {
    # 3600000 + 400000 ticks, started 50000 s after boot: 40000 s over 50000 s; resident pages from its statm
    # (2100000, exact, as psutil and VmRSS), not its stat (2000000: the kernel's estimate, which ranks)
    811: row(811, "python3 train.py --lr 0.1 --wandb-key=<redacted>", 40000.0, 80.0, 2100000,
             "2023-11-15T12:06:40Z", "R"),
    # 300000 + 200000 ticks, started 80000 s after boot: 5000 s over 20000 s
    2301: row(2301, "sshd: alice [priv]", 5000.0, 25.0, 250000, "2023-11-15T20:26:40Z", "S"),
    # 1500 + 2500 ticks over 99999.99 s
    1: row(1, "/sbin/init splash", 40.0, 0.0, 3000, "2023-11-14T22:13:20Z", "S"),
    # 2000 + 1000 ticks, started 94000 s after boot: 30 s over 6000 s
    1220: row(1220, "/usr/bin/redis-server *:6379", 30.0, 0.5, 1500000, "2023-11-16T00:20:00Z", "S"),
    # 40 + 10 ticks, started 99900 s after boot: 0.5 s over 100 s
    3150: row(3150, "-bash", 0.5, 0.5, 1300, "2023-11-16T01:58:20Z", "S"),
    2: row(2, "[kthreadd]", 0.07, 0.0, 0, "2023-11-14T22:13:20Z", "S"),  # a kernel thread: empty cmdline
    1500: row(1500, "(sd-pam)", 0.04, 0.0, 1200, "2023-11-14T22:13:22Z", "S"),  # ")" inside the name
    3333: row(3333, "[worker]", 0.02, 0.0, 0, "2023-11-15T23:13:20Z", "Z"),  # a zombie
}


@pytest.fixture
def collect_processes(fixture_proc, monkeypatch):
    monkeypatch.setattr(processes, "page_size", lambda: PAGE)
    monkeypatch.setattr(processes, "user_hz", lambda: HZ)
    monkeypatch.setattr(processes, "time", types.SimpleNamespace(time=lambda: float(NOW)))

    def run(top_n):
        with monkeypatch.context() as m:
            m.setattr(os, "getpid", lambda: SELF_PID)  # only while collecting: data/proc/4000 is the collector
            return processes.collect({"top_n": top_n})

    return run


def test_top_processes_are_the_union_of_top_n_by_cpu_and_by_memory(collect_processes):
    """top_n=2: the two heaviest by CPU time (811, 2301) and the two by resident memory (811, 1220), once each.
    The collector's own process (4000: most CPU, most memory) is counted in total but not listed."""
    got = collect_processes(2)
    assert got["total"] == 9
    assert got["top"] == [ROWS[811], ROWS[2301], ROWS[1220]]


def test_top_n_of_one_takes_the_top_of_each_list(collect_processes):
    assert collect_processes(1) == {"total": 9, "others_hidden": None, "top": [ROWS[811]]}  # no proc mount here


def test_top_n_of_three(collect_processes):
    """By CPU: 811, 2301, 1; by memory: 811, 1220, 2301."""
    assert collect_processes(3)["top"] == [ROWS[811], ROWS[2301], ROWS[1], ROWS[1220]]


def test_top_n_beyond_the_process_count_lists_every_other_process(collect_processes):
    got = collect_processes(15)
    assert got["total"] == 9
    assert got["top"] == list(ROWS.values())


def test_top_n_of_zero_lists_none(collect_processes):
    assert collect_processes(0) == {"total": 9, "others_hidden": None, "top": []}


def test_a_process_whose_uid_has_no_login_name_shows_the_uid_as_text(collect_processes, monkeypatch):
    """A uid the password database does not know (a container's, an LDAP user while the directory is down) is
    shown as its number, as text: the document's user is a string, and the warehouse stores it as one."""
    import pwd

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(_util, "_pw_cache", {})
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    uid = (PROC / "811").stat().st_uid
    assert collect_processes(1)["top"][0]["user"] == str(uid)


def test_a_gpu_processs_owner_is_kept_when_its_command_line_cannot_be_read(fixture_proc, monkeypatch):
    """owner_and_command serves the GPU processes, whose pids come from NVML. On a host mounting /proc with
    hidepid=1 another user's /proc/<pid> is there (its owner known) but its cmdline is not readable: the
    process keeps its owner, whom the GPU's hours are counted to, and only its command is unknown. A process
    that has exited is neither."""
    assert _util.owner_and_command(811) == (owner(), "python3 train.py --lr 0.1 --wandb-key=<redacted>")

    def denied(paths, most=None, wait=None):
        return [PermissionError(13, "Permission denied", path) for path in paths]

    monkeypatch.setattr(_util, "read_many", denied)
    assert _util.owner_and_command(811) == (owner(), None)
    assert _util.owner_and_command(99999) == (None, None)  # no such process


def test_a_login_name_that_is_not_utf8_comes_out_valid_json(monkeypatch):
    """Review: pwd decodes a name that is no UTF-8 with surrogates (jos\\udce9), which no strict JSON reader
    takes; the psutil path passed it through text() already."""
    import json

    monkeypatch.setattr(_util, "_pw_cache", {})
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: types.SimpleNamespace(pw_name=b"jos\xe9".decode(
        "utf-8", "surrogateescape")))
    name = _util.user_name(4242)
    assert name == "jos\ufffd"
    json.dumps(name, ensure_ascii=False).encode("utf-8")  # raised UnicodeEncodeError before
