"""CPU: cumulative jiffies from the first line of /proc/stat, summed over all CPUs.

Raw counters only; the warehouse turns two samples into a utilization (node_exporter's split).
"""

import os

from ._util import PROC, read_text, user_hz

JIFFY_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def collect(ctx):
    for line in read_text(PROC + "/stat").splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            break
    else:
        raise RuntimeError("no aggregate cpu line in /proc/stat")
    values += [0] * (len(JIFFY_FIELDS) - len(values))  # very old kernels lack steal
    return {
        "logical": os.cpu_count(),
        "jiffies": dict(zip(JIFFY_FIELDS, values)),
        "user_hz": user_hz(),
    }
