"""Processes: the top consumers by CPU time and by resident memory (the union of both top N).

The collector's own process is left out. A first pass reads only the cheap numbers of every process;
owner, command line and state are read for the chosen few. Processes that exit in between are skipped.
cpu_percent is over the process lifetime (cpu time / wall time since it started), the only figure one
sample can give exactly.
"""

import os
import time

from ._util import (
    PROC,
    boot_time,
    command_from_argv,
    get_psutil,
    iso_z,
    page_size,
    proc_argv,
    proc_comm,
    read_bytes,
    text,
    user_hz,
    user_name,
)

# psutil's status strings back to the kernel's one-letter states, so both paths report the same
_STATES = {
    "running": "R", "sleeping": "S", "disk-sleep": "D", "stopped": "T", "tracing-stop": "t",
    "zombie": "Z", "dead": "X", "wake-kill": "K", "waking": "W", "idle": "I", "parked": "P",
}


def collect(ctx):
    top_n = max(int(ctx.get("top_n", 15)), 0)
    psutil = get_psutil()
    every = _stats_psutil(psutil) if psutil is not None else _stats_proc()
    me = os.getpid()  # the collector itself is the observer, not a consumer: counted, not listed
    stats = [s for s in every if s["pid"] != me]
    chosen = {}
    for key in ("cpu_time_s", "rss_bytes"):
        for s in sorted(stats, key=lambda s: s[key], reverse=True)[:top_n]:
            chosen[s["pid"]] = s
    now = time.time()
    top = []
    for s in sorted(chosen.values(), key=lambda s: (s["cpu_time_s"], s["rss_bytes"]), reverse=True):
        details = _details_psutil(psutil, s["pid"]) if psutil is not None else _details_proc(s["pid"])
        if details is None:  # exited since the first pass
            continue
        user, command, state = details
        rss = s["rss_bytes"] if psutil is not None else _rss_exact(s["pid"], s["rss_bytes"])
        lifetime = now - s["started"] if s["started"] is not None else None
        top.append({
            "pid": s["pid"],
            "user": user,
            "command": command,
            "cpu_time_s": round(s["cpu_time_s"], 2),
            "cpu_percent": round(100.0 * s["cpu_time_s"] / lifetime, 1) if lifetime and lifetime > 0 else None,
            "rss_bytes": rss,
            "started_at": iso_z(s["started"]),
            "state": state,
        })
    return {"total": len(every), "top": top}


def _stats_proc():
    hz, page = user_hz(), page_size()
    try:
        boot = boot_time()
    except (OSError, RuntimeError, ValueError, IndexError):  # no btime: start times unknown, the rest is known
        boot = None
    out = []
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            f = stat_fields(name)
            out.append({
                "pid": int(name),
                "cpu_time_s": (int(f[11]) + int(f[12])) / hz,
                "rss_bytes": int(f[21]) * page,
                "started": boot + int(f[19]) / hz if boot is not None else None,
            })
        except OSError:  # exited, or hidden from us (hidepid)
            continue
        except (ValueError, IndexError):  # a stat line not as the kernel writes it: that process only
            continue
    return out


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the ")" that ends the command name, up to rss: state is [0],
    utime [11], stime [12], starttime [19] (ticks after boot), rss [21] (pages). speed: split no further than
    needed, and left as bytes (they are ASCII, and int() reads bytes)."""
    raw = read_bytes(f"{PROC}/{pid}/stat")
    return raw[raw.rindex(b")") + 2:].split(None, 22)


def _rss_exact(pid, approximate):
    """The resident bytes of one chosen process from /proc/<pid>/statm, as psutil and VmRSS give them. stat's
    rss, which ranks every process cheaply, is the kernel's per-CPU estimate: off by up to a tenth, the more
    the more CPUs. ``approximate`` where statm cannot be read."""
    try:
        return int(read_bytes(f"{PROC}/{pid}/statm").split()[1]) * page_size()
    except (OSError, ValueError, IndexError):
        return approximate


def _details_proc(pid):
    try:
        uid = os.stat(f"{PROC}/{pid}").st_uid
        state = stat_fields(pid)[0].decode("utf-8", "replace")
    except OSError:
        return None
    try:
        argv = proc_argv(pid)
        comm = proc_comm(pid) if not argv else None
        command = command_from_argv(argv, comm)
    except (FileNotFoundError, ProcessLookupError):  # exited since the first pass: skipped, as psutil's path
        return None
    except OSError:  # there, but not ours to read
        command = None
    return user_name(uid), command, state


def _stats_psutil(psutil):
    out = []
    for p in psutil.process_iter(["cpu_times", "memory_info", "create_time"]):
        info = p.info
        if info["cpu_times"] is None or info["memory_info"] is None:  # access denied: not comparable
            continue
        out.append({
            "pid": p.pid,
            "cpu_time_s": info["cpu_times"].user + info["cpu_times"].system,
            "rss_bytes": int(info["memory_info"].rss),
            "started": info["create_time"],
        })
    return out


def _details_psutil(psutil, pid):
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            state = _STATES.get(p.status(), None)
            user = user_name(p.uids().real)
            try:
                argv = [text(a) for a in p.cmdline()]
                command = command_from_argv(argv, text(p.name()) if not argv else None)
            except psutil.ZombieProcess:
                command = command_from_argv([], text(p.name()))
            except psutil.AccessDenied:
                command = None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return user, command, state
