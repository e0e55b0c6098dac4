"""Memory: RAM and swap in bytes, from psutil or /proc/meminfo (same definitions on both paths), and how
many processes the kernel's OOM killer has killed since boot (/proc/vmstat's oom_kill, Linux 4.13 and later).

used = total - available (what is really taken); cached includes reclaimable slab, as free(1) and
psutil count it.
"""

from ._util import PROC, get_psutil, read_bytes, read_text


def meminfo():
    """/proc/meminfo as {name: bytes} (values given in kB are converted)."""
    info = {}
    for line in read_text(PROC + "/meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            info[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return info


def collect(ctx):
    psutil = get_psutil()
    if psutil is not None:
        vm, sw = psutil.virtual_memory(), psutil.swap_memory()
        total, available, buffers, cached = vm.total, vm.available, vm.buffers, vm.cached
        swap_total, swap_used = sw.total, sw.total - sw.free
    else:
        m = meminfo()
        total = m["MemTotal"]
        available = m.get("MemAvailable")
        if available is None:  # kernels before 3.14
            available = m.get("MemFree", 0) + m.get("Buffers", 0) + m.get("Cached", 0)
        buffers = m.get("Buffers", 0)
        cached = m.get("Cached", 0) + m.get("SReclaimable", 0)
        swap_total, swap_used = m.get("SwapTotal", 0), m.get("SwapTotal", 0) - m.get("SwapFree", 0)
    return {
        "total_bytes": int(total),
        "available_bytes": int(available),
        "used_bytes": int(max(total - available, 0)),
        "buffers_bytes": int(buffers),
        "cached_bytes": int(cached),
        "swap_total_bytes": int(swap_total),
        "swap_used_bytes": int(max(swap_used, 0)),
        "oom_kills": oom_kills(),
    }


def oom_kills():
    """Processes the OOM killer killed since boot (/proc/vmstat: readable by every account); None where the
    kernel does not count them (before 4.13, not Linux). speed: one bytes search, not a parse of ~170 lines."""
    try:
        raw = read_bytes(PROC + "/vmstat", size=16384)
    except OSError:
        return None
    _, found, rest = (b"\n" + raw).partition(b"\noom_kill ")
    if not found:
        return None
    try:
        return int(rest.split(b"\n", 1)[0])
    except ValueError:
        return None
