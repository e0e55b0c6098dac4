"""Disks: local filesystems (capacity, inodes) and cumulative I/O counters of whole physical disks.

Filesystems are the mounts whose type is backed by a device (listed without "nodev" in /proc/filesystems,
and ZFS, as psutil takes them: no tmpfs, proc, overlay, nfs, nor FUSE's network filesystems, whose types,
"fuse.sshfs" and the like, the kernel never lists), minus read-only images (squashfs) that are always
full; a device mounted twice (bind mounts) counts once. I/O comes from /proc/diskstats for disks that have
a hardware device in /sys/block (no partitions, loop, ram, zram, device-mapper or md: their bytes are
already counted on the disks below them).
"""

import os

from ._util import PROC, counter, get_psutil, read_bytes, read_text, text, unescape_mount

SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the disk's real sector size
SKIP_FSTYPES = ("squashfs", "iso9660", "udf")
SYS_BLOCK = "/sys/block"


def collect(ctx):
    return {"filesystems": filesystems(), "io": io_counters()}


def _mounts():
    """(device, mount, fstype) of device-backed mounts, in mount order. The mount is what os.statvfs takes:
    bytes from /proc (a path need not be UTF-8), str from psutil."""
    psutil = get_psutil()
    if psutil is not None:
        return [(p.device, p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=False)]
    local = {"zfs"}  # ZFS pools are local disks (psutil too), though the kernel lists zfs as nodev
    for line in read_text(PROC + "/filesystems").splitlines():
        parts = line.split()
        if len(parts) == 1:  # "\text4": backed by a device; "nodev\tnfs" is not
            local.add(parts[0])
    out = []
    for line in read_bytes(PROC + "/self/mounts").splitlines():
        parts = line.split()
        # a list of the local types, not of the others: a type the kernel does not list is not local (a FUSE
        # network filesystem, "fuse.sshfs", whose server may never answer statvfs)
        if len(parts) < 3 or parts[2].decode("ascii", "replace") not in local or parts[0] == b"none":
            continue
        out.append((unescape_mount(parts[0]), unescape_mount(parts[1]), parts[2].decode("ascii", "replace")))
    return out


def filesystems():
    out, seen = [], set()
    for device, mount, fstype in _mounts():
        if fstype in SKIP_FSTYPES or device in seen:
            continue
        try:
            st = os.statvfs(mount)
        except OSError:  # stale or inaccessible mount: leave it out rather than fail the subsystem
            continue
        if not st.f_blocks:
            continue
        seen.add(device)
        out.append({
            "mount": text(mount),
            "device": text(device),
            "fstype": text(fstype),
            "total_bytes": st.f_blocks * st.f_frsize,
            "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
            "free_bytes": st.f_bavail * st.f_frsize,  # what an unprivileged user can still write
            "inodes_total": st.f_files,
            "inodes_used": st.f_files - st.f_ffree,
        })
    return out


def _is_disk(name):
    return os.path.exists(os.path.join(SYS_BLOCK, name.replace("/", "!"), "device"))


def io_counters():
    psutil = get_psutil()
    out = []
    if psutil is not None:
        counters = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        for name, c in sorted(counters.items()):
            if _is_disk(name):
                out.append({
                    "device": name, "read_bytes": counter(c.read_bytes), "write_bytes": counter(c.write_bytes),
                    "reads": counter(c.read_count), "writes": counter(c.write_count),
                    "io_time_ms": counter(c.busy_time),
                })
        return out
    for line in read_text(PROC + "/diskstats").splitlines():
        f = line.split()
        if len(f) < 14 or not _is_disk(f[2]):
            continue
        out.append({
            "device": f[2], "read_bytes": counter(int(f[5]) * SECTOR_BYTES),
            "write_bytes": counter(int(f[9]) * SECTOR_BYTES),
            "reads": counter(f[3]), "writes": counter(f[7]), "io_time_ms": counter(f[12]),
        })
    return sorted(out, key=lambda d: d["device"])
