"""Load: the 1/5/15-minute load averages and the scheduler's entity counts, from /proc/loadavg."""

from ._util import PROC, read_text


def collect(ctx):
    # "0.50 0.40 0.30 2/812 12345": running/total count kernel scheduling entities (threads)
    fields = read_text(PROC + "/loadavg").split()
    running, total = fields[3].split("/")
    return {
        "load1": float(fields[0]),
        "load5": float(fields[1]),
        "load15": float(fields[2]),
        "procs_running": int(running),
        "procs_total": int(total),
    }
