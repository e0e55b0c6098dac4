"""Xid events: the errors the NVIDIA driver writes to the kernel log (``NVRM: Xid (PCI:0000:18:00): 79, ...``),
read from /dev/kmsg: a GPU fallen off the bus, a double-bit ECC error, a row remapping failure, a GSP
timeout, and an application's faults (13, 31, 43). NVML gives no history of them; the kernel log holds them
until its ring buffer wraps.

Only on a host with the NVIDIA driver (gpus.driver_present). A kernel log the collecting account may not read
(``kernel.dmesg_restrict=1``: root or CAP_SYSLOG only), or a host without /dev/kmsg (a container), is not an
error: ``available`` is false and ``reason`` says why. ``events`` are those logged after ``ctx["accounting_since"]``
(the host clock of the host's last stored sample, which the controller sends) less MARGIN_S; without it, all the
log holds. The warehouse keeps each event once, by ``boot_id`` and the log's sequence number: an event sent
again by the next runs (the margin) is not stored twice. At most MAX_EVENTS of the GPU's own errors and as many
of an application's faults (APPLICATION: one faulting in a loop logs one a second), the latest of each;
``truncated`` says whether more were left out, or lost: the log no longer reaching back to the time asked from.
"""

import errno
import os
import time

from ._util import iso_z, text

KMSG = "/dev/kmsg"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
MAX_EVENTS = 50  # a run's events of each kind at most, the latest
MAX_MESSAGE = 300  # characters of an event's text
#: Sent again this long before the last stored sample: an event logged as that run read the log, or while runs
#: did not read it (their xid part failed or was cut by the time limit), and the kernel log's clock, which NTP
#: does not steer, drifting from the host's (up to ~50 ppm: 7 min over 100 days of uptime) lose nothing.
MARGIN_S = 3600
#: Xid codes that are mostly an application's own fault: capped apart, so that a flood of them does not push out
#: the GPU's own errors
APPLICATION = frozenset({13, 31, 43, 45})
MARK = "NVRM: Xid ("


def collect(ctx):
    from .gpus import driver_present  # a host without the driver has no Xid to read

    if not driver_present():
        return None
    since = ctx.get("accounting_since")
    floor = since - MARGIN_S if since is not None else None
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return {"available": False, "reason": _why(e), "boot_id": None, "events": [], "truncated": False}
    lost = []  # the log overwrote records while they were read
    try:
        # the wall time at the log's zero: its records count microseconds of CLOCK_MONOTONIC's kind; /proc/stat's
        # btime is a whole second, cut down (an event would read up to 1 s early)
        events, truncated = select(_records(fd, lost), time.time() - time.monotonic(), floor)
    finally:
        os.close(fd)
    for event in events:
        event["at"] = iso_z(event.pop("at_s"), micro=True)
    return {"available": True, "reason": None, "boot_id": _boot_id(), "events": events,
            "truncated": truncated or bool(lost)}


def _records(fd, lost):
    """/dev/kmsg's records from the oldest it holds, one a read, to its end; an EPIPE (records overwritten while
    reading: the read goes on from the oldest kept) is noted in ``lost``."""
    while True:
        try:
            record = os.read(fd, 8192)
        except BlockingIOError:  # the end of the log
            return
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise
            lost.append(True)
            continue
        if not record:
            return
        yield record


def select(records, started, floor):
    """(the Xid events of ``records`` logged after ``floor`` (POSIX seconds; None: all), in log order, at most
    MAX_EVENTS of the GPU's own errors and as many of an application's faults, the latest of each; whether any
    were left out: over those caps, or because the log no longer reaches back to ``floor``: its oldest record
    is not the boot's first (the ring buffer wrapped) and is newer than ``floor``)."""
    kept, truncated, first = {True: [], False: []}, False, True  # an application's faults, the GPU's own errors
    for record in records:
        if first:
            first = False
            head = record.partition(b";")[0].split(b",")
            try:
                seq, usec = int(head[1]), int(head[2])
            except (IndexError, ValueError):
                seq, usec = 0, 0
            truncated = floor is not None and seq > 0 and started + usec / 1e6 > floor
        event = parse_record(record, started)
        if event is None or (floor is not None and event["at_s"] <= floor):
            continue
        events = kept[event["xid"] in APPLICATION]
        events.append(event)
        if len(events) > MAX_EVENTS:
            del events[0]
            truncated = True
    return sorted(kept[False] + kept[True], key=lambda e: e["seq"]), truncated


def _boot_id():
    """The kernel's id of this boot (a UUID), which with an event's sequence number tells it apart; else None."""
    try:
        with open(BOOT_ID) as f:
            return f.read().strip()[:64] or None
    except OSError:
        return None


def parse_record(record, started):
    """An Xid event from one /dev/kmsg record (bytes: ``prio,seq,usec,flags;text`` then lines of
    ``KEY=value``), with its time as POSIX seconds (``started``: the boot time), else None.
    speed: string operations, no regular expression (most records are no Xid)."""
    head, sep, rest = record.partition(b";")
    at = rest.find(MARK.encode())
    if not sep or at < 0:
        return None
    fields = head.split(b",")
    try:
        seq, usec = int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None
    line = text(rest[at + len(MARK):].split(b"\n", 1)[0])
    pci, close, after = line.partition("):")
    code, _, message = after.strip().partition(",")
    code = code.strip()
    if not close or not code.isdigit() or len(code) > 9:  # Xid codes are small: one that is not is no Xid
        return None
    pci = pci.strip()
    pci = pci[4:] if pci.startswith("PCI:") else pci
    return {"at_s": started + usec / 1e6, "seq": seq, "pci": pci[:40], "xid": int(code),
            "message": message.strip()[:MAX_MESSAGE]}


def _why(error):
    if error.errno in (errno.EPERM, errno.EACCES):
        return "the kernel log is not readable by this account (kernel.dmesg_restrict=1: root or CAP_SYSLOG)"
    if error.errno == errno.ENOENT:
        return "no /dev/kmsg (a container?)"
    return f"{KMSG}: {os.strerror(error.errno) if error.errno else error}"
