"""Processes: the top consumers by CPU time and by resident memory (the union of both top N).

The collector's own process is left out. A first pass reads only the cheap numbers of every process;
owner, command line and state are read for the chosen few. Processes that exit in between are skipped.
cpu_percent is over the process lifetime (cpu time / wall time since it started), the only figure one
sample can give exactly. others_hidden says whether /proc hides other users' processes from the collector
(hidepid=): then they are missing from total and top, and GPU processes of other users lack an owner or a
command.
"""

import os
import time

from ._util import (
    PROC,
    boot_time,
    command_from_argv,
    get_psutil,
    iso_z,
    note_stuck,
    owners_and_commands,
    page_size,
    read_bytes,
    read_text,
    stuck_reads,
    text,
    unescape_mount,
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
    ordered = sorted(chosen.values(), key=lambda s: (s["cpu_time_s"], s["rss_bytes"]), reverse=True)
    stuck = len(stuck_reads)
    found = _details_proc([s["pid"] for s in ordered]) if psutil is None else None
    note_stuck(ctx, "processes.command", stuck)
    for s in ordered:
        details = _details_psutil(psutil, s["pid"]) if psutil is not None else found.get(s["pid"])
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
    return {"total": len(every), "others_hidden": others_hidden(), "top": top}


# hidepid= of a proc mount (proc(5)): 1 other users' /proc/<pid> are listed but not readable, 2 not listed
# either, 4 only the processes this one may ptrace; 0 none. Older kernels write the number, newer the name.
_HIDEPID = {b"0": 0, b"off": 0, b"1": 1, b"noaccess": 1, b"2": 2, b"invisible": 2, b"4": 4, b"ptraceable": 4}
CAP_SYS_PTRACE = 19


def others_hidden():
    """True where /proc hides other users' processes from this process, False where it shows them all, None
    where that cannot be told (no proc mount at PROC in /proc/self/mounts; a hidepid= value not known here, to
    a process that may ptrace every other).

    Under hidepid= the kernel shows another user's process to a process in the mount's gid= group (not under
    ptraceable) or one that may ptrace it, which takes CAP_SYS_PTRACE (root has it, outside containers that
    drop it). Rather than redo that rule (in a user namespace the mount's gid= and the process's groups and
    capabilities are not counted alike, and a security module may hide more), the kernel is asked: every host
    runs root's processes (init, kernel threads), so one that cannot read any other user's process is kept
    from them, unless it may ptrace every process."""
    try:
        mounts = read_bytes(PROC + "/self/mounts").splitlines()
    except OSError:
        return None
    where = os.fsencode(PROC)
    options = None
    for line in mounts:  # the last proc mount at PROC: the one on top
        parts = line.split()
        if len(parts) >= 4 and parts[2] == b"proc" and unescape_mount(parts[1]) == where:
            options = dict((o.split(b"=", 1) + [b""])[:2] for o in parts[3].split(b","))
    if options is None:
        return None
    level = _HIDEPID.get(options.get(b"hidepid", b"0"))
    if level == 0:
        return False
    if _reads_another_users_process():
        return False
    if _may_ptrace_all():  # root: another user's process would have been there to read; none runs now
        return None if level is None else False
    return True


def _reads_another_users_process():
    """Whether this process can read the /proc/<pid>/stat of a process of another user (the first it finds)."""
    me = os.geteuid()
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"{PROC}/{name}").st_uid == me:
                continue
            read_bytes(f"{PROC}/{name}/stat")  # hidepid=noaccess lists the folder, but refuses its files
        except OSError:
            continue
        return True
    return False


def _may_ptrace_all():
    """Whether this process holds CAP_SYS_PTRACE (its effective capabilities, /proc/self/status)."""
    try:
        for line in read_text(PROC + "/self/status").splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


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


def _details_proc(pids):
    """{pid: (user, command, state)} of the chosen processes that still run; their command lines are read
    together, by a thread that a process stuck in the kernel cannot hold up for long (read_many)."""
    states = {}
    for pid in pids:
        try:
            states[pid] = stat_fields(pid)[0].decode("utf-8", "replace")
        except OSError:  # exited since the first pass: skipped, as psutil's path
            continue
    return {pid: (user, command, states[pid]) for pid, (user, command) in owners_and_commands(list(states)).items()}


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
