"""fleetscope collectors: build one host document (docs/document.md) from /proc, /sys and NVML.

Runs on the hosts with python3 >= 3.8 and the standard library (psutil and pynvml when present); ships
as ``ansible.module_utils.fleetscope_collectors``, hence relative imports only and no subpackages.
Each subsystem module exposes ``collect(ctx) -> dict``; ``collect()`` below runs them one by one and
turns a failure into an ``errors`` entry, so one broken subsystem never hides the others.
"""

import time

from . import cpu, disks, gpus, host, load, memory, network, processes, xid
from ._util import error_entry, iso_z

__version__ = "0.1.0"
SCHEMA_VERSION = 1

# name -> module, in document order; the runner looks ``collect`` up at call time
SUBSYSTEMS = {
    "host": host, "cpu": cpu, "load": load, "memory": memory, "disks": disks,
    "network": network, "processes": processes, "gpus": gpus, "xid": xid,
}
# The order the subsystems run in: /proc's quick reads first, then NVML, then what can wait on the network
# (host's FQDN asks the resolver; disks asks every filesystem, a dead network mount included), so that a
# subsystem stopped by the time limit costs those after it, not the ones that were quick. host follows gpus
# to reuse the NVML facts gpus read, instead of starting NVML twice. xid (the kernel log's GPU errors) reads
# /dev/kmsg, which does not wait: before gpus, whose NVML may hang on a GPU fallen off the bus, the very Xid
# (79) that would then go unread.
RUN_ORDER = ("cpu", "load", "memory", "network", "processes", "xid", "gpus", "host", "disks")


def collect(top_n=15, accounting_since=None, only=None, exiting=False):
    """The host document. Never raises: failures become ``errors`` entries and null subsystems.

    top_n: processes to report, the top N by CPU time plus the top N by memory.
    accounting_since: ISO 8601 time; NVML accounting records that ended before it are left out.
    only: subsystem names (list or comma-separated str) to collect; the others are left out.
    exiting: the process ends right after (the bootstrap): NVML is left to its exit, not shut down
    (speed: nvmlShutdown costs 3-4 ms of CPU on an H200, as much as reading two fields).
    """
    return Collection(top_n, accounting_since, only, exiting).run()


class Collection:
    """One host document, built a subsystem at a time (``run``). ``document(stopped)`` is the document so
    far, for a caller that stops waiting (the bootstrap's time limit, from another thread while ``run`` is
    stuck in a call that never returns): what finished is kept."""

    def __init__(self, top_n=15, accounting_since=None, only=None, exiting=False):
        self.started, self.clock = time.time(), time.monotonic()
        self.errors = []
        self.names = sorted(_selected(only, self.errors), key=RUN_ORDER.index)
        # errors: a subsystem that keeps going past one failed fact records it there ("host.cpu_model")
        self.ctx = {"top_n": top_n, "accounting_since": None, "exiting": exiting, "errors": self.errors}
        if accounting_since:
            try:
                self.ctx["accounting_since"] = parse_time(accounting_since)
            except (TypeError, ValueError, AttributeError) as e:
                self.errors.append(error_entry("accounting_since", e))
        self.results = {}
        self.running = None

    def run(self):
        """The whole document (see collect)."""
        for name in self.names:
            self.running = name
            try:
                result = SUBSYSTEMS[name].collect(self.ctx)
            except Exception as e:
                result = None
                self.errors.append(error_entry(name, e))
            self.results[name] = result
        self.running = None
        return self.document()

    def document(self, stopped=None):
        """The document of what has run. ``stopped``: why the rest will not (the time limit, in words): the
        subsystem that was running and those not reached are null, each with an errors entry "Timeout"."""
        running = self.running  # first: a subsystem that ends meanwhile is then in results, not "not started"
        results, errors = dict(self.results), list(self.errors)
        if stopped is not None:
            for name in self.names:
                if name not in results:
                    results[name] = None
                    errors.append({"subsystem": name, "type": "Timeout", "message": (
                        f"did not finish: {stopped}" if name == running else f"not started: {stopped}")})
        document = {
            "schema_version": SCHEMA_VERSION,
            "collector_version": __version__,
            "time": {"collected_at": iso_z(self.started, micro=True),
                     "duration_s": round(time.monotonic() - self.clock, 6)},
        }
        for name in SUBSYSTEMS:
            if name in results:
                document[name] = results[name]
        document["errors"] = errors
        return document


def parse_time(value):
    """POSIX seconds from ISO 8601 ("...Z", an offset, or naive meaning UTC)."""
    value = value.strip()
    seconds = _utc_seconds(value)
    if seconds is not None:
        return seconds
    import datetime  # only here: importing it costs ~3 ms of CPU

    t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _utc_seconds(value):
    """parse_time of "YYYY-MM-DDTHH:MM:SSZ", the form fleetscope sends on every run, else None.

    speed: the same number datetime gives (proleptic Gregorian calendar, as datetime counts), without it.
    """
    if len(value) != 20 or value[4] + value[7] + value[10] + value[13] + value[16] + value[19] != "--T::Z":
        return None
    digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    if not (digits.isascii() and digits.isdigit()):
        return None
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    hour, minute, second = int(value[11:13]), int(value[14:16]), int(value[17:19])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= month_days[month - 1]
            and hour < 24 and minute < 60 and second < 60):
        return None  # datetime says what is wrong
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + sum(month_days[:month - 1]) + day - 719163  # since 1970
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def _selected(only, errors):
    if only is None:
        return list(SUBSYSTEMS)
    if isinstance(only, str):
        only = only.split(",")
    names = []
    for name in (str(n).strip() for n in only):
        if name in SUBSYSTEMS:
            names.append(name)
        elif name:
            errors.append({"subsystem": name, "type": "ValueError",
                           "message": f"unknown subsystem; known: {', '.join(SUBSYSTEMS)}"})
    return names

